using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Context.Features.Memories;
using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Conversations;
using CloudMemory.Conversations.Compression;
using CloudMemory.Conversations.Log;
using CloudMemory.Conversations.Sessions;
using CloudMemory.Conversations.Summaries;
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
    public static async Task<Ok<MemoryContext>> QueryAsync(MemoryQueryRequest? request, HttpContext http, MemoryContextService service, RelevantExperienceLookup experiences,
        AgentStrategyLookup strategies, CancellationToken ct)
    {
        var tenant = Tenant.From(http);
        if (request is null)
        {
            throw new ProblemException(400, "missing-body", "A JSON body {conversationId, query} is required.");
        }
        if (request.MaxExperienceTokens is < 1 or > RelevantExperienceLookup.MaxTokensLimit)
        {
            throw new ProblemException(400, "invalid-maxExperienceTokens", $"'maxExperienceTokens' must be between 1 and {RelevantExperienceLookup.MaxTokensLimit} tokens.");
        }
        // The agent whose strategy is asked for: the request's, else the caller's (X-Agent-Id or the credential's agent).
        var strategyAgent = !request.IncludeStrategy ? null
            : request.AgentId is { } agentId ? Ids.Require(agentId, "agentId")
            : Tenant.AgentFrom(http) ?? throw new ProblemException(400, "missing-agentId", "'includeStrategy' needs 'agentId' (or an X-Agent-Id / the credential's agent).");
        var context = await service.QueryAsync(tenant, request, ct);
        // Opt-in: calls to the feedback app, so only when asked for.
        if (request.IncludeRelevantExperiences)
        {
            context = context with { RelevantExperiences = await experiences.FindAsync(http, request, ct) };
        }
        if (strategyAgent is not null)
        {
            context = context with { Strategy = await strategies.FindAsync(http, strategyAgent, context.ConversationId, ct) };
        }
        return TypedResults.Ok(context);
    }
}

/// <summary>
/// Builds the memory context with the seed's semantics. The token ratio comes from the log's
/// running counts (O(1)), not from re-counting the history; the only rows read are the ones the
/// answer returns (the current checkpoint and the turns after it).
/// </summary>
public sealed class MemoryContextService(SessionSnapshots sessions, IConversationLog log, ILongTermMemory memories, IOptions<MemoryPolicyOptions> options,
    ITokenCounter tokens, MessageCompressor compressor, IOptions<CompressionOptions> compressionOptions, LlmCompressionRewriter? rewriter = null, LlmOptions? llm = null)
{
    /// <summary>Validates the request and builds the context.</summary>
    public async Task<MemoryContext> QueryAsync(string tenantId, MemoryQueryRequest request, CancellationToken cancellationToken = default)
    {
        using var activity = ContextTelemetry.Source.StartActivity("QueryMemoryContext");
        var conversationId = Ids.Require(request.ConversationId, "conversationId");
        activity?.SetTag("cloudmemory.conversation_id", conversationId);
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
        if (request.TopK is < 1 or > 100)
        {
            throw new ProblemException(400, "invalid-topK", "'topK' must be between 1 and 100.");
        }
        if (request.MaxTokens is < MinMaxTokens or > 10_000_000)
        {
            throw new ProblemException(400, "invalid-maxTokens", $"'maxTokens' must be between {MinMaxTokens} and 10,000,000 tokens.");
        }
        var format = ParseFormat(request.Format);
        var compressionMethod = ContextCompressor.Parse(request.Compression, compressionOptions.Value);

        var reply = await sessions.GetAsync(tenantId, conversationId, cancellationToken);
        if (!reply.IsSuccess)
        {
            throw new ProblemException(reply.Status, reply.Code!, reply.Detail ?? reply.Code!);
        }
        var session = reply.Value!.Session;
        var segment = await log.ReadSinceCheckpointAsync(tenantId, conversationId, cancellationToken);
        var fullHistory = segment.History;

        // If a turn landed between reading the counts and the rows they disagree, and this one
        // answer re-counts what it returns instead. Counts are the configured tokenizer's.
        var historyUnits = segment.CountsMatchRows ? segment.Stats!.HistoryUnits : tokens.JoinedUnits(segment.Messages.Select(ConversationText.Render));
        var query = request.Query ?? "";
        var estimatedTokens = TokenEstimator.TokensFromUnits(historyUnits + 1 + tokens.Units(query));

        var policy = MemoryPolicy.Resolve(options.Value, session.FlowContext.TurnCount, request.TokenThresholdRatio, request.RecentTurns, request.ModelContextWindow);
        var tokenRatio = (double)estimatedTokens / policy.ModelContextWindow;
        ContextTelemetry.TokenRatio.Record(tokenRatio);
        var mode = session.MessageContext.Mode;

        // What is returned fits the budget together with the query: the summary within its share,
        // then the newest turns that fit, never fewer than the last one (truncated if need be).
        var budgetTokens = request.MaxTokens ?? policy.BudgetTokens;
        var queryUnits = query.Length == 0 ? 0 : TokenEstimator.Units(query) + 1;
        var available = Math.Max(0, ContextFit.UnitsOf(budgetTokens) - queryUnits);
        // A history whose stored counts (the configured tokenizer's) fit is returned as it is, with
        // nothing counted again; otherwise the cut to the budget counts with the estimator (cheap per
        // character, and above o200k's counts on prose: docs/memory.md).
        var fitted = mode == MemoryMode.FullHistory && segment.CountsMatchRows && historyUnits <= available
            ? new FittedContext(null, segment.ChatMessages, segment.ChatMessages, fullHistory, historyUnits, Trimmed: false) // fits as it is: nothing to count again
            : mode == MemoryMode.SummaryN
            ? FitWindow(session, policy.RecentTurns, available, ContextFit.UnitsOf(policy.SummaryTokensOf(budgetTokens)))
            : ContextFit.Fit(null, segment.Messages.Select(m => (IReadOnlyList<ChatMessage>)ConversationText.MessagesOf(m)).ToList(), available, 0);
        ContextCompression? compression = null;
        if (compressionMethod == CompressionOptions.Importance)
        {
            (fitted, compression) = await ContextCompressor.ApplyAsync(compressor, compressionOptions.Value, fitted, mode, session, segment, available,
                ContextFit.UnitsOf(policy.SummaryTokensOf(budgetTokens)), rewriter, llm?.Timeout, cancellationToken);
        }
        var history = fitted.History;
        var relevant = request.IncludeRelevantMemories
            ? await RelevantMemoriesAsync(tenantId, conversationId, session.Meta.UserId, query, history, request.TopK ?? 5, cancellationToken)
            : null;
        return new MemoryContext(conversationId, mode, session, history, fullHistory, estimatedTokens, tokenRatio,
            tokenRatio >= policy.TokenThresholdRatio, policy.TokenThresholdRatio, policy.ModelContextWindow, relevant,
            format == OpenAIFormat ? fitted.Messages : null, fitted.Tokens, budgetTokens, fitted.Trimmed,
            Anthropic: format == AnthropicFormat ? AnthropicContext.From(fitted.Messages) : null, Compression: compression);
    }

    /// <summary>Smallest accepted <c>maxTokens</c>.</summary>
    public const int MinMaxTokens = 16;

    private const string OpenAIFormat = "openai";
    private const string TextFormat = "text";
    private const string AnthropicFormat = "anthropic";

    private static string ParseFormat(string? format) => format?.ToLowerInvariant() switch
    {
        null or "" or OpenAIFormat => OpenAIFormat,
        TextFormat => TextFormat,
        AnthropicFormat => AnthropicFormat,
        _ => throw new ProblemException(400, "invalid-format", "'format' must be 'openai' (messages in the chat format), 'anthropic' (system apart, content blocks) or 'text' (history only)."),
    };

    // Long-term memories of the same user (any conversation, this one included: details a summary
    // dropped come back this way), minus messages the history already shows.
    private async Task<IReadOnlyList<RelevantMemory>> RelevantMemoriesAsync(string tenantId, string conversationId, string userId, string query, string history, int topK, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(query))
        {
            return [];
        }
        var filters = userId.Length > 0 ? new MemorySearchFilters(UserId: userId) : new MemorySearchFilters(ContextId: conversationId);
        var response = await memories.SearchAsync(tenantId, new MemorySearchRequest(query, TopK: Math.Min(100, topK * 2), Filters: filters), cancellationToken);
        return response.Hits
            .Where(h => !(h.Entry.Type == MemoryTypes.Message && h.Entry.ContextId == conversationId && history.Contains(h.Entry.Content, StringComparison.Ordinal)))
            .Take(topK)
            .Select(h => new RelevantMemory(h.Entry.Id, h.Entry.Type, h.Entry.Content, h.Entry.ContextId, h.Score, h.SemanticScore, h.LexicalScore, h.Why, h.Entry.CreatedAt))
            .ToList();
    }

    // The summary and window fitted to the budget depend only on the session and the budget: fitted
    // once per session version (SessionSnapshots hands out one shared instance while the stored
    // session is unchanged), so agents reading the same context between two turns pay for it once.
    private static FittedContext FitWindow(SessionValue session, int recentTurns, long available, long summaryUnits)
    {
        var memo = FittedWindows.GetOrCreateValue(session);
        var key = (recentTurns, available, summaryUnits);
        var last = Volatile.Read(ref memo.Last);
        if (last is not null && last.Key == key)
        {
            return last.Fitted;
        }
        var fitted = ContextFit.Fit(session.MessageContext.Summary, LastTurns(session.MessageContext.WindowMessages, recentTurns), available, summaryUnits);
        Volatile.Write(ref memo.Last, new FitEntry(key, fitted));
        return fitted;
    }

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<SessionValue, FitMemo> FittedWindows = [];

    private sealed class FitMemo
    {
        public FitEntry? Last;
    }

    private sealed record FitEntry((int, long, long) Key, FittedContext Fitted);

    private static List<IReadOnlyList<ChatMessage>> LastTurns(List<ChatMessage> window, int turns)
    {
        var all = ContextFit.Turns(window);
        return all.Skip(Math.Max(0, all.Count - turns)).Select(t => (IReadOnlyList<ChatMessage>)t).ToList();
    }
}
