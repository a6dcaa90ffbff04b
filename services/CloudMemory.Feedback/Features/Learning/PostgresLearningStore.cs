using System.Text.Json;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Feedback;
using CloudMemory.Contracts;
using Npgsql;
using NpgsqlTypes;

namespace CloudMemory.Feedback.Features.Learning;

/// <summary>Strategies and cycles in PostgreSQL (jsonb documents keyed by tenant and id).</summary>
public sealed class PostgresLearningStore(NpgsqlDataSource dataSource) : ILearningStore
{
    /// <inheritdoc />
    public async Task InitializeAsync(CancellationToken cancellationToken = default)
    {
        await dataSource.ApplyAsync("learning", 1, """
            SELECT pg_advisory_xact_lock(7301103);
            CREATE TABLE IF NOT EXISTS cm_strategies (
                tenant_id text NOT NULL,
                id text NOT NULL,
                agent_id text NOT NULL,
                seq bigint GENERATED ALWAYS AS IDENTITY,
                doc jsonb NOT NULL,
                PRIMARY KEY (tenant_id, id));
            CREATE INDEX IF NOT EXISTS cm_strategies_agent ON cm_strategies (tenant_id, agent_id, seq);
            CREATE TABLE IF NOT EXISTS cm_learning_cycles (
                tenant_id text NOT NULL,
                id text NOT NULL,
                agent_id text NOT NULL,
                seq bigint GENERATED ALWAYS AS IDENTITY,
                doc jsonb NOT NULL,
                PRIMARY KEY (tenant_id, id));
            CREATE INDEX IF NOT EXISTS cm_learning_cycles_agent ON cm_learning_cycles (tenant_id, agent_id, seq DESC);
            """, cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>
    /// A session-level advisory lock on a connection of its own, held for the cycle: every process on
    /// the database waits for it; if the holder dies, its connection closes and the lock goes with it
    /// (no lease to expire). Unrelated agents whose keys collide on the 32-bit hash merely take turns.
    /// </remarks>
    public async Task<IAsyncDisposable> LockAgentAsync(string tenantId, string agentId, CancellationToken cancellationToken = default)
    {
        var key = $"{tenantId.Length}:{tenantId}:{agentId}";
        var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        try
        {
            await using var command = new NpgsqlCommand("SELECT pg_advisory_lock($1, hashtext($2))", connection);
            command.Parameters.Add(new() { Value = AgentLockSpace });
            command.Parameters.Add(new() { Value = key });
            await command.ExecuteNonQueryAsync(cancellationToken);
            return new AgentLock(connection, key);
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    // The first key of the learning-cycle advisory locks (the schema migrations use 7301101–7301103 alone).
    private const int AgentLockSpace = 7301104;

    private sealed class AgentLock(NpgsqlConnection connection, string key) : IAsyncDisposable
    {
        private int _released;

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _released, 1) != 0)
            {
                return;
            }
            try
            {
                await using var command = new NpgsqlCommand("SELECT pg_advisory_unlock($1, hashtext($2))", connection);
                command.Parameters.Add(new() { Value = AgentLockSpace });
                command.Parameters.Add(new() { Value = key });
                await command.ExecuteNonQueryAsync(CancellationToken.None);
            }
            catch
            {
                // The pool does not reset connections: one that may still hold the lock must not be
                // reused. Clearing the pool closes it (and the pool's others) instead of keeping it.
                NpgsqlConnection.ClearPool(connection);
                throw;
            }
            finally
            {
                await connection.DisposeAsync();
            }
        }
    }

    /// <inheritdoc />
    public async Task UpsertStrategyAsync(string tenantId, Strategy strategy, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            INSERT INTO cm_strategies (tenant_id, id, agent_id, doc) VALUES ($1, $2, $3, $4)
            ON CONFLICT (tenant_id, id) DO UPDATE SET doc = EXCLUDED.doc
            """);
        command.Parameters.Add(new() { Value = tenantId });
        command.Parameters.Add(new() { Value = strategy.Id });
        command.Parameters.Add(new() { Value = strategy.AgentId });
        command.Parameters.Add(new() { Value = JsonSerializer.Serialize(strategy, ContractsJson.Options), NpgsqlDbType = NpgsqlDbType.Jsonb });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<Strategy>> ListStrategiesAsync(string tenantId, string agentId, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("SELECT doc::text FROM cm_strategies WHERE tenant_id = $1 AND agent_id = $2 ORDER BY seq");
        command.Parameters.Add(new() { Value = tenantId });
        command.Parameters.Add(new() { Value = agentId });
        return await ReadAllAsync<Strategy>(command, cancellationToken);
    }

    /// <inheritdoc />
    public async Task<LearningCycle> InsertCycleAsync(string tenantId, LearningCycle cycle, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            INSERT INTO cm_learning_cycles (tenant_id, id, agent_id, doc) VALUES ($1, $2, $3, $4)
            ON CONFLICT (tenant_id, id) DO NOTHING
            """);
        command.Parameters.Add(new() { Value = tenantId });
        command.Parameters.Add(new() { Value = cycle.Id });
        command.Parameters.Add(new() { Value = cycle.AgentId });
        command.Parameters.Add(new() { Value = JsonSerializer.Serialize(cycle, ContractsJson.Options), NpgsqlDbType = NpgsqlDbType.Jsonb });
        return await command.ExecuteNonQueryAsync(cancellationToken) == 1 ? cycle : (await GetCycleAsync(tenantId, cycle.Id, cancellationToken))!;
    }

    /// <inheritdoc />
    public async Task<LearningCycle?> GetCycleAsync(string tenantId, string cycleId, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("SELECT doc::text FROM cm_learning_cycles WHERE tenant_id = $1 AND id = $2");
        command.Parameters.Add(new() { Value = tenantId });
        command.Parameters.Add(new() { Value = cycleId });
        return (await ReadAllAsync<LearningCycle>(command, cancellationToken)).FirstOrDefault();
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<LearningCycle>> ListCyclesAsync(string tenantId, string? agentId, int limit, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand(
            "SELECT doc::text FROM cm_learning_cycles WHERE tenant_id = $1 AND ($2::text IS NULL OR agent_id = $2) ORDER BY seq DESC LIMIT $3");
        command.Parameters.Add(new() { Value = tenantId });
        command.Parameters.Add(new() { Value = (object?)agentId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new() { Value = limit });
        return await ReadAllAsync<LearningCycle>(command, cancellationToken);
    }

    private static async Task<List<T>> ReadAllAsync<T>(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        var result = new List<T>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(JsonSerializer.Deserialize<T>(reader.GetString(0), ContractsJson.Options)!);
        }
        return result;
    }
}
