using System.Globalization;
using CloudMemory.Contracts.Sessions;

namespace CloudMemory.Client;

/// <summary>The tenant-wide conversation listing.</summary>
public sealed partial class CloudMemoryClient
{
    /// <summary>
    /// <c>GET /v1/sessions</c>: the tenant's conversations, newest activity first, optionally of one user, in one mode
    /// (<see cref="MemoryMode"/>), or last active in [<paramref name="activeSince"/>, <paramref name="activeBefore"/>).
    /// </summary>
    public Task<ConversationListPage> ListSessionsAsync(string? userId = null, MemoryMode? mode = null, DateTimeOffset? activeSince = null,
        DateTimeOffset? activeBefore = null, int limit = 20, string? cursor = null, CancellationToken cancellationToken = default) =>
        SendAsync<ConversationListPage>(HttpMethod.Get, options.SessionAppId, "v1/sessions" + Query.Of(
            ("userId", userId),
            ("mode", mode switch { MemoryMode.FullHistory => "FULL_HISTORY", MemoryMode.SummaryN => "SUMMARY_N", _ => null }),
            ("activeSince", activeSince?.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture)),
            ("activeBefore", activeBefore?.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture)),
            ("limit", limit.ToString(CultureInfo.InvariantCulture)),
            ("cursor", cursor)), null, null, cancellationToken);
}
