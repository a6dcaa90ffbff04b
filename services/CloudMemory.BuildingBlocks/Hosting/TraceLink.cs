using Microsoft.AspNetCore.Http;

namespace CloudMemory.BuildingBlocks.Hosting;

/// <summary>The trace step a request was made from: its trace id and step (span) id.</summary>
/// <param name="TraceId">The trace.</param>
/// <param name="StepId">The step (in OpenTelemetry terms the caller's span, which OTLP ingest stores as the step id).</param>
public sealed record TraceLink(string TraceId, string StepId)
{
    /// <summary>Explicit trace id header (the trace app's own ids, which need not be W3C).</summary>
    public const string TraceIdHeader = "X-Trace-Id";

    /// <summary>Explicit step id header.</summary>
    public const string StepIdHeader = "X-Step-Id";

    /// <summary>Metadata key under which a long-term memory entry keeps the step that produced it (its trace id is the entry's <c>traceId</c>).</summary>
    public const string StepIdMetadataKey = "traceStepId";

    /// <summary>
    /// The producing step of <paramref name="context"/>'s request: <c>X-Trace-Id</c> + <c>X-Step-Id</c>
    /// when both are valid ids, else the W3C <c>traceparent</c> (trace id and parent span id, the
    /// caller's span); null when neither is there or valid.
    /// </summary>
    public static TraceLink? From(HttpContext context)
    {
        var headers = context.Request.Headers;
        var traceId = headers[TraceIdHeader].ToString();
        var stepId = headers[StepIdHeader].ToString();
        if (Ids.IsValid(traceId) && Ids.IsValid(stepId))
        {
            return new TraceLink(traceId, stepId);
        }
        return FromTraceParent(headers.TraceParent.ToString());
    }

    /// <summary>Parses a W3C <c>traceparent</c> (version 00: <c>00-{32 hex}-{16 hex}-{2 hex}</c>); all-zero ids are invalid.</summary>
    public static TraceLink? FromTraceParent(string? traceParent)
    {
        if (traceParent is not { Length: 55 } || traceParent[2] != '-' || traceParent[35] != '-' || traceParent[52] != '-')
        {
            return null;
        }
        var traceId = traceParent.Substring(3, 32);
        var spanId = traceParent.Substring(36, 16);
        return IsHex(traceId) && IsHex(spanId) && traceId.Any(c => c != '0') && spanId.Any(c => c != '0')
            ? new TraceLink(traceId, spanId)
            : null;
    }

    private static bool IsHex(string text) => text.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f');
}
