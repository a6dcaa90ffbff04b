using System.Text.Json;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Traces;
using CloudMemory.Trace.Features.Diff;
using CloudMemory.Trace.Features.Read;
using CloudMemory.Trace.Features.Steps;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CloudMemory.Trace.Features.Replay;

/// <summary>A breakpoint: every given field must match (a breakpoint with none matches every step).</summary>
public sealed record Breakpoint(string? StepType = null, string? AgentId = null, string? Name = null, string? Condition = null);

/// <summary>Body of <c>POST /v1/traces/{traceId}/replay</c>.</summary>
/// <param name="Mode"><c>debug</c> (breakpoints stop it), <c>audit</c> (with each step's audit), <c>analysis</c> (with each step's learned threshold).</param>
/// <param name="FromStep">First step index (inclusive).</param>
/// <param name="ToStep">Last step index (inclusive).</param>
/// <param name="Breakpoints">Debug mode only.</param>
/// <param name="CompareWith">Another run of the same task: each entry lists its differences from the step at the same index there.</param>
public sealed record ReplayRequest(string? Mode = "debug", int? FromStep = null, int? ToStep = null, IReadOnlyList<Breakpoint>? Breakpoints = null, string? CompareWith = null);

/// <summary>Answer of a replay.</summary>
public sealed record ReplayResult(string TraceId, string Mode, int StepsReplayed, ReplayStop? StoppedAt, IReadOnlyList<ReplayEntry> Log);

/// <summary>Where and why a debug replay stopped, and the state there.</summary>
public sealed record ReplayStop(int StepIndex, string StepId, string Reason, int Breakpoint, ReplayState State);

/// <summary>The state of the run when the breakpoint hit.</summary>
/// <param name="Step">The step the breakpoint matched (inputs and recorded outputs).</param>
/// <param name="Previous">Up to five steps before it, newest last.</param>
/// <param name="ElapsedMs">Recorded time from the first replayed step's start to this step's end.</param>
/// <param name="InputTokens">Tokens so far.</param>
/// <param name="OutputTokens">Tokens so far.</param>
/// <param name="Cost">Cost so far.</param>
/// <param name="Errors">Failed steps so far.</param>
/// <param name="NextStep">The step index to resume from (<c>fromStep</c> of the next request), null at the end.</param>
public sealed record ReplayState(TraceStep Step, IReadOnlyList<ReplayEntry> Previous, double ElapsedMs, long InputTokens, long OutputTokens, double Cost, int Errors, int? NextStep);

/// <summary>
/// One replayed step. <see cref="Executed"/> is always false: a replay reads recorded outputs and
/// never calls a model or tool again, so no external effect happens twice.
/// </summary>
public sealed record ReplayEntry(int StepIndex, string StepId, string AgentId, string StepType, string Name, string Status, bool Executed,
    JsonElement? Outputs, bool Success, StepError? Error, double DurationMs, double ElapsedMs,
    IReadOnlyList<StepDifference>? Differences = null, StepAudit? Audit = null, ReplayTiming? Timing = null);

/// <summary>Analysis mode: the step's duration against the tenant's learned threshold for its type and agent.</summary>
public sealed record ReplayTiming(double ThresholdMs, double P95Ms, bool Anomalous);

/// <summary>Replays recorded traces (<c>POST /v1/traces/{traceId}/replay</c>).</summary>
public static class TraceReplayer
{
    private static readonly HashSet<string> Modes = ["debug", "audit", "analysis"];

    /// <summary>Maps the route.</summary>
    public static IEndpointRouteBuilder MapTraceReplay(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost("/v1/traces/{traceId}/replay", ReplayAsync).WithTags("Traces");
        return endpoints;
    }

    /// <summary><c>POST /v1/traces/{traceId}/replay</c>.</summary>
    public static async Task<Ok<ReplayResult>> ReplayAsync(HttpContext http, string traceId, ReplayRequest request, ITraceStore store, CancellationToken cancellationToken)
    {
        var mode = request.Mode ?? "debug";
        if (!Modes.Contains(mode))
        {
            throw new ProblemException(400, "invalid-mode", "'mode' must be debug, audit or analysis.");
        }
        if (request.FromStep is < 0 || request.ToStep is < 0 || request.FromStep > request.ToStep)
        {
            throw new ProblemException(400, "invalid-range", "'fromStep' and 'toStep' must be step indexes with fromStep <= toStep.");
        }
        var breakpoints = request.Breakpoints ?? [];
        if (breakpoints.Count > 0 && mode != "debug")
        {
            throw new ProblemException(400, "breakpoints-need-debug", "Breakpoints apply to debug replays only.");
        }
        if (breakpoints.Count > 50)
        {
            throw new ProblemException(400, "too-many-breakpoints", "At most 50 breakpoints.");
        }
        var compiled = new StepCondition?[breakpoints.Count];
        for (var b = 0; b < breakpoints.Count; b++)
        {
            if (breakpoints[b]?.Condition is { } text)
            {
                try
                {
                    compiled[b] = StepCondition.Parse(text);
                }
                catch (ConditionException ex)
                {
                    throw new ProblemException(400, "invalid-condition", $"breakpoints[{b}].condition {ex.Message}");
                }
            }
        }

        var steps = await TraceReadEndpoints.LoadAsync(http, traceId, store, cancellationToken);
        IReadOnlyDictionary<int, TraceStep>? other = null;
        if (request.CompareWith is { } otherId)
        {
            other = (await TraceReadEndpoints.LoadAsync(http, otherId, store, cancellationToken)).GroupBy(s => s.StepIndex).ToDictionary(g => g.Key, g => g.First());
        }
        IReadOnlyDictionary<(string, string), DurationStats>? stats = null;
        if (mode == "analysis")
        {
            stats = (await store.GetDurationStatsAsync(Tenant.From(http), cancellationToken)).ToDictionary(s => (s.StepType, s.AgentId));
        }
        return TypedResults.Ok(Replay(traceId, mode, steps, request.FromStep, request.ToStep, breakpoints, compiled, other, stats));
    }

    /// <summary>Replays <paramref name="steps"/> (ordered by index) from their recorded outputs.</summary>
    public static ReplayResult Replay(string traceId, string mode, IReadOnlyList<TraceStep> steps, int? fromStep, int? toStep,
        IReadOnlyList<Breakpoint> breakpoints, IReadOnlyList<StepCondition?> conditions,
        IReadOnlyDictionary<int, TraceStep>? other, IReadOnlyDictionary<(string, string), DurationStats>? stats)
    {
        var range = steps.Where(s => (fromStep is null || s.StepIndex >= fromStep) && (toStep is null || s.StepIndex <= toStep)).ToList();
        var log = new List<ReplayEntry>(range.Count);
        var origin = range.Count > 0 ? range.Min(s => s.StartedAt) : default;
        var end = origin;
        long inputTokens = 0, outputTokens = 0;
        double cost = 0;
        var errors = 0;
        for (var k = 0; k < range.Count; k++)
        {
            var step = range[k];
            end = step.EndedAt > end ? step.EndedAt : end;
            inputTokens += step.Usage?.InputTokens ?? 0;
            outputTokens += step.Usage?.OutputTokens ?? 0;
            cost += step.Cost;
            errors += step.Success ? 0 : 1;
            List<StepDifference>? differences = null;
            if (other is not null)
            {
                differences = [];
                if (other.TryGetValue(step.StepIndex, out var counterpart))
                {
                    TraceDiff.Steps(step, counterpart, differences);
                }
                else
                {
                    differences.Add(new StepDifference(step.StepIndex, "missing", null, null));
                }
            }
            ReplayTiming? timing = null;
            if (stats is not null && stats.TryGetValue((step.StepType, step.AgentId), out var history) && history.Count > 0)
            {
                var threshold = history.Threshold();
                timing = new ReplayTiming(threshold, history.Quantile(0.95), step.DurationMs > threshold);
            }
            var entry = new ReplayEntry(step.StepIndex, step.StepId, step.AgentId, step.StepType, step.Name, "replayed", Executed: false,
                step.Outputs, step.Success, step.Error, step.DurationMs, (end - origin).TotalMilliseconds,
                differences, mode == "audit" ? step.Audit : null, timing);
            log.Add(entry);
            for (var b = 0; b < breakpoints.Count; b++)
            {
                if (Hits(breakpoints[b], conditions[b], step))
                {
                    var state = new ReplayState(step, log.GetRange(Math.Max(0, log.Count - 6), Math.Min(5, log.Count - 1)), (end - origin).TotalMilliseconds,
                        inputTokens, outputTokens, cost, errors, k + 1 < range.Count ? range[k + 1].StepIndex : null);
                    return new ReplayResult(traceId, mode, log.Count, new ReplayStop(step.StepIndex, step.StepId, Describe(breakpoints[b], b), b, state), log);
                }
            }
        }
        return new ReplayResult(traceId, mode, log.Count, null, log);
    }

    private static bool Hits(Breakpoint breakpoint, StepCondition? condition, TraceStep step) =>
        (breakpoint.StepType is null || string.Equals(breakpoint.StepType, step.StepType, StringComparison.OrdinalIgnoreCase))
        && (breakpoint.AgentId is null || breakpoint.AgentId == step.AgentId)
        && (breakpoint.Name is null || breakpoint.Name == step.Name)
        && (condition is null || condition.Matches(step));

    private static string Describe(Breakpoint b, int index)
    {
        var parts = new List<string>();
        if (b.StepType is not null)
        {
            parts.Add($"stepType={b.StepType}");
        }
        if (b.AgentId is not null)
        {
            parts.Add($"agentId={b.AgentId}");
        }
        if (b.Name is not null)
        {
            parts.Add($"name={b.Name}");
        }
        if (b.Condition is not null)
        {
            parts.Add($"condition: {b.Condition}");
        }
        return $"breakpoint {index}" + (parts.Count > 0 ? $" ({string.Join(", ", parts)})" : " (every step)");
    }
}
