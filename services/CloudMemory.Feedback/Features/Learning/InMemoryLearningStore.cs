using System.Collections.Concurrent;
using CloudMemory.Contracts.Feedback;

namespace CloudMemory.Feedback.Features.Learning;

/// <summary>Strategies and cycles in process memory.</summary>
public sealed class InMemoryLearningStore : ILearningStore
{
    private readonly ConcurrentDictionary<string, Tenant> _tenants = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string, string), SemaphoreSlim> _agentLocks = new();

    /// <inheritdoc />
    public Task InitializeAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

    /// <inheritdoc />
    public async Task<IAsyncDisposable> LockAgentAsync(string tenantId, string agentId, CancellationToken cancellationToken = default)
    {
        var gate = _agentLocks.GetOrAdd((tenantId, agentId), _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken);
        return new Held(gate);
    }

    private sealed class Held(SemaphoreSlim gate) : IAsyncDisposable
    {
        private int _released;

        public ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                gate.Release();
            }
            return ValueTask.CompletedTask;
        }
    }

    /// <inheritdoc />
    public Task UpsertStrategyAsync(string tenantId, Strategy strategy, CancellationToken cancellationToken = default)
    {
        var tenant = Of(tenantId);
        lock (tenant.Gate)
        {
            var index = tenant.Strategies.FindIndex(s => s.Id == strategy.Id);
            if (index >= 0)
            {
                tenant.Strategies[index] = strategy;
            }
            else
            {
                tenant.Strategies.Add(strategy);
            }
        }
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<Strategy>> ListStrategiesAsync(string tenantId, string agentId, CancellationToken cancellationToken = default)
    {
        var tenant = Of(tenantId);
        lock (tenant.Gate)
        {
            return Task.FromResult<IReadOnlyList<Strategy>>(tenant.Strategies.Where(s => s.AgentId == agentId).ToList());
        }
    }

    /// <inheritdoc />
    public Task<LearningCycle> InsertCycleAsync(string tenantId, LearningCycle cycle, CancellationToken cancellationToken = default)
    {
        var tenant = Of(tenantId);
        lock (tenant.Gate)
        {
            var existing = tenant.Cycles.Find(c => c.Id == cycle.Id);
            if (existing is not null)
            {
                return Task.FromResult(existing);
            }
            tenant.Cycles.Add(cycle);
            return Task.FromResult(cycle);
        }
    }

    /// <inheritdoc />
    public Task<LearningCycle?> GetCycleAsync(string tenantId, string cycleId, CancellationToken cancellationToken = default)
    {
        var tenant = Of(tenantId);
        lock (tenant.Gate)
        {
            return Task.FromResult(tenant.Cycles.Find(c => c.Id == cycleId));
        }
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<LearningCycle>> ListCyclesAsync(string tenantId, string? agentId, int limit, CancellationToken cancellationToken = default)
    {
        var tenant = Of(tenantId);
        lock (tenant.Gate)
        {
            return Task.FromResult<IReadOnlyList<LearningCycle>>(Enumerable.Reverse(tenant.Cycles).Where(c => agentId is null || c.AgentId == agentId).Take(limit).ToList());
        }
    }

    private Tenant Of(string tenantId) => _tenants.GetOrAdd(tenantId, _ => new Tenant());

    private sealed class Tenant
    {
        public readonly Lock Gate = new();
        public readonly List<Strategy> Strategies = [];
        public readonly List<LearningCycle> Cycles = [];
    }
}
