using CloudMemory.Contracts.Feedback;
namespace CloudMemory.Feedback.Features.Learning;

/// <summary>
/// Strategies and the learning-cycle history. Every call is scoped to one tenant. Implementations:
/// <see cref="InMemoryLearningStore"/> and <see cref="PostgresLearningStore"/>.
/// </summary>
public interface ILearningStore
{
    /// <summary>Creates the schema (idempotent).</summary>
    Task InitializeAsync(CancellationToken cancellationToken = default);

    /// <summary>Creates or replaces a strategy.</summary>
    Task UpsertStrategyAsync(string tenantId, Strategy strategy, CancellationToken cancellationToken = default);

    /// <summary>Every strategy of an agent, oldest first.</summary>
    Task<IReadOnlyList<Strategy>> ListStrategiesAsync(string tenantId, string agentId, CancellationToken cancellationToken = default);

    /// <summary>Stores a cycle unless its id exists; returns the stored one.</summary>
    Task<LearningCycle> InsertCycleAsync(string tenantId, LearningCycle cycle, CancellationToken cancellationToken = default);

    /// <summary>The cycle, or null.</summary>
    Task<LearningCycle?> GetCycleAsync(string tenantId, string cycleId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Holds the agent's learning-cycle lock until the result is disposed, waiting while another
    /// holder (in this process or, on PostgreSQL, in any process on the same database) has it: one
    /// cycle per agent at a time. A holder that dies releases it (PostgreSQL session lock).
    /// </summary>
    Task<IAsyncDisposable> LockAgentAsync(string tenantId, string agentId, CancellationToken cancellationToken = default);

    /// <summary>Cycles newest first (of one agent when given).</summary>
    Task<IReadOnlyList<LearningCycle>> ListCyclesAsync(string tenantId, string? agentId, int limit, CancellationToken cancellationToken = default);
}
