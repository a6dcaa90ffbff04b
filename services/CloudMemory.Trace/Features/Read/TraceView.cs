using System.Runtime.InteropServices;
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

/// <summary>
/// Builds the tree, subtree roll-ups and critical path of a trace in O(n log n). Works on arrays
/// indexed by step position (children as one flat array, ends computed once): a 1,000-step tree is
/// built with a few dozen allocations besides the nodes themselves.
/// </summary>
public static class TraceViewBuilder
{
    /// <summary>The view of <paramref name="steps"/> (ordered by index).</summary>
    public static TraceView Build(string traceId, IReadOnlyList<TraceStep> steps)
    {
        var n = steps.Count;
        var starts = new DateTimeOffset[n];
        var ends = new DateTimeOffset[n];
        var position = new Dictionary<string, int>(n, StringComparer.Ordinal);
        for (var i = 0; i < n; i++)
        {
            position[steps[i].StepId] = i;
            starts[i] = steps[i].StartedAt;
            ends[i] = steps[i].EndedAt;
        }
        var parent = new int[n];
        for (var i = 0; i < n; i++)
        {
            parent[i] = steps[i].ParentStepId is { } p && position.TryGetValue(p, out var pi) && pi != i ? pi : -1;
        }
        // Children of node k are child[first[k]..first[k + 1]], in step order. A child c whose link
        // was dropped (parent[c] no longer k) is skipped wherever they are walked.
        var first = new int[n + 1];
        for (var i = 0; i < n; i++)
        {
            if (parent[i] >= 0)
            {
                first[parent[i] + 1]++;
            }
        }
        for (var k = 0; k < n; k++)
        {
            first[k + 1] += first[k];
        }
        var child = new int[first[n]];
        var fill = first[..n];
        for (var i = 0; i < n; i++)
        {
            if (parent[i] >= 0)
            {
                child[fill[parent[i]]++] = i;
            }
        }

        // Parent links that form a cycle are dropped: every step is reachable from a root. `order`
        // lists each step after its parent (depth-first).
        var reached = new bool[n];
        var order = new int[n];
        var ordered = 0;
        var roots = new List<int>();
        var stack = new Stack<int>();
        void Reach(int root)
        {
            stack.Push(root);
            reached[root] = true;
            while (stack.Count > 0)
            {
                var node = stack.Pop();
                order[ordered++] = node;
                for (var c = first[node]; c < first[node + 1]; c++)
                {
                    var next = child[c];
                    if (parent[next] == node && !reached[next])
                    {
                        reached[next] = true;
                        stack.Push(next);
                    }
                }
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
        for (var k = n - 1; k >= 0; k--)
        {
            var i = order[k];
            var s = steps[i];
            start[i] = starts[i];
            end[i] = ends[i];
            count[i] = 1;
            inTok[i] = s.Usage?.InputTokens ?? 0;
            outTok[i] = s.Usage?.OutputTokens ?? 0;
            cost[i] = s.Cost;
            errors[i] = s.Success ? 0 : 1;
            for (var x = first[i]; x < first[i + 1]; x++)
            {
                var c = child[x];
                if (parent[c] != i)
                {
                    continue;
                }
                start[i] = start[c] < start[i] ? start[c] : start[i];
                end[i] = end[c] > end[i] ? end[c] : end[i];
                count[i] += count[c];
                inTok[i] += inTok[c];
                outTok[i] += outTok[c];
                cost[i] += cost[c];
                errors[i] += errors[c];
            }
        }

        var critical = CriticalPath(starts, ends, roots, first, child, parent);
        var onPath = new bool[n];
        foreach (var i in critical)
        {
            onPath[i] = true;
        }
        var nodes = new TreeNode[n];
        var links = new List<CausalLink>();
        var byType = new Dictionary<string, (int Count, double TotalMs, int Errors)>(StringComparer.Ordinal);
        var agents = new HashSet<string>(StringComparer.Ordinal);
        long inputTokens = 0, outputTokens = 0;
        double totalCost = 0;
        var errorCount = 0;
        for (var i = 0; i < n; i++)
        {
            var s = steps[i];
            nodes[i] = new TreeNode(s.StepId, s.StepIndex, parent[i] < 0 ? null : steps[parent[i]].StepId,
                ChildIds(steps, i, first, child, parent), depth[i], onPath[i],
                new SubtreeRollup(count[i], (end[i] - start[i]).TotalMilliseconds, inTok[i], outTok[i], cost[i], errors[i]));
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
            agents.Add(s.AgentId);
            inputTokens += s.Usage?.InputTokens ?? 0;
            outputTokens += s.Usage?.OutputTokens ?? 0;
            totalCost += s.Cost;
            errorCount += s.Success ? 0 : 1;
            ref var totals = ref CollectionsMarshal.GetValueRefOrAddDefault(byType, s.StepType, out _);
            totals = (totals.Count + 1, totals.TotalMs + s.DurationMs, totals.Errors + (s.Success ? 0 : 1));
        }

        TraceRollup rollup;
        if (n == 0)
        {
            rollup = new TraceRollup(0, [], default, default, 0, 0, 0, 0, 0, [], 0, new Dictionary<string, StepTypeTotals>());
        }
        else
        {
            var (earliest, latest) = (starts[0], ends[0]);
            for (var i = 1; i < n; i++)
            {
                earliest = starts[i] < earliest ? starts[i] : earliest;
                latest = ends[i] > latest ? ends[i] : latest;
            }
            var criticalMs = 0.0;
            foreach (var i in critical)
            {
                if (parent[i] < 0 || !onPath[parent[i]])
                {
                    criticalMs += steps[i].DurationMs;
                }
            }
            var agentList = agents.ToArray();
            Array.Sort(agentList, StringComparer.Ordinal);
            var typeNames = byType.Keys.ToArray();
            Array.Sort(typeNames, StringComparer.Ordinal);
            var typeTotals = new Dictionary<string, StepTypeTotals>(typeNames.Length, StringComparer.Ordinal);
            foreach (var type in typeNames)
            {
                var (typeCount, typeMs, typeErrors) = byType[type];
                typeTotals[type] = new StepTypeTotals(typeCount, typeMs, typeErrors);
            }
            var criticalIds = new string[critical.Count];
            for (var k = 0; k < criticalIds.Length; k++)
            {
                criticalIds[k] = steps[critical[k]].StepId;
            }
            rollup = new TraceRollup(n, agentList, earliest, latest, (latest - earliest).TotalMilliseconds,
                inputTokens, outputTokens, totalCost, errorCount, criticalIds, criticalMs, typeTotals);
        }
        var rootIds = new string[roots.Count];
        roots.Sort();
        for (var k = 0; k < rootIds.Length; k++)
        {
            rootIds[k] = steps[roots[k]].StepId;
        }
        return new TraceView(traceId, steps, new TraceTree(rootIds, nodes, links), rollup);
    }

    // The ids of a node's children (kept links only), in step order.
    private static string[] ChildIds(IReadOnlyList<TraceStep> steps, int node, int[] first, int[] child, int[] parent)
    {
        var kept = 0;
        for (var x = first[node]; x < first[node + 1]; x++)
        {
            kept += parent[child[x]] == node ? 1 : 0;
        }
        if (kept == 0)
        {
            return [];
        }
        var ids = new string[kept];
        var k = 0;
        for (var x = first[node]; x < first[node + 1]; x++)
        {
            if (parent[child[x]] == node)
            {
                ids[k++] = steps[child[x]].StepId;
            }
        }
        return ids;
    }

    // Walks back from the end: the step that finished last, then (inside it) its child that finished
    // last, then whatever finished before that child started, and so on — the chain of steps that
    // determined when the trace finished. Returned in chronological order.
    private static List<int> CriticalPath(DateTimeOffset[] starts, DateTimeOffset[] ends, List<int> roots, int[] first, int[] child, int[] parent)
    {
        var path = new List<int>();
        var work = new Stack<Frame>();
        if (roots.Count > 0)
        {
            var latest = ends[roots[0]];
            foreach (var r in roots)
            {
                latest = ends[r] > latest ? ends[r] : latest;
            }
            work.Push(new Frame(ByEndDescending(ends, [.. roots]), latest));
        }
        while (work.Count > 0)
        {
            var frame = work.Pop();
            // The cursor only moves back in time, so the scan position only moves forward.
            while (frame.Position < frame.Candidates.Length && ends[frame.Candidates[frame.Position]] > frame.Cursor)
            {
                frame.Position++;
            }
            if (frame.Position == frame.Candidates.Length)
            {
                continue;
            }
            var next = frame.Candidates[frame.Position++];
            path.Add(next);
            frame.Cursor = starts[next];
            work.Push(frame);
            var kids = new List<int>();
            for (var x = first[next]; x < first[next + 1]; x++)
            {
                if (parent[child[x]] == next)
                {
                    kids.Add(child[x]);
                }
            }
            if (kids.Count > 0)
            {
                work.Push(new Frame(ByEndDescending(ends, [.. kids]), ends[next]));
            }
        }
        path.Sort((a, b) => starts[a] != starts[b] ? starts[a].CompareTo(starts[b]) : a.CompareTo(b));
        return path;
    }

    // Latest end first; of equal ends, the later step first.
    private static int[] ByEndDescending(DateTimeOffset[] ends, int[] candidates)
    {
        Array.Sort(candidates, (a, b) => ends[a] != ends[b] ? ends[b].CompareTo(ends[a]) : b.CompareTo(a));
        return candidates;
    }

    private sealed class Frame(int[] candidates, DateTimeOffset cursor)
    {
        public int[] Candidates { get; } = candidates;

        public int Position { get; set; }

        public DateTimeOffset Cursor { get; set; } = cursor;
    }
}
