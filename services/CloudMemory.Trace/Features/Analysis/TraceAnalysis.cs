using System.Globalization;
using CloudMemory.Contracts.Traces;
using CloudMemory.Trace.Features.Diff;

namespace CloudMemory.Trace.Features.Analysis;

/// <summary>Answer of <c>GET /v1/traces/{traceId}/analysis</c>.</summary>
public sealed record TraceAnalysis(string TraceId, ExecutionPatterns Patterns, IReadOnlyList<StepPerformance> Performance,
    IReadOnlyList<FailureGroup> Failures, IReadOnlyList<DecisionPoint> DecisionPoints, IReadOnlyList<Suggestion> Suggestions);

/// <summary>Execution patterns found in the trace.</summary>
/// <param name="Detected">Which of sequential, parallel, retry, recursive occur.</param>
/// <param name="LongestSequentialChain">Most sibling steps that ran one after another.</param>
/// <param name="Parallel">Groups of sibling steps that overlapped in time.</param>
/// <param name="Retries">Steps attempted more than once.</param>
/// <param name="Recursion">Steps nested inside a step of the same signature.</param>
public sealed record ExecutionPatterns(IReadOnlyList<string> Detected, int LongestSequentialChain, IReadOnlyList<ParallelGroup> Parallel,
    IReadOnlyList<RetryChain> Retries, IReadOnlyList<RecursionSite> Recursion);

/// <summary>Siblings that ran at the same time.</summary>
public sealed record ParallelGroup(string? ParentStepId, IReadOnlyList<string> StepIds, int MaxConcurrency, IReadOnlyList<string> Agents);

/// <summary>Attempts of one step, in order; <see cref="Explicit"/> when linked by <c>retryOf</c>, inferred from a failed sibling of the same signature otherwise.</summary>
public sealed record RetryChain(string Signature, IReadOnlyList<string> StepIds, int Attempts, bool Recovered, bool Explicit, double FailedAttemptsMs);

/// <summary>A step nested inside a step with the same signature.</summary>
public sealed record RecursionSite(string StepId, string Signature, int Depth);

/// <summary>Durations of one step type and agent in this trace against the tenant's history.</summary>
/// <param name="ThresholdMs">Learned p95 + 3·MAD over the tenant's history, null until 20 runs are known.</param>
public sealed record StepPerformance(string StepType, string AgentId, int Count, double TotalMs, double P50Ms, double P95Ms, double MaxMs,
    long HistoryCount, double? HistoryP95Ms, double? ThresholdMs, IReadOnlyList<Anomaly> Anomalies);

/// <summary>A step slower than its learned threshold.</summary>
public sealed record Anomaly(string StepId, int StepIndex, double DurationMs, double ThresholdMs, double Ratio);

/// <summary>Failures of one error type and step signature.</summary>
public sealed record FailureGroup(string ErrorType, string Signature, int Count, IReadOnlyList<string> StepIds, string? FirstMessage, bool Recovered);

/// <summary>A point where the run chose a path.</summary>
public sealed record DecisionPoint(string StepId, int StepIndex, string Kind, string AgentId, string Name, string? Chosen, IReadOnlyList<string> Alternatives, bool Success);

/// <summary>An optimisation suggestion with the steps and numbers it rests on.</summary>
public sealed record Suggestion(string Kind, string Message, IReadOnlyList<string> StepIds, IReadOnlyDictionary<string, double> Evidence);

/// <summary>Failure-point analysis of one step.</summary>
public sealed record FailureAnalysis(TraceStep Step, IReadOnlyList<TraceStep> Before, IReadOnlyList<TraceStep> After, IReadOnlyList<TraceStep> Ancestors,
    IReadOnlyList<TraceStep> MemoryBefore, IReadOnlyList<TraceStep> MemoryAfter, IReadOnlyList<string> LikelyCauses,
    TraceStep? LastSuccess, IReadOnlyList<StepDifference> DifferencesFromLastSuccess);

/// <summary>Formatting shared by the analysers.</summary>
internal static class Text
{
    public static string Ms(double value) => value.ToString("#,0", CultureInfo.InvariantCulture) + " ms";

    public static string Signature(TraceStep s) => $"{s.AgentId}/{s.StepType}/{s.Name}";
}
