using System.Globalization;
using System.Numerics.Tensors;
using System.Text.Json;
using System.Text;
using CloudMemory.BuildingBlocks.Hosting;
using Npgsql;
using NpgsqlTypes;

namespace CloudMemory.Context.Features.Memories;

/// <summary>
/// PostgreSQL store: one table per schema with secondary indexes (tenant + context / trace / user),
/// a generated <c>tsvector</c> with a GIN index for full-text search ranked by <c>ts_rank_cd</c>,
/// and embeddings in a <c>vector</c> column when the pgvector extension can be created, else a
/// <c>real[]</c> column scored in the service (SIMD dot products over the filtered rows).
/// </summary>
public sealed class PostgresMemoryStore : IMemoryStore
{
    private const string Columns = "tenant_id, id, user_id, context_id, trace_id, type, content, metadata, tags, created_at, last_accessed_at, access_count, expires_at";

    private readonly NpgsqlDataSource _dataSource;
    private readonly string _schema;
    private readonly string _table;
    private readonly string _erasures;
    // The upsert statements by (awaitEmbedding, unlessErased), built once the vector mode is known.
    private readonly string?[] _upsertSql = new string?[4];
    private bool _pgvector;

    /// <summary>Creates the store over <paramref name="dataSource"/> in <paramref name="schema"/>.</summary>
    public PostgresMemoryStore(NpgsqlDataSource dataSource, string schema = "memories")
    {
        if (string.IsNullOrEmpty(schema) || !schema.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '_') || char.IsAsciiDigit(schema[0]))
        {
            throw new ArgumentException("The schema name must be lower-case letters, digits and '_' (it is used in SQL as is).", nameof(schema));
        }
        _dataSource = dataSource;
        _schema = schema;
        _table = schema + ".memory_entries";
        _erasures = schema + ".memory_erasures";
    }

    /// <summary>True when vectors are stored and searched with pgvector.</summary>
    public bool UsesPgvector => _pgvector;

    /// <inheritdoc />
    public async Task InitializeAsync(CancellationToken cancellationToken = default)
    {
        await using (var connection = await _dataSource.OpenConnectionAsync(cancellationToken))
        {
            _pgvector = await TryCreatePgvectorAsync(connection, cancellationToken);
            Array.Clear(_upsertSql);
        }
        var sql = $"""
            SELECT pg_advisory_xact_lock(hashtext('{_schema}.memory_entries'));
            CREATE SCHEMA IF NOT EXISTS {_schema};
            CREATE TABLE IF NOT EXISTS {_table} (
                tenant_id text NOT NULL,
                id text NOT NULL,
                user_id text NULL,
                context_id text NULL,
                trace_id text NULL,
                type text NOT NULL,
                content text NOT NULL,
                content_hash text NOT NULL,
                metadata jsonb NOT NULL DEFAULT '{"{}"}',
                tags text[] NOT NULL DEFAULT '{"{}"}',
                created_at timestamptz NOT NULL,
                last_accessed_at timestamptz NOT NULL,
                access_count bigint NOT NULL DEFAULT 0,
                expires_at timestamptz NULL,
                embedding real[] NULL,
                search tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED,
                PRIMARY KEY (tenant_id, id));
            CREATE INDEX IF NOT EXISTS memory_entries_context ON {_table} (tenant_id, context_id, created_at DESC);
            CREATE INDEX IF NOT EXISTS memory_entries_trace ON {_table} (tenant_id, trace_id, created_at DESC);
            CREATE INDEX IF NOT EXISTS memory_entries_user ON {_table} (tenant_id, user_id, created_at DESC);
            CREATE INDEX IF NOT EXISTS memory_entries_search ON {_table} USING gin (search);
            CREATE INDEX IF NOT EXISTS memory_entries_pending ON {_table} (created_at) WHERE embedding IS NULL;
            """;
        if (_pgvector)
        {
            sql += $"ALTER TABLE {_table} ADD COLUMN IF NOT EXISTS embedding_vector vector NULL;";
        }
        // One schema version per table and vector mode: pgvector installed later migrates again.
        await _dataSource.ApplyAsync($"memories:{_table}{(_pgvector ? ":vector" : "")}", 1, sql, cancellationToken);
        // Erased contexts ('c') and users ('u'): their entries created until erased_at are never written again.
        await _dataSource.ApplyAsync($"memories:{_erasures}", 1, $"""
            CREATE SCHEMA IF NOT EXISTS {_schema};
            CREATE TABLE IF NOT EXISTS {_erasures} (
                tenant_id text NOT NULL,
                kind "char" NOT NULL,
                id text NOT NULL,
                erased_at timestamptz NOT NULL,
                PRIMARY KEY (tenant_id, kind, id));
            """, cancellationToken);
    }

    /// <inheritdoc />
    public async Task RecordErasureAsync(string tenantId, IReadOnlyCollection<string> contextIds, string? userId, DateTimeOffset erasedAt, CancellationToken cancellationToken = default)
    {
        var kinds = contextIds.Select(_ => "c").Concat(userId is null ? [] : ["u"]).ToArray();
        var ids = contextIds.Concat(userId is null ? [] : [userId]).ToArray();
        if (ids.Length == 0)
        {
            return;
        }
        // One implicit transaction: the exclusive locks wait for writes in flight (UpsertManyAsync holds
        // the shared ones while it writes) and make later writes wait until the record is committed.
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var batch = new NpgsqlBatch(connection);
        var locks = new NpgsqlBatchCommand(ErasureLocksSql(shared: false));
        locks.Parameters.AddWithValue("keys", kinds.Zip(ids, (kind, id) => ErasureKey(tenantId, kind, id)).ToArray());
        var record = new NpgsqlBatchCommand($"""
            INSERT INTO {_erasures} (tenant_id, kind, id, erased_at)
            SELECT @tenant, k.kind::"char", k.id, @at FROM unnest(@kinds, @ids) AS k(kind, id)
            ON CONFLICT (tenant_id, kind, id) DO UPDATE SET erased_at = GREATEST({_erasures}.erased_at, EXCLUDED.erased_at)
            """);
        record.Parameters.AddWithValue("tenant", tenantId);
        record.Parameters.AddWithValue("at", erasedAt);
        record.Parameters.AddWithValue("kinds", kinds);
        record.Parameters.AddWithValue("ids", ids);
        batch.BatchCommands.Add(locks);
        batch.BatchCommands.Add(record);
        await batch.ExecuteNonQueryAsync(cancellationToken);
    }

    // Advisory locks of erased contexts and users, taken in one order everywhere (no deadlock between
    // a writer's shared locks and an erasure's exclusive ones); after an ORDER BY, PostgreSQL
    // evaluates the volatile lock calls row by row in the sorted order.
    private static string ErasureLocksSql(bool shared) => $"""
        SELECT pg_advisory_xact_lock{(shared ? "_shared" : "")}(h)
        FROM (SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest(@keys) AS k) AS d ORDER BY h
        """;

    private static string ErasureKey(string tenantId, string kind, string id) => $"memory-erasure\u001f{tenantId}\u001f{kind}\u001f{id}";

    /// <inheritdoc />
    public async Task<bool> UpsertAsync(MemoryEntry entry, string contentHash, CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand(UpsertSql(awaitEmbedding: true));
        AddEntryParameters(command.Parameters, entry, contentHash);
        return (bool)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <inheritdoc />
    public async Task UpsertManyAsync(IReadOnlyList<(MemoryEntry Entry, string ContentHash)> entries, bool awaitEmbedding, CancellationToken cancellationToken = default)
    {
        if (entries.Count == 0)
        {
            return;
        }
        // One statement for the whole batch (indexed conversation turns), its rows sent as arrays: a
        // command per row cost the app a fifth more CPU per indexed turn. It runs with the locks as one
        // implicit transaction: the shared locks of the entries' contexts and users are held until every
        // row is written, and rows of erased ones are skipped (RecordErasureAsync). ON CONFLICT may touch
        // a row once per statement, so a key given twice keeps its last entry.
        var rows = entries.GroupBy(e => (e.Entry.TenantId, e.Entry.Id)).Select(g => g.Last()).ToList();
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var batch = new NpgsqlBatch(connection);
        var locks = new NpgsqlBatchCommand(ErasureLocksSql(shared: true));
        locks.Parameters.AddWithValue("keys", rows.SelectMany(e => new[]
        {
            e.Entry.ContextId is { } context ? ErasureKey(e.Entry.TenantId, "c", context) : null,
            e.Entry.UserId is { } user ? ErasureKey(e.Entry.TenantId, "u", user) : null,
        }).OfType<string>().Distinct().ToArray());
        batch.BatchCommands.Add(locks);
        var upsert = new NpgsqlBatchCommand(UpsertSql(awaitEmbedding, many: true));
        var parameters = upsert.Parameters;
        parameters.AddWithValue("tenants", rows.Select(r => r.Entry.TenantId).ToArray());
        parameters.AddWithValue("ids", rows.Select(r => r.Entry.Id).ToArray());
        parameters.AddWithValue("users", rows.Select(r => r.Entry.UserId).ToArray());
        parameters.AddWithValue("contexts", rows.Select(r => r.Entry.ContextId).ToArray());
        parameters.AddWithValue("traces", rows.Select(r => r.Entry.TraceId).ToArray());
        parameters.AddWithValue("types", rows.Select(r => r.Entry.Type).ToArray());
        parameters.AddWithValue("contents", rows.Select(r => r.Entry.Content).ToArray());
        parameters.AddWithValue("metadata", NpgsqlDbType.Array | NpgsqlDbType.Jsonb, rows.Select(r => JsonSerializer.Serialize(r.Entry.Metadata)).ToArray());
        parameters.AddWithValue("tags", NpgsqlDbType.Array | NpgsqlDbType.Jsonb, rows.Select(r => JsonSerializer.Serialize(r.Entry.Tags)).ToArray());
        parameters.AddWithValue("created", rows.Select(r => r.Entry.CreatedAt).ToArray());
        parameters.AddWithValue("accessed", rows.Select(r => r.Entry.LastAccessedAt).ToArray());
        parameters.AddWithValue("counts", rows.Select(r => r.Entry.AccessCount).ToArray());
        parameters.AddWithValue("expires", rows.Select(r => r.Entry.ExpiresAt).ToArray());
        parameters.AddWithValue("hashes", rows.Select(r => r.ContentHash).ToArray());
        batch.BatchCommands.Add(upsert);
        await batch.ExecuteNonQueryAsync(cancellationToken);
    }

    // The embedding survives a rewrite with the same content; otherwise the entry is pending again
    // (embedding NULL), or, keyword-only, marked with an empty array: `embedding IS NULL` means
    // "waiting for its embedding" and nothing else.
    private string UpsertSql(bool awaitEmbedding, bool many = false) =>
        _upsertSql[(awaitEmbedding ? 1 : 0) + (many ? 2 : 0)] ??= BuildUpsertSql(awaitEmbedding, many);

    private string BuildUpsertSql(bool awaitEmbedding, bool many)
    {
        var keepVector = _pgvector ? $", embedding_vector = CASE WHEN {_table}.content_hash = EXCLUDED.content_hash THEN {_table}.embedding_vector END" : string.Empty;
        var unembedded = awaitEmbedding ? "NULL::real[]" : "'{}'::real[]";
        var rows = many
            ? $"""
              SELECT r.tenant_id, r.id, r.user_id, r.context_id, r.trace_id, r.type, r.content, r.metadata,
                  ARRAY(SELECT jsonb_array_elements_text(r.tags)), r.created_at, r.last_accessed_at, r.access_count, r.expires_at, r.content_hash, {unembedded}
              FROM unnest(@tenants, @ids, @users::text[], @contexts::text[], @traces::text[], @types, @contents, @metadata, @tags, @created, @accessed, @counts, @expires::timestamptz[], @hashes)
                  AS r(tenant_id, id, user_id, context_id, trace_id, type, content, metadata, tags, created_at, last_accessed_at, access_count, expires_at, content_hash)
              WHERE NOT EXISTS (SELECT 1 FROM {_erasures} AS e WHERE e.tenant_id = r.tenant_id AND e.erased_at >= r.created_at
                  AND ((e.kind = 'c' AND e.id = r.context_id) OR (e.kind = 'u' AND e.id = r.user_id)))
              """
            : $"VALUES (@tenant, @id, @user::text, @context::text, @trace::text, @type, @content, @metadata, @tags, @created, @accessed, @count, @expires::timestamptz, @hash, {unembedded})";
        return $"""
            INSERT INTO {_table} ({Columns}, content_hash, embedding)
            {rows}
            ON CONFLICT (tenant_id, id) DO UPDATE SET
                user_id = EXCLUDED.user_id, context_id = EXCLUDED.context_id, trace_id = EXCLUDED.trace_id, type = EXCLUDED.type,
                content = EXCLUDED.content, metadata = EXCLUDED.metadata, tags = EXCLUDED.tags, created_at = EXCLUDED.created_at,
                last_accessed_at = EXCLUDED.last_accessed_at, access_count = EXCLUDED.access_count, expires_at = EXCLUDED.expires_at,
                embedding = COALESCE(CASE WHEN {_table}.content_hash = EXCLUDED.content_hash AND cardinality({_table}.embedding) > 0 THEN {_table}.embedding END, EXCLUDED.embedding){keepVector},
                content_hash = EXCLUDED.content_hash
            {(many ? "" : "RETURNING (xmax = 0)")}
            """;
    }

    /// <inheritdoc />
    public async Task<(MemoryEntry Entry, bool Created)> InsertIfAbsentAsync(MemoryEntry entry, string contentHash, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        // An expired row with the same id counts as absent and is overwritten.
        var clearVector = _pgvector ? ", embedding_vector = NULL" : string.Empty;
        var sql = $"""
            INSERT INTO {_table} ({Columns}, content_hash)
            VALUES (@tenant, @id, @user, @context, @trace, @type, @content, @metadata, @tags, @created, @accessed, @count, @expires, @hash)
            ON CONFLICT (tenant_id, id) DO UPDATE SET
                user_id = EXCLUDED.user_id, context_id = EXCLUDED.context_id, trace_id = EXCLUDED.trace_id, type = EXCLUDED.type,
                content = EXCLUDED.content, metadata = EXCLUDED.metadata, tags = EXCLUDED.tags, created_at = EXCLUDED.created_at,
                last_accessed_at = EXCLUDED.last_accessed_at, access_count = EXCLUDED.access_count, expires_at = EXCLUDED.expires_at,
                content_hash = EXCLUDED.content_hash, embedding = NULL{clearVector}
            WHERE {_table}.expires_at IS NOT NULL AND {_table}.expires_at <= @now
            RETURNING 1
            """;
        await using var command = _dataSource.CreateCommand(sql);
        AddEntryParameters(command.Parameters, entry, contentHash);
        command.Parameters.AddWithValue("now", now);
        if (await command.ExecuteScalarAsync(cancellationToken) is not null)
        {
            return (entry, true);
        }
        var existing = await GetAsync(entry.TenantId, entry.Id, now, cancellationToken);
        return existing is null ? await InsertIfAbsentAsync(entry, contentHash, now, cancellationToken) : (existing, false);
    }

    /// <inheritdoc />
    public async Task<MemoryEntry?> GetAsync(string tenantId, string id, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        var found = await GetManyAsync(tenantId, [id], now, cancellationToken);
        return found.Count == 0 ? null : found[0];
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<MemoryEntry>> GetManyAsync(string tenantId, IReadOnlyCollection<string> ids, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        if (ids.Count == 0)
        {
            return [];
        }
        // One primary-key probe per id, whatever the statistics say: on a table growing faster than
        // autovacuum analyses it, "id = ANY(@ids)" (and a plain join with unnest) was planned as a scan of
        // the tenant's whole user index (~20 ms per batch of 250 ids at 60k entries, seen with
        // auto_explain). LIMIT 1 keeps the lateral subquery from being flattened into such a join.
        await using var command = _dataSource.CreateCommand(
            $"SELECT e.* FROM unnest(@ids) AS wanted(wanted_id) CROSS JOIN LATERAL (SELECT {Columns} FROM {_table} "
            + "WHERE tenant_id = @tenant AND id = wanted_id AND (expires_at IS NULL OR expires_at > @now) LIMIT 1) AS e");
        command.Parameters.AddWithValue("tenant", tenantId);
        command.Parameters.AddWithValue("ids", ids.Distinct(StringComparer.Ordinal).ToArray()); // a probe per id: each entry once
        command.Parameters.AddWithValue("now", now);
        return await ReadEntriesAsync(command, cancellationToken);
    }

    /// <inheritdoc />
    public async Task<bool> DeleteAsync(string tenantId, string id, CancellationToken cancellationToken = default)
    {
        // One row holds the entry, its vector and its tsvector: deleting it removes it from every index.
        await using var command = _dataSource.CreateCommand($"DELETE FROM {_table} WHERE tenant_id = @tenant AND id = @id");
        command.Parameters.AddWithValue("tenant", tenantId);
        command.Parameters.AddWithValue("id", id);
        return await command.ExecuteNonQueryAsync(cancellationToken) > 0;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<MemoryEntry>> ListAsync(string tenantId, MemoryFilter filter, int limit, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand();
        var where = Where(command, tenantId, filter, now);
        command.CommandText = $"SELECT {Columns} FROM {_table} WHERE {where} ORDER BY created_at DESC, id LIMIT @limit";
        command.Parameters.AddWithValue("limit", limit);
        return await ReadEntriesAsync(command, cancellationToken);
    }

    /// <inheritdoc />
    public async Task<MemoryNeighbours> ListNeighboursAsync(MemoryEntry entry, int before, int after, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        if (entry.ContextId is null)
        {
            return MemoryNeighbours.None;
        }
        // Row comparison on (created_at, id) in byte order ("C"), the in-memory store's ordinal order.
        async Task<IReadOnlyList<MemoryEntry>> SideAsync(string comparison, string direction, int limit)
        {
            if (limit <= 0)
            {
                return [];
            }
            await using var command = _dataSource.CreateCommand(
                $"SELECT {Columns} FROM {_table} WHERE tenant_id = @tenant AND context_id = @context AND type = @type " +
                $"AND (expires_at IS NULL OR expires_at > @now) AND (created_at, id COLLATE \"C\") {comparison} (@created, @id COLLATE \"C\") " +
                $"ORDER BY created_at {direction}, id COLLATE \"C\" {direction} LIMIT @limit");
            command.Parameters.AddWithValue("tenant", entry.TenantId);
            command.Parameters.AddWithValue("context", entry.ContextId);
            command.Parameters.AddWithValue("type", entry.Type);
            command.Parameters.AddWithValue("now", now);
            command.Parameters.AddWithValue("created", entry.CreatedAt);
            command.Parameters.AddWithValue("id", entry.Id);
            command.Parameters.AddWithValue("limit", limit);
            return await ReadEntriesAsync(command, cancellationToken);
        }
        return new MemoryNeighbours(await SideAsync("<", "DESC", before), await SideAsync(">", "ASC", after));
    }

    /// <inheritdoc />
    public async Task SetEmbeddingsAsync(IReadOnlyList<EmbeddingUpdate> updates, CancellationToken cancellationToken = default)
    {
        if (updates.Count == 0)
        {
            return;
        }
        await using var batch = _dataSource.CreateBatch();
        var setVector = _pgvector ? ", embedding_vector = @vector::vector" : string.Empty;
        foreach (var u in updates)
        {
            var command = new NpgsqlBatchCommand($"UPDATE {_table} SET embedding = @embedding{setVector} WHERE tenant_id = @tenant AND id = @id AND content_hash = @hash");
            command.Parameters.AddWithValue("embedding", u.Vector);
            command.Parameters.AddWithValue("tenant", u.TenantId);
            command.Parameters.AddWithValue("id", u.Id);
            command.Parameters.AddWithValue("hash", u.ContentHash);
            if (_pgvector)
            {
                command.Parameters.AddWithValue("vector", VectorLiteral(u.Vector));
            }
            batch.BatchCommands.Add(command);
        }
        await batch.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<PendingEmbedding>> ListPendingEmbeddingsAsync(int limit, CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand($"SELECT tenant_id, id, content_hash, content FROM {_table} WHERE embedding IS NULL ORDER BY created_at LIMIT @limit");
        command.Parameters.AddWithValue("limit", limit);
        var pending = new List<PendingEmbedding>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            pending.Add(new PendingEmbedding(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3)));
        }
        return pending;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ScoredId>> SearchVectorAsync(string tenantId, float[] query, MemoryFilter filter, int k, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand();
        var where = Where(command, tenantId, filter, now);
        if (_pgvector)
        {
            command.CommandText = $"""
                SELECT id, 1 - (embedding_vector <=> @query::vector) AS score FROM {_table}
                WHERE {where} AND embedding_vector IS NOT NULL AND vector_dims(embedding_vector) = @dims
                ORDER BY embedding_vector <=> @query::vector, id LIMIT @k
                """;
            command.Parameters.AddWithValue("query", VectorLiteral(query));
            command.Parameters.AddWithValue("dims", query.Length);
            command.Parameters.AddWithValue("k", k);
            var hits = new List<ScoredId>();
            await using var r = await command.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken))
            {
                hits.Add(new ScoredId(r.GetString(0), r.GetDouble(1)));
            }
            return hits;
        }

        command.CommandText = $"SELECT id, embedding FROM {_table} WHERE {where} AND cardinality(embedding) > 0";
        var scored = new List<ScoredId>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            var vector = reader.GetFieldValue<float[]>(1);
            if (vector.Length == query.Length)
            {
                scored.Add(new ScoredId(reader.GetString(0), TensorPrimitives.Dot(query, vector)));
            }
        }
        return scored.OrderByDescending(s => s.Score).ThenBy(s => s.Id, StringComparer.Ordinal).Take(k).ToList();
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ScoredId>> SearchLexicalAsync(string tenantId, string query, MemoryFilter filter, int k, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        // Terms are alphanumeric (safe in tsquery syntax) and OR-ed, as BM25 would: any term may match.
        var terms = TextAnalysis.Terms(query).Distinct(StringComparer.Ordinal).ToList();
        if (terms.Count == 0)
        {
            return [];
        }
        await using var command = _dataSource.CreateCommand();
        var where = Where(command, tenantId, filter, now);
        command.CommandText = $"""
            SELECT id, ts_rank_cd(search, q, 1) AS score
            FROM {_table}, to_tsquery('english', @tsquery) q
            WHERE {where} AND search @@ q
            ORDER BY score DESC, id LIMIT @k
            """;
        command.Parameters.AddWithValue("tsquery", string.Join(" | ", terms));
        command.Parameters.AddWithValue("k", k);
        var hits = new List<ScoredId>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            hits.Add(new ScoredId(reader.GetString(0), reader.GetFloat(1)));
        }
        return hits;
    }

    /// <inheritdoc />
    public async Task TouchAsync(string tenantId, IReadOnlyCollection<string> ids, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand(
            $"UPDATE {_table} SET access_count = access_count + 1, last_accessed_at = GREATEST(last_accessed_at, @now) WHERE tenant_id = @tenant AND id = ANY(@ids)");
        command.Parameters.AddWithValue("tenant", tenantId);
        command.Parameters.AddWithValue("ids", ids.ToArray());
        command.Parameters.AddWithValue("now", now);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task<bool> TryCreatePgvectorAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        try
        {
            await using var command = new NpgsqlCommand("CREATE EXTENSION IF NOT EXISTS vector", connection);
            await command.ExecuteNonQueryAsync(cancellationToken);
            return true;
        }
        catch (PostgresException)
        {
            // Not installed on this server (or no privilege): vectors live in real[] and are scored here.
            return false;
        }
    }

    private static string Where(NpgsqlCommand command, string tenantId, MemoryFilter filter, DateTimeOffset now)
    {
        var sql = new StringBuilder("tenant_id = @tenant AND (expires_at IS NULL OR expires_at > @now)");
        command.Parameters.AddWithValue("tenant", tenantId);
        command.Parameters.AddWithValue("now", now);
        if (filter.ContextId is { } context)
        {
            sql.Append(" AND context_id = @context");
            command.Parameters.AddWithValue("context", context);
        }
        if (filter.TraceId is { } trace)
        {
            sql.Append(" AND trace_id = @trace");
            command.Parameters.AddWithValue("trace", trace);
        }
        if (filter.UserId is { } user)
        {
            sql.Append(" AND user_id = @user");
            command.Parameters.AddWithValue("user", user);
        }
        if (filter.Types is { Count: > 0 } types)
        {
            sql.Append(" AND type = ANY(@types)");
            command.Parameters.AddWithValue("types", types.ToArray());
        }
        if (filter.CreatedAfter is { } after)
        {
            sql.Append(" AND created_at >= @after");
            command.Parameters.AddWithValue("after", after);
        }
        if (filter.CreatedBefore is { } before)
        {
            sql.Append(" AND created_at < @before");
            command.Parameters.AddWithValue("before", before);
        }
        return sql.ToString();
    }

    private static void AddEntryParameters(NpgsqlParameterCollection parameters, MemoryEntry entry, string contentHash)
    {
        parameters.AddWithValue("tenant", entry.TenantId);
        parameters.AddWithValue("id", entry.Id);
        parameters.AddWithValue("user", (object?)entry.UserId ?? DBNull.Value);
        parameters.AddWithValue("context", (object?)entry.ContextId ?? DBNull.Value);
        parameters.AddWithValue("trace", (object?)entry.TraceId ?? DBNull.Value);
        parameters.AddWithValue("type", entry.Type);
        parameters.AddWithValue("content", entry.Content);
        parameters.AddWithValue("metadata", NpgsqlDbType.Jsonb, JsonSerializer.Serialize(entry.Metadata));
        parameters.AddWithValue("tags", entry.Tags.ToArray());
        parameters.AddWithValue("created", entry.CreatedAt);
        parameters.AddWithValue("accessed", entry.LastAccessedAt);
        parameters.AddWithValue("count", entry.AccessCount);
        parameters.AddWithValue("expires", entry.ExpiresAt is { } e ? e : DBNull.Value);
        parameters.AddWithValue("hash", contentHash);
    }

    private static async Task<IReadOnlyList<MemoryEntry>> ReadEntriesAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        var entries = new List<MemoryEntry>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            entries.Add(new MemoryEntry(
                reader.GetString(1),
                reader.GetString(0),
                reader.IsDBNull(2) ? null : reader.GetString(2),
                reader.IsDBNull(3) ? null : reader.GetString(3),
                reader.IsDBNull(4) ? null : reader.GetString(4),
                reader.GetString(5),
                reader.GetString(6),
                JsonSerializer.Deserialize<Dictionary<string, string>>(reader.GetString(7)) ?? [],
                reader.GetFieldValue<string[]>(8),
                reader.GetFieldValue<DateTimeOffset>(9),
                reader.GetFieldValue<DateTimeOffset>(10),
                reader.GetInt64(11),
                reader.IsDBNull(12) ? null : reader.GetFieldValue<DateTimeOffset>(12)));
        }
        return entries;
    }

    private static string VectorLiteral(float[] vector) =>
        "[" + string.Join(',', vector.Select(v => v.ToString("R", CultureInfo.InvariantCulture))) + "]";
}
