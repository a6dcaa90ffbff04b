namespace CloudMemory.BuildingBlocks.Hosting;

/// <summary>Validation of ids that end up in keys, routes and SQL parameters.</summary>
public static class Ids
{
    /// <summary>Maximum id length.</summary>
    public const int MaxLength = 128;

    /// <summary>
    /// True for 1..128 characters of letters, digits and <c>- _ . : @</c>: nothing that is a path,
    /// query, key separator (<c>||</c>) or control character, and never <c>.</c> or <c>..</c> alone.
    /// </summary>
    public static bool IsValid(string? id)
    {
        if (string.IsNullOrEmpty(id) || id.Length > MaxLength || id is "." or "..")
        {
            return false;
        }
        foreach (var c in id)
        {
            if (!(char.IsLetterOrDigit(c) || c is '-' or '_' or '.' or ':' or '@'))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>Throws a 400 problem when <paramref name="id"/> is not valid.</summary>
    public static string Require(string? id, string name)
    {
        if (string.IsNullOrEmpty(id))
        {
            throw new ProblemException(400, $"missing-{name}", $"'{name}' is required.");
        }
        if (!IsValid(id))
        {
            throw new ProblemException(400, $"invalid-{name}", $"'{name}' must be 1-{MaxLength} letters, digits or - _ . : @ (no paths or control characters).");
        }
        return id;
    }
}
