using CloudMemory.BuildingBlocks.Actors;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Conversations;
using CloudMemory.Conversations.Log;
using CloudMemory.Conversations.Text;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace CloudMemory.Context.Features.Query;

/// <summary>QueryMemoryContext: the history for the next LLM call.</summary>
public static class QueryMemoryContextEndpoint
{
    /// <summary>Maps <c>POST /v1/context/query</c>.</summary>
    public static IEndpointRouteBuilder MapQueryMemoryContext(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost("/v1/context/query", QueryAsync).WithTags("Context").WithName("QueryMemoryContext");
        return endpoints;
    }

    /// <summary>Handles the query.</summary>
    public static async Task<Ok<MemoryContext>> QueryAsync(MemoryQueryRequest? request, HttpContext http, MemoryContextService service, CancellationToken ct)
    {
        var tenant = Tenant.From(http);
        if (request is null)
        {
            throw new ProblemException(400, "missing-body", "A JSON body {conversationId, query} is required.");
        }
        return TypedResults.Ok(await service.QueryAsync(tenant, request, ct));
    }
}

/// <summary>
/// Builds the memory context with the seed's semantics. The token ratio comes from the log's
/// running counts (O(1)), not from re-counting the history; the only rows read are the ones the
/// answer returns (the current checkpoint and the turns after it).
/// </summary>
public sealed class MemoryContextService(IActorInvoker actors, IConversationLog log, IOptions<MemoryPolicyOptions> options)
{
    /// <summary>Validates the request and builds the context.</summary>
    public async Task<MemoryContext> QueryAsync(string tenantId, MemoryQueryRequest request, CancellationToken cancellationToken = default)
    {
        var conversationId = Ids.Require(request.ConversationId, "conversationId");
        if (request.TokenThresholdRatio is { } ratio && (double.IsNaN(ratio) || ratio is <= 0 or > 1))
        {
            throw new ProblemException(400, "invalid-tokenThresholdRatio", "'tokenThresholdRatio' must be in (0, 1].");
        }
        if (request.RecentTurns is < 1 or > 1000)
        {
            throw new ProblemException(400, "invalid-recentTurns", "'recentTurns' must be between 1 and 1000.");
        }
        if (request.ModelContextWindow is < 1 or > 10_000_000)
        {
            throw new ProblemException(400, "invalid-modelContextWindow", "'modelContextWindow' must be between 1 and 10,000,000 tokens.");
        }

        var reply = await actors.InvokeMethodAsync<GetSessionCommand, ActorReply<SessionReply>>(ConversationActorContract.ActorType,
            ConversationActorContract.ActorId(tenantId, conversationId), "Get", new GetSessionCommand(tenantId, conversationId), cancellationToken);
        if (!reply.IsSuccess)
        {
            throw new ProblemException(reply.Status, reply.Code!, reply.Detail ?? reply.Code!);
        }
        var session = reply.Value!.Session;
        var segment = await log.ReadSinceCheckpointAsync(tenantId, conversationId, cancellationToken);
        var fullHistory = ConversationText.RenderHistory(segment.Messages);

        // If a turn landed between reading the counts and the rows they disagree, and this one
        // answer re-counts what it returns instead.
        var historyUnits = segment.CountsMatchRows ? segment.Stats!.HistoryUnits : TokenEstimator.Units(fullHistory);
        var query = request.Query ?? "";
        var estimatedTokens = TokenEstimator.TokensFromUnits(historyUnits + 1 + TokenEstimator.Units(query));

        var policy = MemoryPolicy.Resolve(options.Value, session.FlowContext.TurnCount, request.TokenThresholdRatio, request.RecentTurns, request.ModelContextWindow);
        var tokenRatio = (double)estimatedTokens / policy.ModelContextWindow;
        var mode = session.MessageContext.Mode;
        var history = mode == MemoryMode.SummaryN
            ? ConversationText.ComposeSummaryAndRecent(session.MessageContext.Summary, LastTurns(session.MessageContext.WindowMessages, policy.RecentTurns))
            : fullHistory;
        return new MemoryContext(conversationId, mode, session, history, fullHistory, estimatedTokens, tokenRatio,
            tokenRatio >= policy.TokenThresholdRatio, policy.TokenThresholdRatio, policy.ModelContextWindow);
    }

    private static List<ChatMessage> LastTurns(List<ChatMessage> window, int turns) =>
        window.Count <= turns * 2 ? window : window.GetRange(window.Count - (turns * 2), turns * 2);
}
