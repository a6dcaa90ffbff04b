using CloudMemory.Contracts.Traces;

namespace CloudMemory.Client;

/// <summary>One step of a trace, read by its key; the conversation of a trace.</summary>
public sealed partial class CloudMemoryClient
{
    /// <summary>
    /// <c>GET /v1/traces/{traceId}/steps/{stepId}</c>: the step as recorded (inputs, outputs, error,
    /// usage, audit); null when the trace has no such step. Reads one row, not the whole trace.
    /// </summary>
    public async Task<TraceStep?> GetTraceStepAsync(string traceId, string stepId, CancellationToken cancellationToken = default)
    {
        using var response = await SendRawAsync(HttpMethod.Get, TraceAppId, $"v1/traces/{Escape(traceId)}/steps/{Escape(stepId)}", null, null, cancellationToken);
        return response.StatusCode == System.Net.HttpStatusCode.NotFound ? null : await ReadAsync<TraceStep>(response, cancellationToken);
    }

    /// <summary>
    /// <c>GET /v1/traces/{traceId}/conversation</c>: the conversation the trace belongs to (its
    /// <see cref="TraceConversation.ContextId"/>, null when no step names one), without reading the
    /// trace; null when the tenant has no such trace.
    /// </summary>
    public async Task<TraceConversation?> GetTraceConversationAsync(string traceId, CancellationToken cancellationToken = default)
    {
        using var response = await SendRawAsync(HttpMethod.Get, TraceAppId, $"v1/traces/{Escape(traceId)}/conversation", null, null, cancellationToken);
        return response.StatusCode == System.Net.HttpStatusCode.NotFound ? null : await ReadAsync<TraceConversation>(response, cancellationToken);
    }
}
