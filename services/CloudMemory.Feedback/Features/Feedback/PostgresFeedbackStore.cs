using System.Text.Json;
using System.Text;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Feedback;
using CloudMemory.Contracts;
using Npgsql;
using NpgsqlTypes;

namespace CloudMemory.Feedback.Features.Feedback;

/// <summary>
/// Feedback in PostgreSQL: the record as jsonb beside the columns it is filtered by, a per-table
/// sequence for stable paging, and the primary key (tenant, id) that makes a retry a no-op.
/// </summary>
public sealed class PostgresFeedbackStore(NpgsqlDataSource dataSource) : IFeedbackStore
{
    /// <inheritdoc />
    public async Task InitializeAsync(CancellationToken cancellationToken = default)
    {
        await dataSource.ApplyAsync("feedback", 1, """
            SELECT pg_advisory_xact_lock(7301101);
            CREATE TABLE IF NOT EXISTS cm_feedback (
                tenant_id text NOT NULL,
                id text NOT NULL,
                seq bigint GENERATED ALWAYS AS IDENTITY,
                target_type text NOT NULL,
                target_id text NOT NULL,
                agent_id text,
                conversation_id text,
                name text NOT NULL,
                kind text NOT NULL,
                created_at timestamptz NOT NULL,
                recorded_at timestamptz NOT NULL,
                fingerprint text NOT NULL,
                doc jsonb NOT NULL,
                PRIMARY KEY (tenant_id, id));
            CREATE INDEX IF NOT EXISTS cm_feedback_feed ON cm_feedback (tenant_id, seq DESC);
            CREATE INDEX IF NOT EXISTS cm_feedback_target ON cm_feedback (tenant_id, target_type, target_id, seq DESC);
            CREATE INDEX IF NOT EXISTS cm_feedback_agent ON cm_feedback (tenant_id, agent_id, seq DESC);
            CREATE INDEX IF NOT EXISTS cm_feedback_recorded ON cm_feedback (recorded_at);
            CREATE TABLE IF NOT EXISTS cm_feedback_configs (
                tenant_id text NOT NULL,
                name text NOT NULL,
                doc jsonb NOT NULL,
                PRIMARY KEY (tenant_id, name));
            """, cancellationToken);
    }

    /// <inheritdoc />
    public async Task<(FeedbackRecord Record, string Fingerprint, bool Created)> InsertIfAbsentAsync(string tenantId, FeedbackRecord record, string fingerprint, CancellationToken cancellationToken = default)
    {
        await using var insert = dataSource.CreateCommand("""
            INSERT INTO cm_feedback (tenant_id, id, target_type, target_id, agent_id, conversation_id, name, kind, created_at, recorded_at, fingerprint, doc)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
            ON CONFLICT (tenant_id, id) DO NOTHING
            """);
        insert.Parameters.Add(new() { Value = tenantId });
        insert.Parameters.Add(new() { Value = record.Id });
        insert.Parameters.Add(new() { Value = record.Target.Type! });
        insert.Parameters.Add(new() { Value = record.Target.Id! });
        insert.Parameters.Add(new() { Value = (object?)record.AgentId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        insert.Parameters.Add(new() { Value = (object?)record.ConversationId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        insert.Parameters.Add(new() { Value = record.Name });
        insert.Parameters.Add(new() { Value = record.Kind });
        insert.Parameters.Add(new() { Value = record.CreatedAt });
        insert.Parameters.Add(new() { Value = record.RecordedAt });
        insert.Parameters.Add(new() { Value = fingerprint });
        insert.Parameters.Add(new() { Value = JsonSerializer.Serialize(record, ContractsJson.Options), NpgsqlDbType = NpgsqlDbType.Jsonb });
        if (await insert.ExecuteNonQueryAsync(cancellationToken) == 1)
        {
            return (record, fingerprint, true);
        }
        await using var select = dataSource.CreateCommand("SELECT doc::text, fingerprint FROM cm_feedback WHERE tenant_id = $1 AND id = $2");
        select.Parameters.Add(new() { Value = tenantId });
        select.Parameters.Add(new() { Value = record.Id });
        await using var reader = await select.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            throw new InvalidOperationException($"feedback '{record.Id}' conflicted on insert but cannot be read");
        }
        return (Read(reader.GetString(0)), reader.GetString(1), false);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<StoredFeedback>> ListAsync(string tenantId, FeedbackQuery query, long? beforeSequence, int limit, CancellationToken cancellationToken = default)
    {
        var sql = new StringBuilder("SELECT seq, doc::text FROM cm_feedback WHERE tenant_id = $1");
        var parameters = new List<NpgsqlParameter> { new() { Value = tenantId } };
        void Filter(string column, object? value, string op = "=")
        {
            if (value is not null)
            {
                parameters.Add(new NpgsqlParameter { Value = value });
                sql.Append(" AND ").Append(column).Append(' ').Append(op).Append(" $").Append(parameters.Count);
            }
        }
        Filter("target_type", query.TargetType);
        Filter("target_id", query.TargetId);
        Filter("agent_id", query.AgentId);
        Filter("name", query.Name);
        Filter("kind", query.Kind);
        Filter("conversation_id", query.ConversationId);
        Filter("created_at", query.Since, ">=");
        Filter("created_at", query.Until, "<");
        Filter("seq", beforeSequence, "<");
        parameters.Add(new NpgsqlParameter { Value = limit });
        sql.Append(" ORDER BY seq DESC LIMIT $").Append(parameters.Count);
        await using var command = dataSource.CreateCommand(sql.ToString());
        command.Parameters.AddRange(parameters.ToArray());
        var result = new List<StoredFeedback>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(new StoredFeedback(reader.GetInt64(0), Read(reader.GetString(1))));
        }
        return result;
    }

    /// <inheritdoc />
    public async Task<FeedbackConfig?> GetConfigAsync(string tenantId, string name, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("SELECT doc::text FROM cm_feedback_configs WHERE tenant_id = $1 AND name = $2");
        command.Parameters.Add(new() { Value = tenantId });
        command.Parameters.Add(new() { Value = name });
        return await command.ExecuteScalarAsync(cancellationToken) is string json
            ? JsonSerializer.Deserialize<FeedbackConfig>(json, ContractsJson.Options)
            : null;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<FeedbackConfig>> ListConfigsAsync(string tenantId, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("SELECT doc::text FROM cm_feedback_configs WHERE tenant_id = $1 ORDER BY name");
        command.Parameters.Add(new() { Value = tenantId });
        var result = new List<FeedbackConfig>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(JsonSerializer.Deserialize<FeedbackConfig>(reader.GetString(0), ContractsJson.Options)!);
        }
        return result;
    }

    /// <inheritdoc />
    public async Task UpsertConfigAsync(string tenantId, FeedbackConfig config, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            INSERT INTO cm_feedback_configs (tenant_id, name, doc) VALUES ($1, $2, $3)
            ON CONFLICT (tenant_id, name) DO UPDATE SET doc = EXCLUDED.doc
            """);
        command.Parameters.Add(new() { Value = tenantId });
        command.Parameters.Add(new() { Value = config.Name });
        command.Parameters.Add(new() { Value = JsonSerializer.Serialize(config, ContractsJson.Options), NpgsqlDbType = NpgsqlDbType.Jsonb });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <inheritdoc />
    public async Task<long> DeleteConversationsAsync(string tenantId, IReadOnlyCollection<string> conversationIds, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("DELETE FROM cm_feedback WHERE tenant_id = $1 AND conversation_id = ANY($2)");
        command.Parameters.Add(new() { Value = tenantId });
        command.Parameters.Add(new() { Value = conversationIds.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        return await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<(string TenantId, string AgentId)>> ListActiveAgentsAsync(DateTimeOffset since, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("SELECT DISTINCT tenant_id, agent_id FROM cm_feedback WHERE recorded_at >= $1 AND agent_id IS NOT NULL");
        command.Parameters.Add(new() { Value = since });
        var result = new List<(string, string)>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add((reader.GetString(0), reader.GetString(1)));
        }
        return result;
    }

    private static FeedbackRecord Read(string json) => JsonSerializer.Deserialize<FeedbackRecord>(json, ContractsJson.Options)!;
}
