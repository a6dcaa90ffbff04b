namespace CloudMemory.Contracts.Traces;

/// <summary>Answer of <c>GET /v1/traces/{traceId}/conversation</c>.</summary>
/// <param name="TraceId">The trace.</param>
/// <param name="ContextId">The <c>contextId</c> of its first step (by index) that names one; null when none does.</param>
public sealed record TraceConversation(string TraceId, string? ContextId);
