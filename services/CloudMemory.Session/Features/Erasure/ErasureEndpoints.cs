using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Erasure;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Conversations.Log;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CloudMemory.Session.Features.Erasure;

/// <summary>A user's sessions, deleting a conversation, erasing a user.</summary>
public static class ErasureEndpoints
{
    /// <summary>Maps the routes.</summary>
    public static IEndpointRouteBuilder MapErasureApi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/v1/users/{userId}/sessions", ListSessionsAsync).WithTags("Sessions").WithName("ListUserSessions");
        endpoints.MapDelete("/v1/sessions/{conversationId}", DeleteSessionAsync).WithTags("Sessions").WithName("DeleteSession");
        endpoints.MapDelete("/v1/users/{userId}", EraseUserAsync).WithTags("Sessions").WithName("EraseUser");
        return endpoints;
    }

    /// <summary><c>GET /v1/users/{userId}/sessions?limit=&amp;cursor=</c>: newest activity first.</summary>
    public static async Task<Ok<SessionPage>> ListSessionsAsync(string userId, HttpContext http, IConversationLog log, CancellationToken ct,
        int? limit = null, string? cursor = null, string? continuationToken = null)
    {
        var tenant = Tenant.From(http);
        Ids.Require(userId, "userId");
        var size = Paging.Limit(limit);
        if (cursor is not null && continuationToken is not null && cursor != continuationToken)
        {
            throw new ProblemException(400, "conflicting-cursor", "Send 'cursor' or 'continuationToken', not two different ones.");
        }
        var after = Paging.After(cursor ?? continuationToken, ConversationCursor.TryDecode);
        var rows = await log.ListConversationsAsync(tenant, new ConversationFilter(UserId: userId), after, size + 1, ct);
        var items = rows.Take(size)
            .Select(s => new SessionSummary(s.ConversationId, s.UserId, s.TurnCount, s.CheckpointCount, s.Finalized, s.LastAgentCode, s.CreatedAt, s.UpdatedAt))
            .ToList();
        return TypedResults.Ok(new SessionPage(items, rows.Count > size ? ConversationCursor.After(rows[size - 1]).Encode() : null));
    }

    /// <summary><c>DELETE /v1/sessions/{conversationId}</c>: 204; 404 <c>session-not-found</c> when unknown (so also on a repeat).</summary>
    public static async Task<NoContent> DeleteSessionAsync(string conversationId, HttpContext http, ErasureCoordinator erasure, CancellationToken ct)
    {
        var tenant = Tenant.From(http);
        Ids.Require(conversationId, "conversationId");
        return await erasure.DeleteConversationAsync(http, tenant, conversationId, ct)
            ? TypedResults.NoContent()
            : throw new ProblemException(404, "session-not-found", $"Conversation '{conversationId}' is unknown (or already deleted).");
    }

    /// <summary><c>DELETE /v1/users/{userId}</c>: the erasure report (200, also when nothing was left to erase).</summary>
    public static async Task<Ok<ErasureReport>> EraseUserAsync(string userId, HttpContext http, ErasureCoordinator erasure, CancellationToken ct)
    {
        var tenant = ErasureRights.RequireTenantAdmin(http);
        Ids.Require(userId, "userId");
        return TypedResults.Ok(await erasure.EraseUserAsync(http, tenant, userId, ct));
    }
}
