using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Traces;
using Npgsql;
using NpgsqlTypes;

namespace CloudMemory.Trace.Features.Steps;

/// <summary>
/// Trace steps in PostgreSQL. A batch is one transaction: the steps go in as one <c>INSERT ... SELECT
/// FROM unnest(...)</c> (arrays, one round trip whatever the size) that skips stored keys, then the
/// memory links and the duration histogram rows of the new steps. The step itself is kept in the
/// compact binary form of <see cref="StepCodec"/> (bytea); the columns that queries filter on are
/// indexed beside it.
/// </summary>
public sealed class PostgresTraceStore(NpgsqlDataSource dataSource) : ITraceStore
{
    /// <summary>Creates tables and indexes if they do not exist (run at start).</summary>
    public async Task MigrateAsync(CancellationToken cancellationToken = default)
    {
        await dataSource.ApplyAsync("trace", 1, """
            SELECT pg_advisory_xact_lock(7301010);
            CREATE TABLE IF NOT EXISTS cm_trace_steps (
                tenant_id text NOT NULL,
                trace_id text NOT NULL,
                step_id text NOT NULL,
                step_index integer NOT NULL,
                context_id text,
                agent_id text NOT NULL,
                step_type text NOT NULL,
                name text NOT NULL,
                started_at timestamptz NOT NULL,
                success boolean NOT NULL,
                sensitivity integer NOT NULL,
                compliance text NOT NULL,
                doc bytea NOT NULL,
                PRIMARY KEY (tenant_id, trace_id, step_id));
            CREATE INDEX IF NOT EXISTS cm_trace_steps_context ON cm_trace_steps (tenant_id, context_id, started_at) WHERE context_id IS NOT NULL;
            CREATE INDEX IF NOT EXISTS cm_trace_steps_agent ON cm_trace_steps (tenant_id, agent_id, started_at);
            CREATE INDEX IF NOT EXISTS cm_trace_steps_sensitive ON cm_trace_steps (tenant_id, started_at) WHERE sensitivity <> 0;
            CREATE INDEX IF NOT EXISTS cm_trace_steps_age ON cm_trace_steps USING brin (started_at);
            CREATE TABLE IF NOT EXISTS cm_trace_memory_links (
                tenant_id text NOT NULL,
                memory_id text NOT NULL,
                trace_id text NOT NULL,
                step_id text NOT NULL,
                PRIMARY KEY (tenant_id, memory_id, trace_id, step_id));
            CREATE TABLE IF NOT EXISTS cm_trace_duration_stats (
                tenant_id text NOT NULL,
                step_type text NOT NULL,
                agent_id text NOT NULL,
                bucket smallint NOT NULL,
                count bigint NOT NULL,
                PRIMARY KEY (tenant_id, step_type, agent_id, bucket));
            """, cancellationToken);
    }

    /// <inheritdoc />
    public async Task<bool[]> AppendAsync(IReadOnlyList<TenantStep> steps, CancellationToken cancellationToken = default)
    {
        using var activity = TraceTelemetry.Source.StartActivity("trace.store.append");
        activity?.SetTag("db.system", "postgresql");
        activity?.SetTag("cloudmemory.trace.steps", steps.Count);
        var n = steps.Count;
        var tenants = new string[n];
        var traces = new string[n];
        var stepIds = new string[n];
        var indexes = new int[n];
        var contexts = new string?[n];
        var agents = new string[n];
        var types = new string[n];
        var names = new string[n];
        var started = new DateTime[n];
        var success = new bool[n];
        var sensitivity = new int[n];
        var compliance = new string[n];
        var docs = new byte[n][];
        for (var i = 0; i < n; i++)
        {
            var (tenant, step, flags) = steps[i];
            tenants[i] = tenant;
            traces[i] = step.TraceId;
            stepIds[i] = step.StepId;
            indexes[i] = step.StepIndex;
            contexts[i] = step.ContextId;
            agents[i] = step.AgentId;
            types[i] = step.StepType;
            names[i] = step.Name;
            started[i] = step.StartedAt.UtcDateTime;
            success[i] = step.Success;
            sensitivity[i] = flags;
            compliance[i] = step.Audit.Status;
            docs[i] = StepCodec.Encode(step);
        }

        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var inserted = new bool[n];
        var positions = new Dictionary<(string, string, string), int>(n);
        for (var i = n - 1; i >= 0; i--)
        {
            positions[(tenants[i], traces[i], stepIds[i])] = i; // the first occurrence wins within a batch
        }
        await using (var insert = new NpgsqlCommand("""
            INSERT INTO cm_trace_steps (tenant_id, trace_id, step_id, step_index, context_id, agent_id, step_type, name, started_at, success, sensitivity, compliance, doc)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::text[], $9::timestamptz[], $10::bool[], $11::int[], $12::text[], $13::bytea[])
            ON CONFLICT DO NOTHING
            RETURNING tenant_id, trace_id, step_id
            """, connection, transaction))
        {
            var p = insert.Parameters;
            p.Add(new() { Value = tenants, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            p.Add(new() { Value = traces, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            p.Add(new() { Value = stepIds, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            p.Add(new() { Value = indexes, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer });
            p.Add(new() { Value = contexts, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            p.Add(new() { Value = agents, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            p.Add(new() { Value = types, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            p.Add(new() { Value = names, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            p.Add(new() { Value = started, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
            p.Add(new() { Value = success, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Boolean });
            p.Add(new() { Value = sensitivity, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer });
            p.Add(new() { Value = compliance, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            p.Add(new() { Value = docs, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
            await using var reader = await insert.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                inserted[positions[(reader.GetString(0), reader.GetString(1), reader.GetString(2))]] = true;
            }
        }

        var links = new List<(string Tenant, string Memory, string Trace, string Step)>();
        var histogram = new SortedDictionary<(string Tenant, string Type, string Agent, short Bucket), long>();
        for (var i = 0; i < n; i++)
        {
            if (!inserted[i])
            {
                continue;
            }
            var (tenant, step, _) = steps[i];
            foreach (var memoryId in step.MemoryIds)
            {
                links.Add((tenant, memoryId, step.TraceId, step.StepId));
            }
            var key = (tenant, step.StepType, step.AgentId, (short)DurationStats.BucketOf(step.DurationMs));
            histogram[key] = histogram.GetValueOrDefault(key) + 1;
        }
        if (links.Count > 0)
        {
            await using var link = new NpgsqlCommand("""
                INSERT INTO cm_trace_memory_links (tenant_id, memory_id, trace_id, step_id)
                SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING
                """, connection, transaction);
            link.Parameters.Add(new() { Value = links.Select(l => l.Tenant).ToArray() });
            link.Parameters.Add(new() { Value = links.Select(l => l.Memory).ToArray() });
            link.Parameters.Add(new() { Value = links.Select(l => l.Trace).ToArray() });
            link.Parameters.Add(new() { Value = links.Select(l => l.Step).ToArray() });
            await link.ExecuteNonQueryAsync(cancellationToken);
        }
        if (histogram.Count > 0)
        {
            // Rows in key order: concurrent batches lock the shared counters in the same order (no deadlock).
            await using var stats = new NpgsqlCommand("""
                INSERT INTO cm_trace_duration_stats AS s (tenant_id, step_type, agent_id, bucket, count)
                SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::smallint[], $5::bigint[])
                ON CONFLICT (tenant_id, step_type, agent_id, bucket) DO UPDATE SET count = s.count + EXCLUDED.count
                """, connection, transaction);
            stats.Parameters.Add(new() { Value = histogram.Keys.Select(k => k.Tenant).ToArray() });
            stats.Parameters.Add(new() { Value = histogram.Keys.Select(k => k.Type).ToArray() });
            stats.Parameters.Add(new() { Value = histogram.Keys.Select(k => k.Agent).ToArray() });
            stats.Parameters.Add(new() { Value = histogram.Keys.Select(k => k.Bucket).ToArray() });
            stats.Parameters.Add(new() { Value = histogram.Values.ToArray() });
            await stats.ExecuteNonQueryAsync(cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
        return inserted;
    }

    // A trace's rows come in primary-key order and are sorted here, after decoding (step index, start,
    // step id — the in-memory store's order): sorting 1,000 rows by the key was half of the query's time in PostgreSQL.
    // ORDER BY step_id is the primary key's own order (no sort): it keeps the planner on that index
    // when its statistics are stale, where it otherwise may scan the tenant's per-agent index and filter.
    private const string TraceSql = "SELECT doc FROM cm_trace_steps WHERE tenant_id = $1 AND trace_id = $2 ORDER BY step_id";

    /// <inheritdoc />
    public async Task<IReadOnlyList<TraceStep>> GetTraceAsync(string tenantId, string traceId, CancellationToken cancellationToken = default)
    {
        var stored = await ReadAsync(TraceSql, cancellationToken, tenantId, traceId);
        var steps = Decode(stored);
        Array.Sort(steps, TraceOrder);
        return steps;
    }

    /// <inheritdoc />
    public async Task<TraceRows> GetTraceRowsAsync(string tenantId, string traceId, CancellationToken cancellationToken = default)
    {
        var stored = await ReadAsync(TraceSql, cancellationToken, tenantId, traceId);
        var steps = new TraceStep[stored.Count];
        var payloads = new StepPayloads[stored.Count];
        // On the calling thread: without parsing payloads a step decodes in about a microsecond, and
        // handing chunks to pool threads (their wake-ups and spin-waits) cost the read more than that.
        StepCodec.DecodeHeads(stored, 0, stored.Count, steps, payloads);
        Array.Sort(steps, payloads, TraceOrder);
        return new TraceRows(steps, payloads);
    }

    private static readonly Comparer<TraceStep> TraceOrder = Comparer<TraceStep>.Create((a, b) =>
        a.StepIndex != b.StepIndex ? a.StepIndex.CompareTo(b.StepIndex)
        : a.StartedAt != b.StartedAt ? a.StartedAt.CompareTo(b.StartedAt)
        : string.CompareOrdinal(a.StepId, b.StepId));

    /// <inheritdoc />
    public async Task<(bool Found, string? ContextId)> GetTraceConversationAsync(string tenantId, string traceId, CancellationToken cancellationToken = default)
    {
        // One row whenever the trace has steps: the first naming a conversation, else any (its null id).
        await using var command = dataSource.CreateCommand("""
            SELECT context_id FROM cm_trace_steps WHERE tenant_id = $1 AND trace_id = $2
            ORDER BY context_id IS NULL, step_index, started_at, step_id LIMIT 1
            """);
        command.Parameters.Add(new() { Value = tenantId });
        command.Parameters.Add(new() { Value = traceId });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? (true, reader.IsDBNull(0) ? null : reader.GetString(0)) : (false, null);
    }

    /// <inheritdoc />
    public async Task<TraceStep?> GetStepAsync(string tenantId, string traceId, string stepId, CancellationToken cancellationToken = default)
    {
        var found = await QueryAsync("SELECT doc FROM cm_trace_steps WHERE tenant_id = $1 AND trace_id = $2 AND step_id = $3",
            cancellationToken, tenantId, traceId, stepId);
        return found.Count == 0 ? null : found[0];
    }

    /// <inheritdoc />
    public async Task<int?> GetMaxStepIndexAsync(string tenantId, string traceId, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("SELECT max(step_index) FROM cm_trace_steps WHERE tenant_id = $1 AND trace_id = $2");
        command.Parameters.Add(new() { Value = tenantId });
        command.Parameters.Add(new() { Value = traceId });
        return await command.ExecuteScalarAsync(cancellationToken) is int max ? max : null;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<TraceStep>> GetContextStepsAsync(string tenantId, string contextId, int limit, CancellationToken cancellationToken = default)
    {
        var newestFirst = await QueryAsync("""
            SELECT doc FROM cm_trace_steps WHERE tenant_id = $1 AND context_id = $2
            ORDER BY started_at DESC, step_index DESC LIMIT $3
            """, cancellationToken, tenantId, contextId, limit);
        return [.. newestFirst.Reverse()];
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<TraceStep>> GetAgentStepsAsync(string tenantId, string agentId, int limit, CancellationToken cancellationToken = default) =>
        QueryAsync("""
            SELECT doc FROM cm_trace_steps WHERE tenant_id = $1 AND agent_id = $2
            ORDER BY started_at DESC, step_index DESC LIMIT $3
            """, cancellationToken, tenantId, agentId, limit);

    /// <inheritdoc />
    public async Task LinkMemoriesAsync(string tenantId, IReadOnlyList<MemoryLink> links, CancellationToken cancellationToken = default)
    {
        if (links.Count == 0)
        {
            return;
        }
        await using var command = dataSource.CreateCommand("""
            INSERT INTO cm_trace_memory_links (tenant_id, memory_id, trace_id, step_id)
            SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING
            """);
        command.Parameters.Add(new() { Value = tenantId });
        command.Parameters.Add(new() { Value = links.Select(l => l.MemoryId).ToArray() });
        command.Parameters.Add(new() { Value = links.Select(l => l.TraceId).ToArray() });
        command.Parameters.Add(new() { Value = links.Select(l => l.StepId).ToArray() });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<TraceStep>> GetMemoryProvenanceAsync(string tenantId, string memoryId, CancellationToken cancellationToken = default) =>
        QueryAsync("""
            SELECT s.doc FROM cm_trace_memory_links l
            JOIN cm_trace_steps s ON s.tenant_id = l.tenant_id AND s.trace_id = l.trace_id AND s.step_id = l.step_id
            WHERE l.tenant_id = $1 AND l.memory_id = $2
            ORDER BY s.started_at, s.step_index
            """, cancellationToken, tenantId, memoryId);

    /// <inheritdoc />
    public Task<IReadOnlyList<TraceStep>> GetSensitiveStepsAsync(string tenantId, DateTimeOffset from, DateTimeOffset to, int limit, CancellationToken cancellationToken = default) =>
        QueryAsync("""
            SELECT doc FROM cm_trace_steps WHERE tenant_id = $1 AND sensitivity <> 0 AND started_at >= $2 AND started_at < $3
            ORDER BY started_at, trace_id, step_index LIMIT $4
            """, cancellationToken, tenantId, from, to, limit);

    /// <inheritdoc />
    public async Task<TraceStep?> FindLastSuccessAsync(string tenantId, string agentId, string stepType, string name, DateTimeOffset before, CancellationToken cancellationToken = default)
    {
        var found = await QueryAsync("""
            SELECT doc FROM cm_trace_steps
            WHERE tenant_id = $1 AND agent_id = $2 AND step_type = $3 AND name = $4 AND success AND started_at < $5
            ORDER BY started_at DESC LIMIT 1
            """, cancellationToken, tenantId, agentId, stepType, name, before);
        return found.Count == 0 ? null : found[0];
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<DurationStats>> GetDurationStatsAsync(string tenantId, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("SELECT step_type, agent_id, bucket, count FROM cm_trace_duration_stats WHERE tenant_id = $1");
        command.Parameters.Add(new() { Value = tenantId });
        var stats = new Dictionary<(string, string), long[]>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            var key = (reader.GetString(0), reader.GetString(1));
            if (!stats.TryGetValue(key, out var buckets))
            {
                stats[key] = buckets = new long[DurationStats.BucketCount];
            }
            buckets[reader.GetInt16(2)] = reader.GetInt64(3);
        }
        return [.. stats.Select(kv => new DurationStats(kv.Key.Item1, kv.Key.Item2, kv.Value))];
    }

    /// <inheritdoc />
    public async Task<long> DeleteOlderThanAsync(string tenantId, DateTimeOffset cutoff, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            WITH gone AS (DELETE FROM cm_trace_steps WHERE tenant_id = $1 AND started_at < $2 RETURNING trace_id, step_id),
            unlinked AS (DELETE FROM cm_trace_memory_links l USING gone WHERE l.tenant_id = $1 AND l.trace_id = gone.trace_id AND l.step_id = gone.step_id)
            SELECT count(*) FROM gone
            """);
        command.Parameters.Add(new() { Value = tenantId });
        command.Parameters.Add(new() { Value = cutoff });
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <inheritdoc />
    public async Task<long> DeleteContextsAsync(string tenantId, IReadOnlyCollection<string> contextIds, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            WITH gone AS (DELETE FROM cm_trace_steps WHERE tenant_id = $1 AND context_id = ANY($2) RETURNING trace_id, step_id),
            unlinked AS (DELETE FROM cm_trace_memory_links l USING gone WHERE l.tenant_id = $1 AND l.trace_id = gone.trace_id AND l.step_id = gone.step_id)
            SELECT count(*) FROM gone
            """);
        command.Parameters.Add(new() { Value = tenantId });
        command.Parameters.Add(new() { Value = contextIds.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    private async Task<IReadOnlyList<TraceStep>> QueryAsync(string sql, CancellationToken cancellationToken, params object[] parameters) =>
        Decode(await ReadAsync(sql, cancellationToken, parameters));

    private async Task<List<byte[]>> ReadAsync(string sql, CancellationToken cancellationToken, params object[] parameters)
    {
        using var activity = TraceTelemetry.Source.StartActivity("trace.store.read");
        activity?.SetTag("db.system", "postgresql");
        await using var command = dataSource.CreateCommand(sql);
        foreach (var value in parameters)
        {
            command.Parameters.Add(new() { Value = value });
        }
        var stored = new List<byte[]>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            stored.Add(reader.GetFieldValue<byte[]>(0));
        }
        return stored;
    }

    // Each chunk parses its steps' payloads as one JSON document.
    private static TraceStep[] Decode(List<byte[]> stored)
    {
        var steps = new TraceStep[stored.Count];
        InChunks(stored.Count, (start, count) => StepCodec.DecodeRange(stored, start, count, steps));
        return steps;
    }

    // Large reads (a whole trace) decode on every core in chunks; small ones on the calling thread.
    private static void InChunks(int total, Action<int, int> decode)
    {
        const int chunk = 256;
        if (total <= chunk)
        {
            decode(0, total);
            return;
        }
        Parallel.For(0, (total + chunk - 1) / chunk, c => decode(c * chunk, Math.Min(chunk, total - (c * chunk))));
    }
}
