namespace CloudMemory.Client;

/// <summary>One shared context as <c>GET /v1/shared-contexts</c> lists it (<see cref="CreatedAt"/> and <see cref="UpdatedAt"/> in Unix seconds).</summary>
public sealed record SharedContextSummary(string Id, string Owner, string Mode, string Status, int Members, int Invited, long Version, long Seq,
    string? ConversationId, string? TraceId, long CreatedAt, long UpdatedAt);

/// <summary>A page of the shared-context listing; pass <see cref="NextCursor"/> back for the next (null on the last page).</summary>
public sealed record SharedContextSummaryPage(IReadOnlyList<SharedContextSummary> Items, string? NextCursor);

public sealed partial class SharedContextsClient
{
    /// <summary>
    /// <c>GET /v1/shared-contexts</c>: the tenant's shared contexts, most recently updated first; optionally only those
    /// <paramref name="member"/> belongs to, or those created from <paramref name="fromConversation"/>.
    /// </summary>
    public Task<SharedContextSummaryPage> ListAsync(string? member = null, string? fromConversation = null, int limit = 20, string? cursor = null,
        CancellationToken cancellationToken = default) =>
        SendAsync<SharedContextSummaryPage>(HttpMethod.Get, Root + Query.Of(("member", member), ("fromConversation", fromConversation), ("limit", limit.ToString(System.Globalization.CultureInfo.InvariantCulture)), ("cursor", cursor)),
            null, cancellationToken);
}

/// <summary>Builds a query string from the parameters that have a value.</summary>
internal static class Query
{
    /// <summary><c>?a=1&amp;b=2</c> (escaped), or "" when none has a value.</summary>
    public static string Of(params (string Name, string? Value)[] parameters)
    {
        var parts = parameters.Where(p => !string.IsNullOrEmpty(p.Value)).Select(p => $"{p.Name}={Uri.EscapeDataString(p.Value!)}").ToList();
        return parts.Count == 0 ? "" : "?" + string.Join('&', parts);
    }
}
