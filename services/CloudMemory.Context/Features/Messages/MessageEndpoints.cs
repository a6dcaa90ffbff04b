using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Context;
using CloudMemory.Conversations.Log;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CloudMemory.Context.Features.Messages;

/// <summary>The durable message log over HTTP.</summary>
public static class MessageEndpoints
{
    /// <summary>Largest page.</summary>
    public const int MaxPage = 1000;

    /// <summary>Maps <c>GET /v1/conversations/{conversationId}/messages</c>.</summary>
    public static IEndpointRouteBuilder MapMessageLog(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/v1/conversations/{conversationId}/messages", ListAsync).WithTags("Context").WithName("ListMessages");
        return endpoints;
    }

    /// <summary>A page of the log, checkpoint messages included and marked (<c>isCheckpoint</c>).</summary>
    public static async Task<Ok<MessagePage>> ListAsync(string conversationId, long? after, int? limit, HttpContext http, IConversationLog log, CancellationToken ct)
    {
        var tenant = Tenant.From(http);
        Ids.Require(conversationId, "conversationId");
        if (after is < 0)
        {
            throw new ProblemException(400, "invalid-after", "'after' must be a sequence number ≥ 0.");
        }
        var size = limit ?? 200;
        if (size is < 1 or > MaxPage)
        {
            throw new ProblemException(400, "invalid-limit", $"'limit' must be between 1 and {MaxPage}.");
        }
        if (await log.GetStatsAsync(tenant, conversationId, ct) is null)
        {
            throw new ProblemException(404, "conversation-not-found", $"Conversation '{conversationId}' is unknown.");
        }
        var page = await log.ReadAsync(tenant, conversationId, after ?? 0, size + 1, ct);
        var more = page.Count > size;
        var messages = more ? page.Take(size).ToList() : page;
        return TypedResults.Ok(new MessagePage(conversationId, messages, more ? messages[^1].Sequence : null));
    }
}
