namespace CloudMemory.BuildingBlocks.Hosting;

/// <summary>The <c>limit</c> and <c>cursor</c> query parameters of the keyset-paged listings, checked alike everywhere.</summary>
public static class Paging
{
    /// <summary>Page size when <c>limit</c> is absent.</summary>
    public const int DefaultLimit = 20;

    /// <summary>Largest page size.</summary>
    public const int MaxLimit = 200;

    /// <summary>The page size; 400 <c>invalid-limit</c> outside 1..<see cref="MaxLimit"/>.</summary>
    public static int Limit(int? limit) => Limit(limit, DefaultLimit, MaxLimit);

    /// <summary>The page size of a listing with its own documented default and maximum; 400 <c>invalid-limit</c> outside 1..<paramref name="maxLimit"/>.</summary>
    public static int Limit(int? limit, int defaultLimit, int maxLimit) => (limit ?? defaultLimit) is var size and >= 1 && size <= maxLimit
        ? size
        : throw new ProblemException(400, "invalid-limit", $"'limit' must be between 1 and {maxLimit}.");

    /// <summary>The decoded cursor, null for none; 400 <c>invalid-cursor</c> when <paramref name="decode"/> does not recognise it.</summary>
    public static T? After<T>(string? cursor, Func<string, T?> decode)
        where T : class =>
        string.IsNullOrEmpty(cursor)
            ? null
            : decode(cursor) ?? throw new ProblemException(400, "invalid-cursor", "'cursor' is not one this API returned.");
}
