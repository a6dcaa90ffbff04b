using System.Globalization;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Conversations.Log;
using CloudMemory.Conversations.Text;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CloudMemory.Session.Features.Listing;

/// <summary>The tenant's conversations (<c>GET /v1/sessions</c>): what the dashboard lists without a user id.</summary>
public static class ConversationListingEndpoints
{
    /// <summary>Maps the route.</summary>
    public static IEndpointRouteBuilder MapConversationListingApi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/v1/sessions", ListAsync).WithTags("Sessions").WithName("ListSessions");
        return endpoints;
    }

    /// <summary>
    /// <c>GET /v1/sessions?userId=&amp;mode=&amp;activeSince=&amp;activeBefore=&amp;limit=&amp;cursor=</c>: the caller's
    /// tenant's conversations, newest activity first; every filter is optional.
    /// </summary>
    public static async Task<Ok<ConversationListPage>> ListAsync(HttpContext http, IConversationLog log, CancellationToken ct,
        string? userId = null, string? mode = null, string? activeSince = null, string? activeBefore = null, int? limit = null, string? cursor = null)
    {
        var tenant = Tenant.From(http);
        var size = Paging.Limit(limit);
        var filter = new ConversationFilter(
            string.IsNullOrEmpty(userId) ? null : Ids.Require(userId, "userId"),
            mode switch
            {
                null or "" => null,
                "FULL_HISTORY" => false,
                "SUMMARY_N" => true,
                _ => throw new ProblemException(400, "invalid-mode", "'mode' is FULL_HISTORY or SUMMARY_N."),
            },
            Instant(activeSince, "activeSince"),
            Instant(activeBefore, "activeBefore"));
        var after = Paging.After(cursor, ConversationCursor.TryDecode);
        var rows = await log.ListConversationsAsync(tenant, filter, after, size + 1, ct);
        var items = rows.Take(size).Select(Item).ToList();
        return TypedResults.Ok(new ConversationListPage(items, rows.Count > size ? ConversationCursor.After(rows[size - 1]).Encode() : null));
    }

    private static ConversationListItem Item(ConversationStats s) => new(s.ConversationId, s.UserId,
        s.CheckpointCount > 0 ? MemoryMode.SummaryN : MemoryMode.FullHistory, s.TurnCount, s.CheckpointCount,
        TokenEstimator.TokensFromUnits(s.HistoryUnits), s.Finalized, s.LastAgentCode, s.CreatedAt, s.UpdatedAt);

    // An ISO 8601 instant with an offset (or Z); a value without one would depend on the server's zone.
    private static DateTimeOffset? Instant(string? text, string name)
    {
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }
        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.None, out var value)
            && (text.EndsWith('Z') || text.EndsWith('z') || text.LastIndexOfAny(['+', '-']) > text.IndexOf('T', StringComparison.OrdinalIgnoreCase)) && text.Contains('T', StringComparison.OrdinalIgnoreCase)
            ? value
            : throw new ProblemException(400, $"invalid-{name}", $"'{name}' is an ISO 8601 instant with its offset, e.g. 2026-01-31T12:00:00Z.");
    }
}
