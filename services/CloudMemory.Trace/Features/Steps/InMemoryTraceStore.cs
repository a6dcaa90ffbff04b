using System.Collections.Concurrent;
using CloudMemory.Contracts.Traces;

namespace CloudMemory.Trace.Features.Steps;

/// <summary>
/// Trace steps in process memory (the embedded default). One lock per trace for appends and reads;
/// the per-conversation, per-agent and per-memory indexes and the duration statistics each have
/// their own small lock, so writers of different traces rarely meet.
/// </summary>
public sealed class InMemoryTraceStore : ITraceStore
{
    private readonly ConcurrentDictionary<(string Tenant, string Trace), TraceSteps> _traces = new();
    private readonly ConcurrentDictionary<(string Tenant, string Key), IndexList> _byContext = new();
    private readonly ConcurrentDictionary<(string Tenant, string Key), IndexList> _byAgent = new();
    private readonly ConcurrentDictionary<(string Tenant, string Key), IndexList> _byMemory = new();
    private readonly ConcurrentDictionary<(string Tenant, string Key), IndexList> _sensitive = new();
    private readonly ConcurrentDictionary<(string Tenant, string Type, string Agent), long[]> _stats = new();

    /// <inheritdoc />
    public Task<bool[]> AppendAsync(IReadOnlyList<TenantStep> steps, CancellationToken cancellationToken = default)
    {
        var inserted = new bool[steps.Count];
        for (var i = 0; i < steps.Count; i++)
        {
            var (tenant, step, flags) = steps[i];
            var trace = _traces.GetOrAdd((tenant, step.TraceId), _ => new TraceSteps());
            lock (trace)
            {
                if (!trace.ById.TryAdd(step.StepId, step))
                {
                    continue;
                }
                trace.Sorted = null;
            }
            inserted[i] = true;
            if (step.ContextId is not null)
            {
                _byContext.GetOrAdd((tenant, step.ContextId), _ => new IndexList()).Add(step);
            }
            _byAgent.GetOrAdd((tenant, step.AgentId), _ => new IndexList()).Add(step);
            foreach (var memoryId in step.MemoryIds)
            {
                _byMemory.GetOrAdd((tenant, memoryId), _ => new IndexList()).Add(step);
            }
            if (flags != 0)
            {
                _sensitive.GetOrAdd((tenant, ""), _ => new IndexList()).Add(step);
            }
            var buckets = _stats.GetOrAdd((tenant, step.StepType, step.AgentId), _ => new long[DurationStats.BucketCount]);
            Interlocked.Increment(ref buckets[DurationStats.BucketOf(step.DurationMs)]);
        }
        return Task.FromResult(inserted);
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
    public Task<IReadOnlyList<TraceStep>> GetMemoryProvenanceAsync(string tenantId, string memoryId, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<TraceStep>>([.. Snapshot(_byMemory, tenantId, memoryId).OrderBy(s => s.StartedAt).ThenBy(s => s.StepIndex)]);

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
                    deleted++;
                }
                trace.Sorted = null;
            }
        }
        foreach (var index in new[] { _byContext, _byAgent, _byMemory, _sensitive })
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

    private sealed class IndexList
    {
        private readonly List<TraceStep> _items = [];

        public void Add(TraceStep step)
        {
            lock (_items)
            {
                _items.Add(step);
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
