using System.Text.Json;
using CloudMemory.Contracts.Feedback;

namespace CloudMemory.Client;

/// <summary>Listings the dashboard reads (a conversation's trace steps, an agent's strategies), as the services' JSON.</summary>
public sealed partial class CloudMemoryClient
{
    /// <summary><c>GET /v1/conversations/{contextId}/steps</c>: the conversation's trace steps, oldest first.</summary>
    public Task<JsonElement> GetConversationStepsAsync(string contextId, int limit = 200, CancellationToken cancellationToken = default) =>
        SendAsync<JsonElement>(HttpMethod.Get, TraceAppId, $"v1/conversations/{Escape(contextId)}/steps?limit={limit}", null, null, cancellationToken);

    /// <summary><c>GET /v1/agents/{agentId}/strategies</c>: every strategy of the agent with its trials.</summary>
    public Task<IReadOnlyList<Strategy>> ListAgentStrategiesAsync(string agentId, CancellationToken cancellationToken = default) =>
        SendAsync<IReadOnlyList<Strategy>>(HttpMethod.Get, options.FeedbackAppId, $"v1/agents/{Escape(agentId)}/strategies", null, null, cancellationToken);
}
