using CloudMemory.Contracts.Traces;

namespace CloudMemory.Trace.Features.Read;

/// <summary>Answer of <c>GET /v1/traces/{traceId}</c>: the steps by index, the tree and the roll-up.</summary>
public sealed record TraceView(string TraceId, IReadOnlyList<TraceStep> Steps, TraceTree Tree, TraceRollup Rollup);

/// <summary>
/// The tree as a flat list (one node per step, same order as the steps), so traces of any depth and
/// size serialise and page the same way. Roots are steps without a parent in the trace.
/// </summary>
public sealed record TraceTree(IReadOnlyList<string> Roots, IReadOnlyList<TreeNode> Nodes, IReadOnlyList<CausalLink> Links);

/// <summary>One step in the tree with the roll-up of its subtree.</summary>
public sealed record TreeNode(string StepId, int StepIndex, string? ParentStepId, IReadOnlyList<string> Children, int Depth, bool OnCriticalPath, SubtreeRollup Subtree);

/// <summary>Totals of a step and everything under it.</summary>
public sealed record SubtreeRollup(int Steps, double WallMs, long InputTokens, long OutputTokens, double Cost, int Errors);

/// <summary>An explicit causal link recorded by the writer: <c>retryOf</c>, <c>spawnedBy</c> (step to step) or <c>delegatedTo</c> (step to agent).</summary>
public sealed record CausalLink(string From, string To, string Kind);

/// <summary>Totals of the whole trace.</summary>
public sealed record TraceRollup(
    int StepCount,
    IReadOnlyList<string> Agents,
    DateTimeOffset StartedAt,
    DateTimeOffset EndedAt,
    double WallMs,
    long InputTokens,
    long OutputTokens,
    double Cost,
    int ErrorCount,
    IReadOnlyList<string> CriticalPath,
    double CriticalPathMs,
    IReadOnlyDictionary<string, StepTypeTotals> ByStepType);

/// <summary>Totals of one step type.</summary>
public sealed record StepTypeTotals(int Count, double TotalMs, int Errors);

/// <summary>Builds the tree, subtree roll-ups and critical path of a trace in O(n log n).</summary>
public static class TraceViewBuilder
{
    /// <summary>The view of <paramref name="steps"/> (ordered by index).</summary>
    public static TraceView Build(string traceId, IReadOnlyList<TraceStep> steps)
    {
        var n = steps.Count;
        var position = new Dictionary<string, int>(n, StringComparer.Ordinal);
        for (var i = 0; i < n; i++)
        {
            position[steps[i].StepId] = i;
        }
        var parent = new int[n];
        var children = new List<int>[n];
        for (var i = 0; i < n; i++)
        {
            children[i] = [];
            parent[i] = steps[i].ParentStepId is { } p && position.TryGetValue(p, out var pi) && pi != i ? pi : -1;
        }
        // Parent links that form a cycle are dropped: every step is reachable from a root.
        var reached = new bool[n];
        var order = new List<int>(n);
        var roots = new List<int>();
        void Reach(int root)
        {
            var stack = new Stack<int>();
            stack.Push(root);
            reached[root] = true;
            while (stack.Count > 0)
            {
                var node = stack.Pop();
                order.Add(node);
                foreach (var child in children[node])
                {
                    if (!reached[child])
                    {
                        reached[child] = true;
                        stack.Push(child);
                    }
                }
            }
        }
        for (var i = 0; i < n; i++)
        {
            if (parent[i] >= 0)
            {
                children[parent[i]].Add(i);
            }
        }
        for (var i = 0; i < n; i++)
        {
            if (parent[i] < 0)
            {
                roots.Add(i);
                Reach(i);
            }
        }
        for (var i = 0; i < n; i++)
        {
            if (!reached[i])
            {
                children[parent[i]].Remove(i);
                parent[i] = -1;
                roots.Add(i);
                Reach(i);
            }
        }

        var depth = new int[n];
        foreach (var node in order)
        {
            depth[node] = parent[node] < 0 ? 0 : depth[parent[node]] + 1;
        }
        var start = new DateTimeOffset[n];
        var end = new DateTimeOffset[n];
        var count = new int[n];
        var inTok = new long[n];
        var outTok = new long[n];
        var cost = new double[n];
        var errors = new int[n];
        for (var k = order.Count - 1; k >= 0; k--)
        {
            var i = order[k];
            var s = steps[i];
            start[i] = s.StartedAt;
            end[i] = s.EndedAt;
            count[i] = 1;
            inTok[i] = s.Usage?.InputTokens ?? 0;
            outTok[i] = s.Usage?.OutputTokens ?? 0;
            cost[i] = s.Cost;
            errors[i] = s.Success ? 0 : 1;
            foreach (var c in children[i])
            {
                start[i] = start[c] < start[i] ? start[c] : start[i];
                end[i] = end[c] > end[i] ? end[c] : end[i];
                count[i] += count[c];
                inTok[i] += inTok[c];
                outTok[i] += outTok[c];
                cost[i] += cost[c];
                errors[i] += errors[c];
            }
        }

        var critical = CriticalPath(steps, roots, children);
        var onPath = new HashSet<int>(critical);
        var nodes = new TreeNode[n];
        for (var i = 0; i < n; i++)
        {
            nodes[i] = new TreeNode(steps[i].StepId, steps[i].StepIndex, parent[i] < 0 ? null : steps[parent[i]].StepId,
                [.. children[i].OrderBy(c => c).Select(c => steps[c].StepId)], depth[i], onPath.Contains(i),
                new SubtreeRollup(count[i], (end[i] - start[i]).TotalMilliseconds, inTok[i], outTok[i], cost[i], errors[i]));
        }
        var links = new List<CausalLink>();
        foreach (var s in steps)
        {
            if (s.RetryOf is not null)
            {
                links.Add(new CausalLink(s.StepId, s.RetryOf, "retryOf"));
            }
            if (s.SpawnedBy is not null)
            {
                links.Add(new CausalLink(s.StepId, s.SpawnedBy, "spawnedBy"));
            }
            if (s.DelegatedTo is not null)
            {
                links.Add(new CausalLink(s.StepId, s.DelegatedTo, "delegatedTo"));
            }
        }

        var rollup = n == 0
            ? new TraceRollup(0, [], default, default, 0, 0, 0, 0, 0, [], 0, new Dictionary<string, StepTypeTotals>())
            : new TraceRollup(
                n,
                [.. steps.Select(s => s.AgentId).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)],
                steps.Min(s => s.StartedAt),
                steps.Max(s => s.EndedAt),
                (steps.Max(s => s.EndedAt) - steps.Min(s => s.StartedAt)).TotalMilliseconds,
                steps.Sum(s => s.Usage?.InputTokens ?? 0),
                steps.Sum(s => s.Usage?.OutputTokens ?? 0),
                steps.Sum(s => s.Cost),
                steps.Count(s => !s.Success),
                [.. critical.Select(i => steps[i].StepId)],
                critical.Where(i => parent[i] < 0 || !onPath.Contains(parent[i])).Sum(i => steps[i].DurationMs),
                steps.GroupBy(s => s.StepType).OrderBy(g => g.Key, StringComparer.Ordinal)
                    .ToDictionary(g => g.Key, g => new StepTypeTotals(g.Count(), g.Sum(s => s.DurationMs), g.Count(s => !s.Success))));
        return new TraceView(traceId, steps, new TraceTree([.. roots.OrderBy(r => r).Select(r => steps[r].StepId)], nodes, links), rollup);
    }

    // Walks back from the end: the step that finished last, then (inside it) its child that finished
    // last, then whatever finished before that child started, and so on — the chain of steps that
    // determined when the trace finished. Returned in chronological order.
    private static List<int> CriticalPath(IReadOnlyList<TraceStep> steps, List<int> roots, List<int>[] children)
    {
        var path = new List<int>();
        var work = new Stack<Frame>();
        if (roots.Count > 0)
        {
            work.Push(new Frame(ByEndDescending(steps, roots), roots.Max(r => steps[r].EndedAt)));
        }
        while (work.Count > 0)
        {
            var frame = work.Pop();
            // The cursor only moves back in time, so the scan position only moves forward.
            while (frame.Position < frame.Candidates.Length && steps[frame.Candidates[frame.Position]].EndedAt > frame.Cursor)
            {
                frame.Position++;
            }
            if (frame.Position == frame.Candidates.Length)
            {
                continue;
            }
            var next = frame.Candidates[frame.Position++];
            path.Add(next);
            frame.Cursor = steps[next].StartedAt;
            work.Push(frame);
            if (children[next].Count > 0)
            {
                work.Push(new Frame(ByEndDescending(steps, children[next]), steps[next].EndedAt));
            }
        }
        path.Sort((a, b) => steps[a].StartedAt != steps[b].StartedAt ? steps[a].StartedAt.CompareTo(steps[b].StartedAt) : a.CompareTo(b));
        return path;
    }

    private static int[] ByEndDescending(IReadOnlyList<TraceStep> steps, List<int> candidates) =>
        [.. candidates.OrderByDescending(c => steps[c].EndedAt).ThenByDescending(c => c)];

    private sealed class Frame(int[] candidates, DateTimeOffset cursor)
    {
        public int[] Candidates { get; } = candidates;

        public int Position { get; set; }

        public DateTimeOffset Cursor { get; set; } = cursor;
    }
}
