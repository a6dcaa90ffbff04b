using System.Net.Http.Json;
using CloudMemory.BuildingBlocks.Invocation;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Feedback;

namespace CloudMemory.Context.Features.Query;

/// <summary>
/// <c>strategy</c> of QueryMemoryContext: the agent's current strategy for this conversation (the
/// adopted parameters, plus the running trial's when the conversation is in its treatment arm),
/// asked of the feedback app as the caller, so an agent gets its context and how to behave in one
/// call. Like the experiences, it never fails the context answer: with the feedback app away it is null.
/// </summary>
public sealed class AgentStrategyLookup(IServiceInvoker invoker, ILogger<AgentStrategyLookup> logger)
{
    /// <summary><c>GET /v1/agents/{agentId}/strategy?conversationId=</c> of the feedback app, or null when it cannot answer.</summary>
    public async Task<AgentStrategy?> FindAsync(HttpContext caller, string agentId, string conversationId, CancellationToken cancellationToken)
    {
        try
        {
            using var call = new HttpRequestMessage(HttpMethod.Get,
                $"v1/agents/{Uri.EscapeDataString(agentId)}/strategy?conversationId={Uri.EscapeDataString(conversationId)}");
            using var response = await invoker.InvokeAsync(RelevantExperienceLookup.FeedbackAppId, call.WithIdentityOf(caller), cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                logger.LogWarning("The agent strategy lookup answered {Status}; the context goes without a strategy", (int)response.StatusCode);
                return null;
            }
            return await response.Content.ReadFromJsonAsync<AgentStrategy>(ContractsJson.Options, cancellationToken);
        }
        catch (Exception ex) when (ex is HttpRequestException or InvalidOperationException or System.Text.Json.JsonException
            || (ex is TaskCanceledException && !cancellationToken.IsCancellationRequested))
        {
            logger.LogWarning(ex, "The agent strategy lookup failed; the context goes without a strategy");
            return null;
        }
    }
}
