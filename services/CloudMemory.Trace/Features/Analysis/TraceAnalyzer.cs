using System.Globalization;
using System.Text.Json;
using CloudMemory.Contracts.Traces;
using CloudMemory.Trace.Features.Diff;
using CloudMemory.Trace.Features.Read;
using CloudMemory.Trace.Features.Steps;

namespace CloudMemory.Trace.Features.Analysis;

/// <summary>
/// Analyses one trace against the tenant's learned duration statistics (kept up to date by every
/// append, so no history is rescanned): patterns, performance and anomalies, failure groups,
/// decision points and suggestions computed from the numbers found.
/// </summary>
public static class TraceAnalyzer
{
    /// <summary>Fewest historical runs before a threshold is trusted.</summary>
    public const int MinHistory = 20;

    /// <summary>The analysis of <paramref name="steps"/> (ordered by index).</summary>
    public static TraceAnalysis Analyze(string traceId, IReadOnlyList<TraceStep> steps, IReadOnlyList<DurationStats> history)
    {
        var view = TraceViewBuilder.Build(traceId, steps);
        var byId = steps.ToDictionary(s => s.StepId, StringComparer.Ordinal);
        var siblings = steps.Select((s, i) => (Step: s, Parent: view.Tree.Nodes[i].ParentStepId ?? "")).GroupBy(x => x.Parent, x => x.Step).ToList();
        var patterns = Patterns(steps, byId, view, siblings);
        var stats = history.ToDictionary(h => (h.StepType, h.AgentId));
        var performance = Performance(steps, stats);
        var failures = Failures(steps, patterns.Retries);
        var decisions = Decisions(steps, view);
        var suggestions = Suggestions(steps, view, patterns, performance, failures);
        return new TraceAnalysis(traceId, patterns, performance, failures, decisions, suggestions);
    }

    private static ExecutionPatterns Patterns(IReadOnlyList<TraceStep> steps, Dictionary<string, TraceStep> byId, TraceView view, List<IGrouping<string, TraceStep>> siblings)
    {
        var parallel = new List<ParallelGroup>();
        var longestChain = 0;
        foreach (var group in siblings)
        {
            var ordered = group.OrderBy(s => s.StartedAt).ThenBy(s => s.StepIndex).ToList();
            var chain = 1;
            var current = new List<TraceStep> { ordered[0] };
            var groupEnd = ordered[0].EndedAt;
            void Close()
            {
                if (current.Count > 1)
                {
                    parallel.Add(new ParallelGroup(group.Key.Length == 0 ? null : group.Key, [.. current.Select(s => s.StepId)], MaxConcurrency(current),
                        [.. current.Select(s => s.AgentId).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)]));
                }
            }
            for (var k = 1; k < ordered.Count; k++)
            {
                var s = ordered[k];
                if (s.StartedAt < groupEnd)
                {
                    current.Add(s);
                    chain = 1;
                }
                else
                {
                    Close();
                    current = [s];
                    chain++;
                    longestChain = Math.Max(longestChain, chain);
                }
                groupEnd = s.EndedAt > groupEnd ? s.EndedAt : groupEnd;
            }
            Close();
        }

        var retries = new List<RetryChain>();
        var claimed = new HashSet<string>(StringComparer.Ordinal);
        // Explicit chains: follow retryOf links back to the first attempt.
        foreach (var last in steps.Where(s => s.RetryOf is not null && !steps.Any(o => o.RetryOf == s.StepId)))
        {
            var chain = new List<TraceStep> { last };
            var seen = new HashSet<string>(StringComparer.Ordinal) { last.StepId };
            while (chain[^1].RetryOf is { } previous && byId.TryGetValue(previous, out var earlier) && seen.Add(earlier.StepId))
            {
                chain.Add(earlier);
            }
            chain.Reverse();
            claimed.UnionWith(chain.Select(c => c.StepId));
            retries.Add(new RetryChain(Text.Signature(chain[0]), [.. chain.Select(c => c.StepId)], chain.Count, chain[^1].Success, Explicit: true,
                chain.Where(c => !c.Success).Sum(c => c.DurationMs)));
        }
        // Inferred: a failed step followed (among its siblings) by the same signature.
        foreach (var group in siblings)
        {
            var ordered = group.OrderBy(s => s.StartedAt).ThenBy(s => s.StepIndex).ToList();
            for (var k = 0; k < ordered.Count; k++)
            {
                if (ordered[k].Success || claimed.Contains(ordered[k].StepId))
                {
                    continue;
                }
                var chain = new List<TraceStep> { ordered[k] };
                for (var m = k + 1; m < ordered.Count && !chain[^1].Success; m++)
                {
                    if (Text.Signature(ordered[m]) == Text.Signature(ordered[k]) && !claimed.Contains(ordered[m].StepId))
                    {
                        chain.Add(ordered[m]);
                    }
                }
                if (chain.Count > 1)
                {
                    claimed.UnionWith(chain.Select(c => c.StepId));
                    retries.Add(new RetryChain(Text.Signature(chain[0]), [.. chain.Select(c => c.StepId)], chain.Count, chain[^1].Success, Explicit: false,
                        chain.Where(c => !c.Success).Sum(c => c.DurationMs)));
                }
            }
        }

        // Depth-first over the tree, counting the signatures on the current path: a step is recursive
        // when its own signature is already on the path above it.
        var recursion = new List<RecursionSite>();
        var nodes = view.Tree.Nodes;
        var position = new Dictionary<string, int>(steps.Count, StringComparer.Ordinal);
        for (var i = 0; i < steps.Count; i++)
        {
            position[steps[i].StepId] = i;
        }
        var onPath = new Dictionary<string, int>(StringComparer.Ordinal);
        var stack = new Stack<(int Node, bool Exit)>();
        foreach (var root in view.Tree.Roots)
        {
            stack.Push((position[root], false));
        }
        while (stack.Count > 0)
        {
            var (node, exit) = stack.Pop();
            var signature = Text.Signature(steps[node]);
            if (exit)
            {
                onPath[signature]--;
                continue;
            }
            var depth = onPath.GetValueOrDefault(signature);
            if (depth > 0)
            {
                recursion.Add(new RecursionSite(steps[node].StepId, signature, depth));
            }
            onPath[signature] = depth + 1;
            stack.Push((node, true));
            foreach (var child in nodes[node].Children)
            {
                stack.Push((position[child], false));
            }
        }

        var detected = new List<string>();
        if (longestChain >= 2)
        {
            detected.Add("sequential");
        }
        if (parallel.Count > 0)
        {
            detected.Add("parallel");
        }
        if (retries.Count > 0)
        {
            detected.Add("retry");
        }
        if (recursion.Count > 0)
        {
            detected.Add("recursive");
        }
        return new ExecutionPatterns(detected, longestChain, parallel, retries, [.. recursion.OrderByDescending(r => r.Depth).Take(100)]);
    }

    private static int MaxConcurrency(List<TraceStep> group)
    {
        var events = group.SelectMany(s => new[] { (s.StartedAt, 1), (s.EndedAt, -1) }).OrderBy(e => e.Item1).ThenBy(e => e.Item2).ToList();
        int running = 0, max = 0;
        foreach (var (_, delta) in events)
        {
            running += delta;
            max = Math.Max(max, running);
        }
        return max;
    }

    private static List<StepPerformance> Performance(IReadOnlyList<TraceStep> steps, Dictionary<(string, string), DurationStats> stats)
    {
        var result = new List<StepPerformance>();
        foreach (var group in steps.GroupBy(s => (s.StepType, s.AgentId)).OrderBy(g => g.Key.StepType, StringComparer.Ordinal).ThenBy(g => g.Key.AgentId, StringComparer.Ordinal))
        {
            var durations = group.Select(s => s.DurationMs).Order().ToList();
            stats.TryGetValue(group.Key, out var history);
            var historyCount = history?.Count ?? 0;
            double? threshold = historyCount >= MinHistory ? history!.Threshold() : null;
            var anomalies = threshold is { } t
                ? group.Where(s => s.DurationMs > t).Select(s => new Anomaly(s.StepId, s.StepIndex, s.DurationMs, t, Math.Round(s.DurationMs / Math.Max(t, 1), 2))).ToList()
                : [];
            result.Add(new StepPerformance(group.Key.StepType, group.Key.AgentId, durations.Count, durations.Sum(),
                Percentile(durations, 0.5), Percentile(durations, 0.95), durations[^1], historyCount,
                historyCount > 0 ? history!.Quantile(0.95) : null, threshold, anomalies));
        }
        return result;
    }

    private static double Percentile(List<double> sorted, double q) => sorted[Math.Clamp((int)Math.Ceiling(q * sorted.Count) - 1, 0, sorted.Count - 1)];

    private static List<FailureGroup> Failures(IReadOnlyList<TraceStep> steps, IReadOnlyList<RetryChain> retries)
    {
        var recoveredIds = retries.Where(r => r.Recovered).SelectMany(r => r.StepIds).ToHashSet(StringComparer.Ordinal);
        return [.. steps.Where(s => !s.Success)
            .GroupBy(s => (s.Error?.Type ?? "error", Text.Signature(s)))
            .OrderByDescending(g => g.Count()).ThenBy(g => g.Key.Item1, StringComparer.Ordinal)
            .Select(g => new FailureGroup(g.Key.Item1, g.Key.Item2, g.Count(), [.. g.Select(s => s.StepId)], g.First().Error?.Message, g.All(s => recoveredIds.Contains(s.StepId))))];
    }

    private static List<DecisionPoint> Decisions(IReadOnlyList<TraceStep> steps, TraceView view)
    {
        var result = new List<DecisionPoint>();
        var byId = steps.ToDictionary(s => s.StepId, StringComparer.Ordinal);
        for (var i = 0; i < steps.Count; i++)
        {
            var s = steps[i];
            if (s.StepType == StepTypes.Decision)
            {
                result.Add(new DecisionPoint(s.StepId, s.StepIndex, "decision", s.AgentId, s.Name,
                    Field(s.Outputs, "choice", "decision", "chosen", "selected") ?? Scalar(s.Outputs),
                    Options(s.Inputs, "options", "alternatives", "choices", "candidates"), s.Success));
            }
            else if (s.StepType == StepTypes.Handoff || s.DelegatedTo is not null)
            {
                result.Add(new DecisionPoint(s.StepId, s.StepIndex, "handoff", s.AgentId, s.Name, s.DelegatedTo ?? Field(s.Outputs, "agent", "agentId", "target"),
                    Options(s.Inputs, "agents", "candidates", "options"), s.Success));
            }
            var children = view.Tree.Nodes[i].Children;
            var childAgents = children.Select(c => byId[c].AgentId).Distinct(StringComparer.Ordinal).ToList();
            if (childAgents.Count > 1 || childAgents.Count == 1 && childAgents[0] != s.AgentId && children.Count > 1)
            {
                result.Add(new DecisionPoint(s.StepId, s.StepIndex, "fan-out", s.AgentId, s.Name, string.Join(",", childAgents), [], s.Success));
            }
        }
        return result;
    }

    private static string? Field(JsonElement? value, params string[] names)
    {
        if (value is not { ValueKind: JsonValueKind.Object } obj)
        {
            return null;
        }
        foreach (var name in names)
        {
            if (obj.TryGetProperty(name, out var v))
            {
                return v.ValueKind == JsonValueKind.String ? v.GetString() : v.GetRawText();
            }
        }
        return null;
    }

    private static string? Scalar(JsonElement? value) => value is { ValueKind: JsonValueKind.String } s ? s.GetString() : null;

    private static List<string> Options(JsonElement? value, params string[] names)
    {
        if (value is not { ValueKind: JsonValueKind.Object } obj)
        {
            return [];
        }
        foreach (var name in names)
        {
            if (obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Array)
            {
                return [.. v.EnumerateArray().Take(50).Select(o => o.ValueKind == JsonValueKind.String ? o.GetString()! : o.GetRawText())];
            }
        }
        return [];
    }

    private static List<Suggestion> Suggestions(IReadOnlyList<TraceStep> steps, TraceView view, ExecutionPatterns patterns, List<StepPerformance> performance, List<FailureGroup> failures)
    {
        var result = new List<Suggestion>();
        var byId = steps.ToDictionary(s => s.StepId, StringComparer.Ordinal);
        foreach (var perf in performance)
        {
            foreach (var a in perf.Anomalies)
            {
                result.Add(new Suggestion("slow-step",
                    $"{perf.StepType} step '{steps.First(s => s.StepId == a.StepId).Name}' of agent {perf.AgentId} took {Text.Ms(a.DurationMs)}, {a.Ratio.ToString("0.0", CultureInfo.InvariantCulture)}x its learned threshold of {Text.Ms(a.ThresholdMs)} (p95 {Text.Ms(perf.HistoryP95Ms ?? 0)} over {perf.HistoryCount} runs): check its inputs or add a timeout.",
                    [a.StepId], new Dictionary<string, double> { ["durationMs"] = a.DurationMs, ["thresholdMs"] = a.ThresholdMs, ["historyCount"] = perf.HistoryCount }));
            }
        }
        foreach (var retry in patterns.Retries.Where(r => r.Attempts > 1))
        {
            var errorTypes = retry.StepIds.Select(id => byId[id]).Where(s => !s.Success).Select(s => s.Error?.Type ?? "error").Distinct().ToList();
            result.Add(new Suggestion("retry-cost",
                $"'{retry.Signature}' needed {retry.Attempts} attempts ({string.Join(", ", errorTypes)}); {Text.Ms(retry.FailedAttemptsMs)} went to failed attempts" +
                (retry.Recovered ? "." : " and it never succeeded.") + " Back off, raise the timeout or fix the cause before retrying.",
                retry.StepIds, new Dictionary<string, double> { ["attempts"] = retry.Attempts, ["failedMs"] = retry.FailedAttemptsMs }));
        }
        foreach (var duplicate in steps.Where(s => s.Success && s.StepType is StepTypes.Tool or StepTypes.Retrieval or StepTypes.Llm)
                     .GroupBy(s => (Text.Signature(s), s.InputHash, s.OutputHash)).Where(g => g.Count() > 1))
        {
            var calls = duplicate.ToList();
            var wasted = calls.Skip(1).Sum(s => s.DurationMs);
            var tokens = calls.Skip(1).Sum(s => s.Usage?.TotalTokens ?? 0);
            result.Add(new Suggestion("duplicate-call",
                $"'{duplicate.Key.Item1}' ran {calls.Count} times with identical inputs and outputs: caching the first result would save {Text.Ms(wasted)}" + (tokens > 0 ? $" and {tokens} tokens." : "."),
                [.. calls.Select(s => s.StepId)], new Dictionary<string, double> { ["calls"] = calls.Count, ["savedMs"] = wasted, ["savedTokens"] = tokens }));
        }
        var onPath = view.Rollup.CriticalPath.ToHashSet(StringComparer.Ordinal);
        var critical = view.Rollup.CriticalPath.Select(id => byId[id]).ToList();
        // Time on the path is counted at its innermost steps (a parent's time is its children's).
        var withPathChild = view.Tree.Nodes.Where(n => onPath.Contains(n.StepId) && n.Children.Any(onPath.Contains)).Select(n => n.StepId).ToHashSet(StringComparer.Ordinal);
        var leafTime = critical.Where(s => !withPathChild.Contains(s.StepId))
            .GroupBy(s => s.StepType).Select(g => (Type: g.Key, Ms: g.Sum(s => s.DurationMs))).OrderByDescending(x => x.Ms).ToList();
        var leafTotal = leafTime.Sum(x => x.Ms);
        if (leafTime.Count > 0 && leafTotal > 0 && leafTime[0].Ms / leafTotal > 0.5 && critical.Count > 1)
        {
            var share = leafTime[0].Ms / leafTotal;
            result.Add(new Suggestion("critical-path",
                $"{leafTime[0].Type} steps take {share:P0} of the critical path ({Text.Ms(leafTime[0].Ms)} of {Text.Ms(leafTotal)}): that is where latency can be won (smaller or cached calls, or running them in parallel).",
                [.. critical.Where(s => s.StepType == leafTime[0].Type).Select(s => s.StepId)], new Dictionary<string, double> { ["share"] = share, ["ms"] = leafTime[0].Ms }));
        }
        var totalTokens = steps.Sum(s => s.Usage?.TotalTokens ?? 0);
        if (totalTokens > 0 && steps.Count > 2)
        {
            var top = steps.MaxBy(s => s.Usage?.TotalTokens ?? 0)!;
            var share = (double)(top.Usage?.TotalTokens ?? 0) / totalTokens;
            if (share > 0.5)
            {
                result.Add(new Suggestion("token-hotspot",
                    $"Step '{top.Name}' ({top.StepId}) used {share:P0} of the trace's {totalTokens} tokens: trim its prompt or context.",
                    [top.StepId], new Dictionary<string, double> { ["tokens"] = top.Usage!.TotalTokens, ["share"] = share }));
            }
        }
        foreach (var failure in failures.Where(f => !f.Recovered))
        {
            result.Add(new Suggestion("unhandled-failure",
                $"{failure.Count} '{failure.Signature}' step(s) failed with {failure.ErrorType} and no later attempt succeeded" + (failure.FirstMessage is null ? "." : $": \"{failure.FirstMessage}\"."),
                failure.StepIds, new Dictionary<string, double> { ["count"] = failure.Count }));
        }
        return result;
    }

    /// <summary>The steps and memory context around a failed step, its likely causes and how it differs from the last success of its signature.</summary>
    public static FailureAnalysis AnalyzeFailure(IReadOnlyList<TraceStep> steps, TraceStep step, TraceStep? lastSuccess, DurationStats? history)
    {
        var position = steps.ToList().FindIndex(s => s.StepId == step.StepId);
        var before = steps.Take(position).TakeLast(3).ToList();
        var after = steps.Skip(position + 1).Take(3).ToList();
        var byId = steps.ToDictionary(s => s.StepId, StringComparer.Ordinal);
        var ancestors = new List<TraceStep>();
        var seen = new HashSet<string>(StringComparer.Ordinal) { step.StepId };
        for (var p = step.ParentStepId; p is not null && byId.TryGetValue(p, out var parent) && seen.Add(p); p = parent.ParentStepId)
        {
            ancestors.Add(parent);
        }
        var memoryBefore = steps.Take(position).Where(s => s.StepType == StepTypes.Memory).TakeLast(3).ToList();
        var memoryAfter = steps.Skip(position + 1).Where(s => s.StepType == StepTypes.Memory).Take(3).ToList();

        var causes = new List<string>();
        if (!step.Success)
        {
            causes.Add($"The step failed with {step.Error?.Type ?? "error"}" + (step.Error?.Message is { } m ? $": {m}" : "."));
        }
        foreach (var failed in steps.Take(position).Where(s => !s.Success).TakeLast(3))
        {
            causes.Add($"An earlier step failed first: {failed.StepId} ({Text.Signature(failed)}, {failed.Error?.Type ?? "error"}).");
        }
        if (history is { Count: >= MinHistory } && step.DurationMs > history.Threshold())
        {
            causes.Add($"It ran {Text.Ms(step.DurationMs)}, above the learned threshold {Text.Ms(history.Threshold())} for {step.StepType} steps of {step.AgentId}: a timeout or a slow dependency is likely.");
        }
        var differences = new List<StepDifference>();
        if (lastSuccess is not null)
        {
            TraceDiff.Steps(step, lastSuccess, differences);
            if (differences.Any(d => d.Field == "inputHash"))
            {
                causes.Add($"Its inputs differ from the last successful run of the same step ({lastSuccess.TraceId}/{lastSuccess.StepId} at {lastSuccess.StartedAt:O}).");
            }
            else
            {
                causes.Add($"Its inputs equal those of the last successful run ({lastSuccess.TraceId}/{lastSuccess.StepId}): the cause is likely outside the inputs (a dependency, quota or state).");
            }
        }
        else
        {
            causes.Add("No earlier successful run of this step signature is recorded for the tenant.");
        }
        return new FailureAnalysis(step, before, after, ancestors, memoryBefore, memoryAfter, causes, lastSuccess, differences);
    }
}
