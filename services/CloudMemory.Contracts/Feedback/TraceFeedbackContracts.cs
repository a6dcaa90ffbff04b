namespace CloudMemory.Contracts.Feedback;

/// <summary><c>POST /v1/feedback/from-trace</c>: record system feedback from the trace app's analysis of one trace.</summary>
public sealed record ImportTraceFeedbackRequest(string? TraceId);

/// <summary>
/// The system feedback the trace's analysis gave (a <c>latency_ms</c> record per slow step, an
/// <c>anomaly</c> record per step of an unrecovered failure), whether recorded now or before, and
/// how many are new.
/// </summary>
public sealed record TraceFeedbackImport(string TraceId, IReadOnlyList<FeedbackRecord> Items, int Created);
