using System.Text.Json;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Feedback;
using CloudMemory.Contracts;
using Npgsql;
using NpgsqlTypes;

namespace CloudMemory.Feedback.Features.Experiences;

/// <summary>
/// Experiences in PostgreSQL: one row per experience (jsonb) and one per pattern with its running
/// totals and index tokens (GIN), updated in the same statement as the insert so they never drift.
/// </summary>
public sealed class PostgresExperienceStore(NpgsqlDataSource dataSource) : IExperienceStore
{
    /// <inheritdoc />
    public async Task InitializeAsync(CancellationToken cancellationToken = default)
    {
        await dataSource.ApplyAsync("experiences", 1, """
            SELECT pg_advisory_xact_lock(7301102);
            CREATE TABLE IF NOT EXISTS cm_experiences (
                tenant_id text NOT NULL,
                id text NOT NULL,
                pattern_key text NOT NULL,
                agent_id text,
                success boolean NOT NULL,
                recorded_at timestamptz NOT NULL,
                doc jsonb NOT NULL,
                PRIMARY KEY (tenant_id, id));
            CREATE TABLE IF NOT EXISTS cm_experience_patterns (
                tenant_id text NOT NULL,
                pattern_key text NOT NULL,
                pattern jsonb NOT NULL,
                tokens text[] NOT NULL,
                attempts integer NOT NULL,
                successes integer NOT NULL,
                duration_sum double precision NOT NULL,
                duration_count integer NOT NULL,
                cost_sum double precision NOT NULL,
                cost_count integer NOT NULL,
                last_success_id text,
                last_failure_id text,
                PRIMARY KEY (tenant_id, pattern_key));
            -- Columns and indexes are added only when missing: ALTER TABLE and CREATE INDEX IF NOT EXISTS
            -- take table locks at every start of another host, even when there is nothing to do.
            DO $$ BEGIN
                IF to_regclass('cm_experience_patterns_tokens') IS NULL THEN
                    CREATE INDEX cm_experience_patterns_tokens ON cm_experience_patterns USING gin (tokens);
                END IF;
                -- Whose task it was (erasure of a conversation or a user).
                IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                               WHERE table_schema = current_schema() AND table_name = 'cm_experiences' AND column_name = 'conversation_id') THEN
                    ALTER TABLE cm_experiences ADD COLUMN conversation_id text, ADD COLUMN user_id text;
                END IF;
                IF to_regclass('cm_experiences_conversation') IS NULL THEN
                    CREATE INDEX cm_experiences_conversation ON cm_experiences (tenant_id, conversation_id) WHERE conversation_id IS NOT NULL;
                END IF;
                IF to_regclass('cm_experiences_user') IS NULL THEN
                    CREATE INDEX cm_experiences_user ON cm_experiences (tenant_id, user_id) WHERE user_id IS NOT NULL;
                END IF;
                -- A pattern's experiences, to recount its totals after an erasure.
                IF to_regclass('cm_experiences_pattern') IS NULL THEN
                    CREATE INDEX cm_experiences_pattern ON cm_experiences (tenant_id, pattern_key);
                END IF;
            END $$;
            """, cancellationToken);
        // v2: every pattern's tokens also hold its tenant ("@:tenant", so the GIN index finds one
        // tenant's patterns only) and its intent's distinct word count ("n:3"; see TaskPatterns.IndexTokens).
        await dataSource.ApplyAsync("experiences", 2, $"""
            UPDATE cm_experience_patterns
            SET tokens = tokens || ARRAY['{TenantTokenPrefix}' || tenant_id]
                || coalesce((SELECT ARRAY['n:' || count(DISTINCT w)] FROM unnest(string_to_array(pattern->>'intent', '_')) w
                             WHERE w <> '' HAVING count(DISTINCT w) > 0), ARRAY[]::text[])
            WHERE NOT tokens @> ARRAY['{TenantTokenPrefix}' || tenant_id];
            """, cancellationToken);
    }

    // The token naming a pattern's tenant: every index look-up also asks for it.
    private const string TenantTokenPrefix = "@:";

    private static string[] RowTokens(string tenantId, TaskPattern pattern) => [.. TaskPatterns.IndexTokens(pattern), TenantTokenPrefix + tenantId];

    /// <inheritdoc />
    public async Task<(Experience Experience, bool Created)> InsertIfAbsentAsync(string tenantId, Experience experience, CancellationToken cancellationToken = default)
    {
        var success = experience.Result.Success == true;
        await using var command = dataSource.CreateCommand("""
            WITH inserted AS (
                INSERT INTO cm_experiences (tenant_id, id, pattern_key, agent_id, success, recorded_at, doc, conversation_id, user_id)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $12, $13)
                ON CONFLICT (tenant_id, id) DO NOTHING
                RETURNING id)
            INSERT INTO cm_experience_patterns AS p (tenant_id, pattern_key, pattern, tokens, attempts, successes, duration_sum, duration_count, cost_sum, cost_count, last_success_id, last_failure_id)
            SELECT $1, $3, $8, $9, 1, CASE WHEN $5 THEN 1 ELSE 0 END, coalesce($10, 0), CASE WHEN $10 IS NULL THEN 0 ELSE 1 END,
                   coalesce($11, 0), CASE WHEN $11 IS NULL THEN 0 ELSE 1 END, CASE WHEN $5 THEN $2 END, CASE WHEN $5 THEN NULL ELSE $2 END
            FROM inserted
            ON CONFLICT (tenant_id, pattern_key) DO UPDATE SET
                attempts = p.attempts + 1,
                successes = p.successes + EXCLUDED.successes,
                duration_sum = p.duration_sum + EXCLUDED.duration_sum,
                duration_count = p.duration_count + EXCLUDED.duration_count,
                cost_sum = p.cost_sum + EXCLUDED.cost_sum,
                cost_count = p.cost_count + EXCLUDED.cost_count,
                last_success_id = coalesce(EXCLUDED.last_success_id, p.last_success_id),
                last_failure_id = coalesce(EXCLUDED.last_failure_id, p.last_failure_id)
            """);
        command.Parameters.Add(new() { Value = tenantId });
        command.Parameters.Add(new() { Value = experience.Id });
        command.Parameters.Add(new() { Value = experience.Pattern.Key });
        command.Parameters.Add(new() { Value = (object?)experience.AgentId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new() { Value = success });
        command.Parameters.Add(new() { Value = experience.RecordedAt });
        command.Parameters.Add(new() { Value = JsonSerializer.Serialize(experience, ContractsJson.Options), NpgsqlDbType = NpgsqlDbType.Jsonb });
        command.Parameters.Add(new() { Value = JsonSerializer.Serialize(experience.Pattern, ContractsJson.Options), NpgsqlDbType = NpgsqlDbType.Jsonb });
        command.Parameters.Add(new() { Value = RowTokens(tenantId, experience.Pattern), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        command.Parameters.Add(new() { Value = (object?)experience.Result.DurationMs ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Double });
        command.Parameters.Add(new() { Value = (object?)experience.Result.Cost ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Double });
        command.Parameters.Add(new() { Value = (object?)experience.ConversationId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new() { Value = (object?)experience.UserId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        if (await command.ExecuteNonQueryAsync(cancellationToken) == 1)
        {
            return (experience, true);
        }
        var existing = await GetManyAsync(tenantId, [experience.Id], cancellationToken);
        return (existing.Single(), false);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<PatternStats>> FindCandidatesAsync(string tenantId, CandidateQuery query, int limit, CancellationToken cancellationToken = default)
    {
        // Every condition is a containment the GIN index answers (posting lists intersected, the
        // tenant's token with them), so only patterns that can reach the threshold are read; without
        // sets, patterns sharing any token are read and counted.
        var tenantToken = TenantTokenPrefix + tenantId;
        var sets = query.AllOf?.Select(set => set.Append(tenantToken).ToArray()).ToList();
        var match = sets is null
            ? "tokens && $2 AND tokens @> $5"
            : "(" + string.Join(" OR ", sets.Select((_, i) => $"tokens @> ${5 + i}")) + ")";
        // Ordered by how many tokens a pattern shares, so a capped set keeps the closest ones.
        await using var command = dataSource.CreateCommand($"""
            SELECT pattern::text, attempts, successes, duration_sum, duration_count, cost_sum, cost_count, last_success_id, last_failure_id
            FROM (SELECT *, (SELECT count(*) FROM unnest(tokens) t WHERE t = ANY($2)) AS shared
                  FROM cm_experience_patterns WHERE tenant_id = $1 AND {match}) p
            WHERE shared >= $4
            ORDER BY shared DESC, pattern_key
            LIMIT $3
            """);
        command.Parameters.Add(new() { Value = tenantId });
        command.Parameters.Add(new() { Value = query.Tokens.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        command.Parameters.Add(new() { Value = limit });
        command.Parameters.Add(new() { Value = (long)Math.Max(1, query.MinShared) });
        foreach (var set in sets ?? [[tenantToken]])
        {
            command.Parameters.Add(new() { Value = set, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        }
        var result = new List<PatternStats>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(new PatternStats(JsonSerializer.Deserialize<TaskPattern>(reader.GetString(0), ContractsJson.Options)!,
                reader.GetInt32(1), reader.GetInt32(2), reader.GetDouble(3), reader.GetInt32(4), reader.GetDouble(5), reader.GetInt32(6),
                reader.IsDBNull(7) ? null : reader.GetString(7), reader.IsDBNull(8) ? null : reader.GetString(8)));
        }
        return result;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<Experience>> GetManyAsync(string tenantId, IReadOnlyCollection<string> ids, CancellationToken cancellationToken = default)
    {
        if (ids.Count == 0)
        {
            return [];
        }
        await using var command = dataSource.CreateCommand("SELECT doc::text FROM cm_experiences WHERE tenant_id = $1 AND id = ANY($2)");
        command.Parameters.Add(new() { Value = tenantId });
        command.Parameters.Add(new() { Value = ids.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        var result = new List<Experience>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(JsonSerializer.Deserialize<Experience>(reader.GetString(0), ContractsJson.Options)!);
        }
        return result;
    }

    /// <inheritdoc />
    public async Task<long> DeleteAsync(string tenantId, IReadOnlyCollection<string> conversationIds, string? userId, CancellationToken cancellationToken = default)
    {
        if (conversationIds.Count == 0 && userId is null)
        {
            return 0;
        }
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var keys = new HashSet<string>(StringComparer.Ordinal);
        long deleted = 0;
        await using (var delete = new NpgsqlCommand("""
            DELETE FROM cm_experiences
            WHERE tenant_id = $1 AND (conversation_id = ANY($2) OR ($3::text IS NOT NULL AND user_id = $3))
            RETURNING pattern_key
            """, connection, transaction))
        {
            delete.Parameters.Add(new() { Value = tenantId });
            delete.Parameters.Add(new() { Value = conversationIds.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            delete.Parameters.Add(new() { Value = (object?)userId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
            await using var reader = await delete.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                keys.Add(reader.GetString(0));
                deleted++;
            }
        }
        if (keys.Count > 0)
        {
            // The patterns' rows are locked first (in key order), so the recount below, a new statement
            // with a new snapshot, sees every experience committed before it and a concurrent insert
            // that waits for the lock adds itself to the recounted totals afterwards.
            await using var batch = new NpgsqlBatch(connection, transaction)
            {
                BatchCommands =
                {
                    new("SELECT 1 FROM cm_experience_patterns WHERE tenant_id = $1 AND pattern_key = ANY($2) ORDER BY pattern_key FOR UPDATE"),
                    new("""
                        UPDATE cm_experience_patterns p SET
                            attempts = a.attempts, successes = a.successes,
                            duration_sum = a.duration_sum, duration_count = a.duration_count,
                            cost_sum = a.cost_sum, cost_count = a.cost_count,
                            last_success_id = a.last_success_id, last_failure_id = a.last_failure_id
                        FROM (SELECT pattern_key, count(*)::int AS attempts, count(*) FILTER (WHERE success)::int AS successes,
                                     coalesce(sum((doc->'result'->>'durationMs')::double precision), 0) AS duration_sum,
                                     count((doc->'result'->>'durationMs')::double precision)::int AS duration_count,
                                     coalesce(sum((doc->'result'->>'cost')::double precision), 0) AS cost_sum,
                                     count((doc->'result'->>'cost')::double precision)::int AS cost_count,
                                     (array_agg(id ORDER BY recorded_at DESC, id DESC) FILTER (WHERE success))[1] AS last_success_id,
                                     (array_agg(id ORDER BY recorded_at DESC, id DESC) FILTER (WHERE NOT success))[1] AS last_failure_id
                              FROM cm_experiences WHERE tenant_id = $1 AND pattern_key = ANY($2) GROUP BY pattern_key) a
                        WHERE p.tenant_id = $1 AND p.pattern_key = a.pattern_key
                        """),
                    new("""
                        DELETE FROM cm_experience_patterns p
                        WHERE p.tenant_id = $1 AND p.pattern_key = ANY($2)
                          AND NOT EXISTS (SELECT 1 FROM cm_experiences e WHERE e.tenant_id = $1 AND e.pattern_key = p.pattern_key)
                        """),
                },
            };
            foreach (var command in batch.BatchCommands)
            {
                command.Parameters.Add(new NpgsqlParameter { Value = tenantId });
                command.Parameters.Add(new NpgsqlParameter { Value = keys.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            }
            await batch.ExecuteNonQueryAsync(cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
        return deleted;
    }
}
