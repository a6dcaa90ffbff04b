using System.Collections.Concurrent;
using CloudMemory.Contracts.Traces;

namespace CloudMemory.Trace.Features.Steps;

/// <summary>
/// Trace steps in process memory (the embedded default). One lock per trace for appends and reads;
/// the per-conversation, per-agent and per-memory indexes and the duration statistics each have
/// their own small lock, so writers of different traces rarely meet. A batch takes each lock once
/// per key it touches (not once per step).
/// </summary>
public sealed class InMemoryTraceStore : ITraceStore
{
    private readonly ConcurrentDictionary<(string Tenant, string Trace), TraceSteps> _traces = new();
    private readonly ConcurrentDictionary<(string Tenant, string Key), IndexList> _byContext = new();
    private readonly ConcurrentDictionary<(string Tenant, string Key), IndexList> _byAgent = new();
    private readonly ConcurrentDictionary<(string Tenant, string Memory), LinkSet> _links = new();
    private readonly ConcurrentDictionary<(string Tenant, string Key), IndexList> _sensitive = new();
    private readonly ConcurrentDictionary<(string Tenant, string Type, string Agent), long[]> _stats = new();

    /// <inheritdoc />
    public Task<bool[]> AppendAsync(IReadOnlyList<TenantStep> steps, CancellationToken cancellationToken = default)
    {
        var inserted = new bool[steps.Count];
        var added = new List<TenantStep>(steps.Count);
        // A batch usually holds runs of steps of one trace: each run takes the trace's lock once.
        for (var start = 0; start < steps.Count;)
        {
            var (tenant, first, _) = steps[start];
            var end = start + 1;
            while (end < steps.Count && steps[end].TenantId == tenant && steps[end].Step.TraceId == first.TraceId)
            {
                end++;
            }
            var trace = _traces.GetOrAdd((tenant, first.TraceId), _ => new TraceSteps());
            lock (trace)
            {
                for (var i = start; i < end; i++)
                {
                    if (trace.ById.TryAdd(steps[i].Step.StepId, steps[i].Step))
                    {
                        inserted[i] = true;
                        added.Add(steps[i]);
                        trace.Sorted = null;
                    }
                }
            }
            start = end;
        }

        // The indexes and statistics are updated once per key of the batch, not once per step.
        var byContext = new Dictionary<(string, string), List<TraceStep>>();
        var byAgent = new Dictionary<(string, string), List<TraceStep>>();
        var sensitive = new Dictionary<(string, string), List<TraceStep>>();
        var stats = new Dictionary<(string, string, string, int), long>();
        foreach (var (tenant, step, flags) in added)
        {
            if (step.ContextId is not null)
            {
                Group(byContext, (tenant, step.ContextId), step);
            }
            Group(byAgent, (tenant, step.AgentId), step);
            foreach (var memoryId in step.MemoryIds)
            {
                _links.GetOrAdd((tenant, memoryId), _ => new LinkSet()).Add(step.TraceId, step.StepId);
            }
            if (flags != 0)
            {
                Group(sensitive, (tenant, ""), step);
            }
            var bucket = (tenant, step.StepType, step.AgentId, DurationStats.BucketOf(step.DurationMs));
            stats[bucket] = stats.GetValueOrDefault(bucket) + 1;
        }
        AddAll(_byContext, byContext);
        AddAll(_byAgent, byAgent);
        AddAll(_sensitive, sensitive);
        foreach (var ((tenant, type, agent, bucket), count) in stats)
        {
            var buckets = _stats.GetOrAdd((tenant, type, agent), _ => new long[DurationStats.BucketCount]);
            Interlocked.Add(ref buckets[bucket], count);
        }
        return Task.FromResult(inserted);
    }

    private static void Group(Dictionary<(string, string), List<TraceStep>> groups, (string, string) key, TraceStep step)
    {
        if (!groups.TryGetValue(key, out var list))
        {
            groups[key] = list = [];
        }
        list.Add(step);
    }

    private static void AddAll(ConcurrentDictionary<(string Tenant, string Key), IndexList> index, Dictionary<(string, string), List<TraceStep>> groups)
    {
        foreach (var (key, list) in groups)
        {
            index.GetOrAdd(key, _ => new IndexList()).AddRange(list);
        }
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<TraceStep>> GetTraceAsync(string tenantId, string traceId, CancellationToken cancellationToken = default)
    {
        if (!_traces.TryGetValue((tenantId, traceId), out var trace))
        {
            return Task.FromResult<IReadOnlyList<TraceStep>>([]);
        }
        lock (trace)
        {
            trace.Sorted ??= [.. trace.ById.Values.OrderBy(s => s.StepIndex).ThenBy(s => s.StartedAt).ThenBy(s => s.StepId, StringComparer.Ordinal)];
            return Task.FromResult<IReadOnlyList<TraceStep>>(trace.Sorted);
        }
    }

    /// <inheritdoc />
    public async Task<TraceRows> GetTraceRowsAsync(string tenantId, string traceId, CancellationToken cancellationToken = default) =>
        new(await GetTraceAsync(tenantId, traceId, cancellationToken), null);

    /// <inheritdoc />
    public async Task<(bool Found, string? ContextId)> GetTraceConversationAsync(string tenantId, string traceId, CancellationToken cancellationToken = default)
    {
        var steps = await GetTraceAsync(tenantId, traceId, cancellationToken);
        return (steps.Count > 0, steps.FirstOrDefault(s => s.ContextId is not null)?.ContextId);
    }

    /// <inheritdoc />
    public Task<TraceStep?> GetStepAsync(string tenantId, string traceId, string stepId, CancellationToken cancellationToken = default)
    {
        if (!_traces.TryGetValue((tenantId, traceId), out var trace))
        {
            return Task.FromResult<TraceStep?>(null);
        }
        lock (trace)
        {
            return Task.FromResult(trace.ById.GetValueOrDefault(stepId));
        }
    }

    /// <inheritdoc />
    public Task<int?> GetMaxStepIndexAsync(string tenantId, string traceId, CancellationToken cancellationToken = default)
    {
        if (!_traces.TryGetValue((tenantId, traceId), out var trace))
        {
            return Task.FromResult<int?>(null);
        }
        lock (trace)
        {
            return Task.FromResult(trace.ById.Count == 0 ? null : (int?)trace.ById.Values.Max(s => s.StepIndex));
        }
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<TraceStep>> GetContextStepsAsync(string tenantId, string contextId, int limit, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<TraceStep>>([.. Snapshot(_byContext, tenantId, contextId).OrderByDescending(s => s.StartedAt).ThenByDescending(s => s.StepIndex).Take(limit).Reverse()]);

    /// <inheritdoc />
    public Task<IReadOnlyList<TraceStep>> GetAgentStepsAsync(string tenantId, string agentId, int limit, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<TraceStep>>([.. Snapshot(_byAgent, tenantId, agentId).OrderByDescending(s => s.StartedAt).ThenByDescending(s => s.StepIndex).Take(limit)]);

    /// <inheritdoc />
    public Task LinkMemoriesAsync(string tenantId, IReadOnlyList<MemoryLink> links, CancellationToken cancellationToken = default)
    {
        foreach (var link in links)
        {
            _links.GetOrAdd((tenantId, link.MemoryId), _ => new LinkSet()).Add(link.TraceId, link.StepId);
        }
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<TraceStep>> GetMemoryProvenanceAsync(string tenantId, string memoryId, CancellationToken cancellationToken = default)
    {
        var steps = new List<TraceStep>();
        if (_links.TryGetValue((tenantId, memoryId), out var links))
        {
            // Links resolve through the traces: a link recorded before its step arrives shows once the step does.
            foreach (var (traceId, stepId) in links.Snapshot())
            {
                if (_traces.TryGetValue((tenantId, traceId), out var trace))
                {
                    lock (trace)
                    {
                        if (trace.ById.TryGetValue(stepId, out var step))
                        {
                            steps.Add(step);
                        }
                    }
                }
            }
        }
        return Task.FromResult<IReadOnlyList<TraceStep>>([.. steps.OrderBy(s => s.StartedAt).ThenBy(s => s.StepIndex)]);
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<TraceStep>> GetSensitiveStepsAsync(string tenantId, DateTimeOffset from, DateTimeOffset to, int limit, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<TraceStep>>([.. Snapshot(_sensitive, tenantId, "").Where(s => s.StartedAt >= from && s.StartedAt < to)
            .OrderBy(s => s.StartedAt).ThenBy(s => s.TraceId, StringComparer.Ordinal).ThenBy(s => s.StepIndex).Take(limit)]);

    /// <inheritdoc />
    public Task<TraceStep?> FindLastSuccessAsync(string tenantId, string agentId, string stepType, string name, DateTimeOffset before, CancellationToken cancellationToken = default) =>
        Task.FromResult(Snapshot(_byAgent, tenantId, agentId)
            .Where(s => s.Success && s.StepType == stepType && s.Name == name && s.StartedAt < before)
            .OrderByDescending(s => s.StartedAt).FirstOrDefault());

    /// <inheritdoc />
    public Task<IReadOnlyList<DurationStats>> GetDurationStatsAsync(string tenantId, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<DurationStats>>([.. _stats.Where(kv => kv.Key.Tenant == tenantId)
            .Select(kv => new DurationStats(kv.Key.Type, kv.Key.Agent, [.. kv.Value]))]);

    /// <inheritdoc />
    public Task<long> DeleteOlderThanAsync(string tenantId, DateTimeOffset cutoff, CancellationToken cancellationToken = default) =>
        Task.FromResult(DeleteWhere(tenantId, s => s.StartedAt < cutoff));

    /// <inheritdoc />
    public Task<long> DeleteContextsAsync(string tenantId, IReadOnlyCollection<string> contextIds, CancellationToken cancellationToken = default)
    {
        var contexts = contextIds.ToHashSet(StringComparer.Ordinal);
        return Task.FromResult(contexts.Count == 0 ? 0 : DeleteWhere(tenantId, s => s.ContextId is { } c && contexts.Contains(c)));
    }

    private long DeleteWhere(string tenantId, Func<TraceStep, bool> doomed)
    {
        long deleted = 0;
        var gone = new HashSet<(string, string)>();
        foreach (var (key, trace) in _traces)
        {
            if (key.Tenant != tenantId)
            {
                continue;
            }
            lock (trace)
            {
                foreach (var old in trace.ById.Values.Where(doomed).ToList())
                {
                    trace.ById.Remove(old.StepId);
                    gone.Add((old.TraceId, old.StepId));
                    deleted++;
                }
                trace.Sorted = null;
            }
        }
        // Links of deleted steps go with them (as in PostgreSQL).
        foreach (var (key, links) in _links)
        {
            if (key.Tenant == tenantId)
            {
                links.RemoveWhere(gone.Contains);
            }
        }
        foreach (var index in new[] { _byContext, _byAgent, _sensitive })
        {
            foreach (var (key, list) in index)
            {
                if (key.Tenant == tenantId)
                {
                    list.RemoveWhere(s => doomed(s));
                }
            }
        }
        return deleted;
    }

    private static List<TraceStep> Snapshot(ConcurrentDictionary<(string, string), IndexList> index, string tenantId, string key) =>
        index.TryGetValue((tenantId, key), out var list) ? list.Snapshot() : [];

    private sealed class TraceSteps
    {
        public Dictionary<string, TraceStep> ById { get; } = new(StringComparer.Ordinal);

        public List<TraceStep>? Sorted { get; set; }
    }

    private sealed class LinkSet
    {
        private readonly HashSet<(string Trace, string Step)> _items = [];

        public void Add(string traceId, string stepId)
        {
            lock (_items)
            {
                _items.Add((traceId, stepId));
            }
        }

        public List<(string Trace, string Step)> Snapshot()
        {
            lock (_items)
            {
                return [.. _items];
            }
        }

        public void RemoveWhere(Predicate<(string Trace, string Step)> predicate)
        {
            lock (_items)
            {
                _items.RemoveWhere(predicate);
            }
        }
    }

    private sealed class IndexList
    {
        private readonly List<TraceStep> _items = [];

        public void AddRange(List<TraceStep> steps)
        {
            lock (_items)
            {
                _items.AddRange(steps);
            }
        }

        public List<TraceStep> Snapshot()
        {
            lock (_items)
            {
                return [.. _items];
            }
        }

        public void RemoveWhere(Predicate<TraceStep> predicate)
        {
            lock (_items)
            {
                _items.RemoveAll(predicate);
            }
        }
    }
}
