using System.Text.Json;
using CloudMemory.Contracts.Traces;

namespace CloudMemory.Client;

/// <summary>The trace service's calls (app id <c>trace</c>). Reads answer the service's JSON as is.</summary>
public sealed partial class CloudMemoryClient
{
    private const string TraceAppId = "trace";

    /// <summary>Stores steps (1..n); answers once they are durable. Prefer <see cref="TraceWriter"/> from agent code.</summary>
    public Task<IngestStepsResult> IngestStepsAsync(IReadOnlyList<TraceStepInput> steps, CancellationToken cancellationToken = default) =>
        SendAsync<IngestStepsResult>(HttpMethod.Post, TraceAppId, "v1/traces/steps", new IngestStepsRequest(steps), null, cancellationToken);

    /// <summary><c>GET /v1/traces/{traceId}</c>: steps, tree and roll-up.</summary>
    public Task<JsonElement> GetTraceAsync(string traceId, CancellationToken cancellationToken = default) =>
        SendAsync<JsonElement>(HttpMethod.Get, TraceAppId, $"v1/traces/{Escape(traceId)}", null, null, cancellationToken);

    /// <summary><c>GET /v1/traces/{traceId}/diff/{otherTraceId}</c>.</summary>
    public Task<JsonElement> DiffTracesAsync(string traceId, string otherTraceId, CancellationToken cancellationToken = default) =>
        SendAsync<JsonElement>(HttpMethod.Get, TraceAppId, $"v1/traces/{Escape(traceId)}/diff/{Escape(otherTraceId)}", null, null, cancellationToken);

    /// <summary><c>POST /v1/traces/{traceId}/replay</c> with a body such as <c>new { mode = "debug", breakpoints = new[] { new { condition = "durationMs &gt; 1000" } } }</c>.</summary>
    public Task<JsonElement> ReplayTraceAsync(string traceId, object request, CancellationToken cancellationToken = default) =>
        SendAsync<JsonElement>(HttpMethod.Post, TraceAppId, $"v1/traces/{Escape(traceId)}/replay", request, null, cancellationToken);

    /// <summary><c>GET /v1/traces/{traceId}/analysis</c>.</summary>
    public Task<JsonElement> AnalyzeTraceAsync(string traceId, CancellationToken cancellationToken = default) =>
        SendAsync<JsonElement>(HttpMethod.Get, TraceAppId, $"v1/traces/{Escape(traceId)}/analysis", null, null, cancellationToken);

    /// <summary><c>GET /v1/traces/{traceId}/audit</c>.</summary>
    public Task<JsonElement> AuditTraceAsync(string traceId, CancellationToken cancellationToken = default) =>
        SendAsync<JsonElement>(HttpMethod.Get, TraceAppId, $"v1/traces/{Escape(traceId)}/audit", null, null, cancellationToken);

    /// <summary><c>GET /v1/agents/{agentId}/actions</c>: the agent's recent actions, newest first.</summary>
    public Task<JsonElement> GetRecentActionsAsync(string agentId, int limit = 20, CancellationToken cancellationToken = default) =>
        SendAsync<JsonElement>(HttpMethod.Get, TraceAppId, $"v1/agents/{Escape(agentId)}/actions?limit={limit}", null, null, cancellationToken);

    /// <summary><c>GET /v1/memories/{id}/provenance</c>: the steps that produced a memory entry.</summary>
    public Task<JsonElement> GetMemoryProvenanceAsync(string memoryId, CancellationToken cancellationToken = default) =>
        SendAsync<JsonElement>(HttpMethod.Get, TraceAppId, $"v1/memories/{Escape(memoryId)}/provenance", null, null, cancellationToken);
}
