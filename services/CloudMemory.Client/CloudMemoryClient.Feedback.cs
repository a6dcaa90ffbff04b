using CloudMemory.Contracts.Feedback;

namespace CloudMemory.Client;

/// <summary>The feedback app: feedback, analysis, experiences, strategies and learning cycles.</summary>
public sealed partial class CloudMemoryClient
{
    /// <summary><c>POST /v1/feedback</c>: records feedback (idempotent by <c>id</c>; another content under the same id throws with code <c>feedback-id-conflict</c>).</summary>
    public Task<FeedbackRecord> RecordFeedbackAsync(RecordFeedbackRequest request, CancellationToken cancellationToken = default) =>
        SendAsync<FeedbackRecord>(HttpMethod.Post, options.FeedbackAppId, "v1/feedback", request, null, cancellationToken);

    /// <summary><c>GET /v1/feedback</c>: one page, newest first; pass the answer's <c>nextCursor</c> as <paramref name="cursor"/>.</summary>
    public Task<FeedbackPage> ListFeedbackAsync(string? targetType = null, string? targetId = null, string? agentId = null, string? cursor = null, int limit = 50, CancellationToken cancellationToken = default)
    {
        var query = new List<string> { $"limit={limit}" };
        Add(query, "targetType", targetType);
        Add(query, "targetId", targetId);
        Add(query, "agentId", agentId);
        Add(query, "cursor", cursor);
        return SendAsync<FeedbackPage>(HttpMethod.Get, options.FeedbackAppId, "v1/feedback?" + string.Join('&', query), null, null, cancellationToken);
    }

    /// <summary><c>POST /v1/feedback/from-trace</c>: records the system feedback (slow steps, unrecovered failures) of the trace app's analysis of <paramref name="traceId"/>; idempotent.</summary>
    public Task<TraceFeedbackImport> ImportTraceFeedbackAsync(string traceId, CancellationToken cancellationToken = default) =>
        SendAsync<TraceFeedbackImport>(HttpMethod.Post, options.FeedbackAppId, "v1/feedback/from-trace", new ImportTraceFeedbackRequest(traceId), null, cancellationToken);

    /// <summary><c>PUT /v1/feedback/configs/{name}</c>: defines a feedback name and its allowed values.</summary>
    public Task<FeedbackConfig> PutFeedbackConfigAsync(FeedbackConfig config, CancellationToken cancellationToken = default) =>
        SendAsync<FeedbackConfig>(HttpMethod.Put, options.FeedbackAppId, $"v1/feedback/configs/{Escape(config.Name)}", config, null, cancellationToken);

    /// <summary><c>GET /v1/feedback/configs</c>.</summary>
    public Task<FeedbackConfigList> ListFeedbackConfigsAsync(CancellationToken cancellationToken = default) =>
        SendAsync<FeedbackConfigList>(HttpMethod.Get, options.FeedbackAppId, "v1/feedback/configs", null, null, cancellationToken);

    /// <summary><c>GET /v1/feedback/analysis</c>: distributions, issue categories, trends and detected patterns.</summary>
    public Task<FeedbackAnalysis> AnalyzeFeedbackAsync(string? agentId = null, DateTimeOffset? since = null, DateTimeOffset? until = null, string? window = null, CancellationToken cancellationToken = default)
    {
        var query = new List<string>();
        Add(query, "agentId", agentId);
        Add(query, "since", since?.ToString("O"));
        Add(query, "until", until?.ToString("O"));
        Add(query, "window", window);
        return SendAsync<FeedbackAnalysis>(HttpMethod.Get, options.FeedbackAppId, "v1/feedback/analysis?" + string.Join('&', query), null, null, cancellationToken);
    }

    /// <summary><c>POST /v1/experiences</c>: records an experience (idempotent by <c>id</c>).</summary>
    public Task<Experience> RecordExperienceAsync(RecordExperienceRequest request, CancellationToken cancellationToken = default) =>
        SendAsync<Experience>(HttpMethod.Post, options.FeedbackAppId, "v1/experiences", request, null, cancellationToken);

    /// <summary><c>POST /v1/experiences/search</c>: similar past experiences ranked by similarity and success rate.</summary>
    public Task<SimilarExperiences> SearchExperiencesAsync(SearchExperiencesRequest request, CancellationToken cancellationToken = default) =>
        SendAsync<SimilarExperiences>(HttpMethod.Post, options.FeedbackAppId, "v1/experiences/search", request, null, cancellationToken);

    /// <summary><c>GET /v1/agents/{agentId}/strategy</c>: the parameters to use (for <paramref name="conversationId"/>'s trial arm when given).</summary>
    public Task<AgentStrategy> GetAgentStrategyAsync(string agentId, string? conversationId = null, CancellationToken cancellationToken = default) =>
        SendAsync<AgentStrategy>(HttpMethod.Get, options.FeedbackAppId,
            $"v1/agents/{Escape(agentId)}/strategy" + (conversationId is null ? "" : "?conversationId=" + Escape(conversationId)), null, null, cancellationToken);

    /// <summary><c>POST /v1/learning/cycles</c>: runs a learning cycle for the agent now (idempotent by <paramref name="cycleId"/>).</summary>
    public Task<LearningCycle> RunLearningCycleAsync(string agentId, string? cycleId = null, CancellationToken cancellationToken = default) =>
        SendAsync<LearningCycle>(HttpMethod.Post, options.FeedbackAppId, "v1/learning/cycles", new RunLearningCycleRequest(agentId, cycleId), null, cancellationToken);

    /// <summary><c>GET /v1/learning/cycles</c>: history, newest first.</summary>
    public Task<LearningCyclePage> ListLearningCyclesAsync(string? agentId = null, int limit = 50, CancellationToken cancellationToken = default) =>
        SendAsync<LearningCyclePage>(HttpMethod.Get, options.FeedbackAppId,
            $"v1/learning/cycles?limit={limit}" + (agentId is null ? "" : "&agentId=" + Escape(agentId)), null, null, cancellationToken);

    private static void Add(List<string> query, string name, string? value)
    {
        if (value is not null)
        {
            query.Add($"{name}={Escape(value)}");
        }
    }
}
