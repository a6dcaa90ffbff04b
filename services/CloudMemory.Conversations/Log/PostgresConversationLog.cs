using System.Text.Json;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Contracts;
using CloudMemory.Conversations.Text;
using Npgsql;
using NpgsqlTypes;

namespace CloudMemory.Conversations.Log;

/// <summary>
/// The message log in PostgreSQL. Each append is one statement (an upsert of the conversation's
/// running counts chained to the message insert), so a turn costs one round trip and the counts
/// can never disagree with the rows.
/// </summary>
public sealed class PostgresConversationLog(NpgsqlDataSource dataSource, TimeProvider time, ITokenCounter? tokens = null) : IConversationLog
{
    // Counted once per message, at write time; the totals add the stored counts.
    private ITokenCounter Tokens { get; } = tokens ?? TokenCounters.Create(TokenCounters.O200kBase);

    private const string Columns = "message_id, conversation_id, seq, turn_id, user_id, agent_code, query, answer, is_checkpoint, units, created_at, messages::text, turn_no, after_checkpoint";

    /// <summary>Creates tables and indexes if they do not exist (run at start).</summary>
    public async Task MigrateAsync(CancellationToken cancellationToken = default)
    {
        // One batch is one implicit transaction: the transaction-scoped lock is released at its
        // commit, so a concurrent start never runs its CREATE ... IF NOT EXISTS before these commit.
        await dataSource.ApplyAsync("conversation-log", 1, """
            SELECT pg_advisory_xact_lock(7301001);
            CREATE TABLE IF NOT EXISTS cm_conversations (
                tenant_id text NOT NULL,
                conversation_id text NOT NULL,
                user_id text NOT NULL DEFAULT '',
                turn_count integer NOT NULL DEFAULT 0,
                checkpoint_count integer NOT NULL DEFAULT 0,
                checkpoint_message_id text NOT NULL DEFAULT '',
                covered_seq bigint NOT NULL DEFAULT 0,
                summary text NOT NULL DEFAULT '',
                window_turns integer NOT NULL DEFAULT 0,
                units_since bigint NOT NULL DEFAULT 0,
                messages_since integer NOT NULL DEFAULT 0,
                last_seq bigint NOT NULL DEFAULT 0,
                last_agent_code text NOT NULL DEFAULT '',
                last_answer text NOT NULL DEFAULT '',
                finalized boolean NOT NULL DEFAULT false,
                updated_at timestamptz NOT NULL,
                created_at timestamptz,
                session_version bigint NOT NULL DEFAULT 1,
                session_state jsonb,
                -- The hour of the last activity: what the tenant listing's index holds instead of updated_at,
                -- which every turn changes. An update that leaves the hour as it was stays HOT.
                active_hour timestamptz GENERATED ALWAYS AS (date_bin('1 hour', updated_at, TIMESTAMPTZ '2000-01-01 00:00:00+00')) STORED,
                PRIMARY KEY (tenant_id, conversation_id)) WITH (fillfactor = 50);
            -- The header row is updated on every turn: free space on its page keeps those updates HOT
            -- (no new index entry, old versions pruned in place) instead of bloating table and index.
            DO $$ BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = 'cm_conversations'::regclass AND 'fillfactor=50' = ANY(coalesce(reloptions, '{}'))) THEN
                    ALTER TABLE cm_conversations SET (fillfactor = 50);
                END IF;
            END $$;
            CREATE TABLE IF NOT EXISTS cm_messages (
                tenant_id text NOT NULL,
                conversation_id text NOT NULL,
                seq bigint NOT NULL,
                message_id text NOT NULL,
                turn_id text,
                user_id text NOT NULL,
                agent_code text NOT NULL,
                query text NOT NULL,
                answer text NOT NULL,
                is_checkpoint boolean NOT NULL,
                units bigint NOT NULL,
                created_at timestamptz NOT NULL,
                messages jsonb,
                tool_call_ids text[],
                turn_no integer NOT NULL DEFAULT 0,
                after_checkpoint boolean NOT NULL DEFAULT false,
                PRIMARY KEY (tenant_id, conversation_id, seq));
            -- Columns added after the first release; altered only when missing (an ALTER locks the table).
            -- Tables are locked in one order everywhere (conversations, then messages): no deadlock with appends.
            DO $$ BEGIN
                IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'cm_messages' AND column_name = 'after_checkpoint') THEN
                    ALTER TABLE cm_conversations ADD COLUMN IF NOT EXISTS created_at timestamptz,
                        ADD COLUMN IF NOT EXISTS session_version bigint NOT NULL DEFAULT 1,
                        ADD COLUMN IF NOT EXISTS session_state jsonb;
                    ALTER TABLE cm_messages ADD COLUMN IF NOT EXISTS messages jsonb,
                        ADD COLUMN IF NOT EXISTS tool_call_ids text[],
                        ADD COLUMN IF NOT EXISTS turn_no integer NOT NULL DEFAULT 0,
                        ADD COLUMN IF NOT EXISTS after_checkpoint boolean NOT NULL DEFAULT false;
                END IF;
                IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'cm_conversations' AND column_name = 'active_hour') THEN
                    ALTER TABLE cm_conversations ADD COLUMN active_hour timestamptz
                        GENERATED ALWAYS AS (date_bin('1 hour', updated_at, TIMESTAMPTZ '2000-01-01 00:00:00+00')) STORED;
                END IF;
            END $$;
            -- Indexes are created only when missing: CREATE INDEX IF NOT EXISTS still takes a share lock on
            -- its table, which at every start of another host deadlocked with live turn writes and deletes.
            -- Same lock order as above (conversations, then messages).
            DO $$ BEGIN
                -- A user's conversations (GET /v1/users/{userId}/sessions, erasure). Not on updated_at, which every turn changes.
                IF to_regclass('cm_conversations_user') IS NULL THEN
                    CREATE INDEX cm_conversations_user ON cm_conversations (tenant_id, user_id) WHERE user_id <> '';
                END IF;
                -- A tenant's conversations by last activity (GET /v1/sessions): pages walk it hour by hour.
                -- Not on updated_at: a turn's header update then stays HOT unless the hour changes.
                IF to_regclass('cm_conversations_activity') IS NULL THEN
                    CREATE INDEX cm_conversations_activity ON cm_conversations (tenant_id, active_hour DESC);
                END IF;
                IF to_regclass('cm_messages_turn_id') IS NULL THEN
                    CREATE UNIQUE INDEX cm_messages_turn_id ON cm_messages (tenant_id, conversation_id, turn_id) WHERE turn_id IS NOT NULL;
                END IF;
                IF to_regclass('cm_messages_checkpoint_id') IS NULL THEN
                    CREATE INDEX cm_messages_checkpoint_id ON cm_messages (tenant_id, conversation_id, message_id) WHERE is_checkpoint;
                END IF;
            END $$;
            CREATE TABLE IF NOT EXISTS cm_user_profiles (
                tenant_id text NOT NULL,
                user_id text NOT NULL,
                profile jsonb NOT NULL,
                updated_at timestamptz NOT NULL,
                PRIMARY KEY (tenant_id, user_id));
            """, cancellationToken);
    }

    /// <inheritdoc />
    public async Task<ConversationStats> EnsureConversationAsync(string tenantId, string conversationId, string userId, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            INSERT INTO cm_conversations (tenant_id, conversation_id, user_id, updated_at, created_at) VALUES ($1, $2, $3, $4, $4)
            ON CONFLICT (tenant_id, conversation_id) DO UPDATE SET user_id = CASE WHEN cm_conversations.user_id = '' THEN EXCLUDED.user_id ELSE cm_conversations.user_id END
            RETURNING *
            """);
        command.Parameters.Add(new() { Value = tenantId });
        command.Parameters.Add(new() { Value = conversationId });
        command.Parameters.Add(new() { Value = userId });
        command.Parameters.Add(new() { Value = time.GetUtcNow() });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return ReadStats(reader);
    }

    /// <inheritdoc />
    public async Task<AppendResult> AppendTurnAsync(string tenantId, TurnAppend turn, CancellationToken cancellationToken = default)
    {
        // No look-up first: a repeated turn id fails the statement as a whole (counts included) on the
        // unique index, and the duplicate is answered from there — one round trip for every new turn.
        var now = time.GetUtcNow();
        var units = Tokens.Units(turn.Render());
        var messageId = Guid.NewGuid().ToString("N");
        await using var command = dataSource.CreateCommand("""
            WITH c AS (
                INSERT INTO cm_conversations AS c (tenant_id, conversation_id, user_id, turn_count, units_since, messages_since, last_seq, last_agent_code, last_answer, updated_at, created_at, session_version)
                VALUES ($1, $2, $3, 1, $4, 1, 1, $5, $6, $7, $7, GREATEST(1, $13))
                ON CONFLICT (tenant_id, conversation_id) DO UPDATE SET
                    session_version = GREATEST(c.session_version, EXCLUDED.session_version),
                    user_id = CASE WHEN EXCLUDED.user_id = '' THEN c.user_id ELSE EXCLUDED.user_id END,
                    turn_count = c.turn_count + 1,
                    units_since = c.units_since + EXCLUDED.units_since,
                    messages_since = c.messages_since + 1,
                    last_seq = c.last_seq + 1,
                    last_agent_code = EXCLUDED.last_agent_code,
                    last_answer = EXCLUDED.last_answer,
                    updated_at = EXCLUDED.updated_at
                -- not the summary or the session state: a turn needs neither (AppendResult.Stats)
                RETURNING conversation_id, user_id, turn_count, checkpoint_count, checkpoint_message_id, covered_seq, '' AS summary, window_turns,
                    units_since, messages_since, last_seq, last_agent_code, last_answer, finalized, updated_at, created_at, session_version, NULL::text AS session_state),
            m AS (
                INSERT INTO cm_messages (tenant_id, conversation_id, seq, message_id, turn_id, user_id, agent_code, query, answer, is_checkpoint, units, created_at, messages, tool_call_ids, turn_no, after_checkpoint)
                SELECT $1, $2, c.last_seq, $8, $9, $3, $5, $10, $6, false, $4, $7, $11, $12, c.turn_count, c.checkpoint_count > 0 FROM c
                RETURNING seq)
            SELECT c.*, m.seq AS message_seq FROM c, m
            """);
        var p = command.Parameters;
        p.Add(new() { Value = tenantId });
        p.Add(new() { Value = turn.ConversationId });
        p.Add(new() { Value = turn.UserId });
        p.Add(new() { Value = units });
        p.Add(new() { Value = turn.AgentCode });
        p.Add(new() { Value = turn.Answer });
        p.Add(new() { Value = now });
        p.Add(new() { Value = messageId });
        p.Add(new() { Value = (object?)turn.TurnId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        p.Add(new() { Value = turn.Query });
        var hasMessages = turn.Messages is { Count: > 0 };
        p.Add(new() { Value = hasMessages ? JsonSerializer.Serialize(turn.Messages, ContractsJson.Options) : DBNull.Value, NpgsqlDbType = NpgsqlDbType.Jsonb });
        var toolCalls = turn.ToolCallIds();
        p.Add(new() { Value = toolCalls.Length > 0 ? toolCalls : DBNull.Value, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        p.Add(new() { Value = turn.SessionVersion });
        try
        {
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            await reader.ReadAsync(cancellationToken);
            var stats = ReadStats(reader);
            var seq = reader.GetInt64(reader.GetOrdinal("message_seq"));
            var message = new LogMessage(messageId, turn.ConversationId, seq, turn.TurnId, turn.UserId, turn.AgentCode, turn.Query, turn.Answer,
                IsCheckpoint: false, TokenEstimator.TokensFromUnits(units), now, hasMessages ? [.. turn.Messages!] : null, stats.TurnCount, stats.CheckpointCount > 0);
            return new AppendResult(message, Duplicate: false, stats);
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UniqueViolation && ex.ConstraintName == "cm_messages_turn_id" && turn.TurnId is not null)
        {
            // The turn id is already in the log (a retry): answer as the duplicate it is.
            var existingTurn = await FindByTurnIdAsync(tenantId, turn.ConversationId, turn.TurnId, cancellationToken)
                ?? throw new InvalidOperationException("turn id conflict without a stored turn", ex);
            return new AppendResult(existingTurn, Duplicate: true, (await GetStatsAsync(tenantId, turn.ConversationId, cancellationToken))!);
        }
    }

    /// <inheritdoc />
    public async Task<CheckpointAppendResult?> AppendCheckpointAsync(string tenantId, CheckpointAppend checkpoint, CancellationToken cancellationToken = default)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var stats = await ReadStatsForUpdateAsync(connection, tenantId, checkpoint.ConversationId, cancellationToken);
        if (stats is null)
        {
            return null;
        }
        var existing = await ReadMessagesAsync(connection, $"SELECT {Columns} FROM cm_messages WHERE tenant_id = $1 AND conversation_id = $2 AND is_checkpoint AND message_id = $3",
            [tenantId, checkpoint.ConversationId, checkpoint.MessageId], cancellationToken);
        if (existing.Count > 0)
        {
            return new CheckpointAppendResult(existing[0], Duplicate: true, stats);
        }
        if (!string.Equals(stats.CheckpointMessageId, checkpoint.ExpectedPreviousCheckpointId, StringComparison.Ordinal)
            || checkpoint.CoveredThroughSequence > stats.LastSequence)
        {
            return null;
        }
        var now = time.GetUtcNow();
        var units = Tokens.Units(checkpoint.Content);
        await using var command = new NpgsqlCommand("""
            WITH after AS (
                SELECT coalesce(sum(units), 0) AS units, count(*) AS n FROM cm_messages
                WHERE tenant_id = $1 AND conversation_id = $2 AND seq > $3 AND NOT is_checkpoint),
            c AS (
                UPDATE cm_conversations SET
                    checkpoint_count = checkpoint_count + 1,
                    checkpoint_message_id = $4,
                    covered_seq = $3,
                    summary = $5,
                    window_turns = $6,
                    units_since = $7 + (SELECT units FROM after),
                    messages_since = 1 + (SELECT n FROM after),
                    last_seq = last_seq + 1,
                    finalized = finalized OR $8,
                    updated_at = $9,
                    session_version = GREATEST(session_version, $12)
                WHERE tenant_id = $1 AND conversation_id = $2
                RETURNING *)
            INSERT INTO cm_messages (tenant_id, conversation_id, seq, message_id, turn_id, user_id, agent_code, query, answer, is_checkpoint, units, created_at)
            SELECT $1, $2, c.last_seq, $4, NULL, c.user_id, '', $10, $11, true, $7, $9 FROM c
            """, connection, transaction);
        var p = command.Parameters;
        p.Add(new() { Value = tenantId });
        p.Add(new() { Value = checkpoint.ConversationId });
        p.Add(new() { Value = checkpoint.CoveredThroughSequence });
        p.Add(new() { Value = checkpoint.MessageId });
        p.Add(new() { Value = checkpoint.Summary });
        p.Add(new() { Value = checkpoint.WindowTurns });
        p.Add(new() { Value = units });
        p.Add(new() { Value = checkpoint.Final });
        p.Add(new() { Value = now });
        p.Add(new() { Value = LogMessage.CheckpointQuery });
        p.Add(new() { Value = checkpoint.Content });
        p.Add(new() { Value = checkpoint.SessionVersion });
        await command.ExecuteNonQueryAsync(cancellationToken);
        var after = (await ReadStatsForUpdateAsync(connection, tenantId, checkpoint.ConversationId, cancellationToken))!;
        await transaction.CommitAsync(cancellationToken);
        var message = new LogMessage(checkpoint.MessageId, checkpoint.ConversationId, after.LastSequence, null, after.UserId, "",
            LogMessage.CheckpointQuery, checkpoint.Content, IsCheckpoint: true, TokenEstimator.TokensFromUnits(units), now);
        return new CheckpointAppendResult(message, Duplicate: false, after);
    }

    /// <inheritdoc />
    public async Task<ConversationStats?> GetStatsAsync(string tenantId, string conversationId, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("SELECT * FROM cm_conversations WHERE tenant_id = $1 AND conversation_id = $2");
        command.Parameters.Add(new() { Value = tenantId });
        command.Parameters.Add(new() { Value = conversationId });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? ReadStats(reader) : null;
    }

    /// <inheritdoc />
    public async Task<HistorySegment> ReadSinceCheckpointAsync(string tenantId, string conversationId, CancellationToken cancellationToken = default)
    {
        // One round trip: the counts, then the current checkpoint row and the turns after what it covers.
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var batch = new NpgsqlBatch(connection);
        var statsCommand = new NpgsqlBatchCommand("SELECT * FROM cm_conversations WHERE tenant_id = $1 AND conversation_id = $2");
        var messagesCommand = new NpgsqlBatchCommand($"""
            SELECT {Columns} FROM cm_messages m
            WHERE m.tenant_id = $1 AND m.conversation_id = $2 AND m.is_checkpoint AND m.message_id = (
                SELECT checkpoint_message_id FROM cm_conversations WHERE tenant_id = $1 AND conversation_id = $2)
            UNION ALL
            SELECT * FROM (
                SELECT {Columns} FROM cm_messages m
                WHERE m.tenant_id = $1 AND m.conversation_id = $2 AND NOT m.is_checkpoint AND m.seq > coalesce((
                    SELECT covered_seq FROM cm_conversations WHERE tenant_id = $1 AND conversation_id = $2), 0)
                ORDER BY m.seq) t
            """);
        foreach (var command in new[] { statsCommand, messagesCommand })
        {
            command.Parameters.Add(new() { Value = tenantId });
            command.Parameters.Add(new() { Value = conversationId });
            batch.BatchCommands.Add(command);
        }
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
        var stats = await reader.ReadAsync(cancellationToken) ? ReadStats(reader) : null;
        await reader.NextResultAsync(cancellationToken);
        var messages = new List<LogMessage>(stats?.MessagesSinceCheckpoint ?? 0);
        while (await reader.ReadAsync(cancellationToken))
        {
            messages.Add(ReadMessage(reader));
        }
        return new HistorySegment(stats, messages);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<LogMessage>> ReadLastTurnsAsync(string tenantId, string conversationId, int turns, CancellationToken cancellationToken = default)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var rows = await ReadMessagesAsync(connection, $"""
            SELECT {Columns} FROM cm_messages WHERE tenant_id = $1 AND conversation_id = $2 AND NOT is_checkpoint ORDER BY seq DESC LIMIT $3
            """, [tenantId, conversationId, turns], cancellationToken);
        return rows.Reverse().ToList();
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<LogMessage>> ReadAsync(string tenantId, string conversationId, long afterSequence, int limit, CancellationToken cancellationToken = default)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await ReadMessagesAsync(connection, $"""
            SELECT {Columns} FROM cm_messages WHERE tenant_id = $1 AND conversation_id = $2 AND seq > $3 ORDER BY seq LIMIT $4
            """, [tenantId, conversationId, afterSequence, limit], cancellationToken);
    }

    /// <inheritdoc />
    public async Task SaveUserProfileAsync(string tenantId, UserProfile profile, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            INSERT INTO cm_user_profiles (tenant_id, user_id, profile, updated_at) VALUES ($1, $2, $3, $4)
            ON CONFLICT (tenant_id, user_id) DO UPDATE SET profile = EXCLUDED.profile, updated_at = EXCLUDED.updated_at
            """);
        command.Parameters.Add(new() { Value = tenantId });
        command.Parameters.Add(new() { Value = profile.UserId });
        command.Parameters.Add(new() { Value = JsonSerializer.Serialize(profile, ContractsJson.Options), NpgsqlDbType = NpgsqlDbType.Jsonb });
        command.Parameters.Add(new() { Value = time.GetUtcNow() });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <inheritdoc />
    public async Task<UserProfile?> GetUserProfileAsync(string tenantId, string userId, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("SELECT profile::text FROM cm_user_profiles WHERE tenant_id = $1 AND user_id = $2");
        command.Parameters.Add(new() { Value = tenantId });
        command.Parameters.Add(new() { Value = userId });
        var json = await command.ExecuteScalarAsync(cancellationToken) as string;
        return json is null ? null : JsonSerializer.Deserialize<UserProfile>(json, ContractsJson.Options);
    }

    /// <inheritdoc />
    public async Task<bool> SaveSessionStateAsync(string tenantId, string conversationId, string stateJson, long version, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            UPDATE cm_conversations SET session_state = $3, session_version = GREATEST(session_version, $4)
            WHERE tenant_id = $1 AND conversation_id = $2
            """);
        command.Parameters.Add(new() { Value = tenantId });
        command.Parameters.Add(new() { Value = conversationId });
        command.Parameters.Add(new() { Value = stateJson, NpgsqlDbType = NpgsqlDbType.Jsonb });
        command.Parameters.Add(new() { Value = version });
        return await command.ExecuteNonQueryAsync(cancellationToken) > 0;
    }

    /// <inheritdoc />
    public async Task<IReadOnlySet<string>> FindToolCallsAsync(string tenantId, string conversationId, IReadOnlyCollection<string> toolCallIds, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT DISTINCT id FROM cm_messages, unnest(tool_call_ids) AS id
            WHERE tenant_id = $1 AND conversation_id = $2 AND tool_call_ids && $3 AND id = ANY($3)
            """);
        command.Parameters.Add(new() { Value = tenantId });
        command.Parameters.Add(new() { Value = conversationId });
        command.Parameters.Add(new() { Value = toolCallIds.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        var found = new HashSet<string>(StringComparer.Ordinal);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            found.Add(reader.GetString(0));
        }
        return found;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ConversationStats>> ListConversationsAsync(string tenantId, ConversationFilter filter, ConversationCursor? after, int limit, CancellationToken cancellationToken = default)
    {
        // Served by cm_conversations_activity (tenant, active hour desc): the hour bounds below are index
        // conditions (the cursor's and the filters' hours), the order is the index's, refined within an
        // hour by an incremental sort, so a page reads about `limit` rows of the hours it spans. A user
        // filter is written out (not "$2 IS NULL OR …") so that the planner can take cm_conversations_user.
        var user = filter.UserId is null ? "" : "AND user_id = $2 AND user_id <> ''";
        await using var command = dataSource.CreateCommand($"""
            SELECT * FROM cm_conversations
            WHERE tenant_id = $1 {user}
              AND active_hour <= coalesce(date_bin('1 hour', coalesce($6::timestamptz, $5::timestamptz), TIMESTAMPTZ '2000-01-01 00:00:00+00'), 'infinity')
              AND active_hour >= coalesce(date_bin('1 hour', $4::timestamptz, TIMESTAMPTZ '2000-01-01 00:00:00+00'), '-infinity')
              AND ($3::boolean IS NULL OR (checkpoint_count > 0) = $3)
              AND ($4::timestamptz IS NULL OR updated_at >= $4)
              AND ($5::timestamptz IS NULL OR updated_at < $5)
              AND ($6::timestamptz IS NULL OR updated_at < $6 OR (updated_at = $6 AND conversation_id COLLATE "C" < $7))
            ORDER BY active_hour DESC, updated_at DESC, conversation_id COLLATE "C" DESC
            LIMIT $8
            """);
        var p = command.Parameters;
        p.Add(new() { Value = tenantId });
        p.Add(new() { Value = (object?)filter.UserId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        p.Add(new() { Value = filter.Checkpointed is { } checkpointed ? checkpointed : DBNull.Value, NpgsqlDbType = NpgsqlDbType.Boolean });
        p.Add(new() { Value = filter.ActiveSince is { } since ? since.ToUniversalTime() : DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        p.Add(new() { Value = filter.ActiveBefore is { } before ? before.ToUniversalTime() : DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        p.Add(new() { Value = after is null ? DBNull.Value : after.UpdatedAt.ToUniversalTime(), NpgsqlDbType = NpgsqlDbType.TimestampTz });
        p.Add(new() { Value = after?.ConversationId ?? "", NpgsqlDbType = NpgsqlDbType.Text });
        p.Add(new() { Value = limit });
        var result = new List<ConversationStats>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(ReadStats(reader));
        }
        return result;
    }

    /// <inheritdoc />
    public async Task<ConversationDeletion?> DeleteConversationAsync(string tenantId, string conversationId, CancellationToken cancellationToken = default)
    {
        // One batch is one transaction; the header goes first, as everywhere (conversations, then messages).
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var batch = new NpgsqlBatch(connection);
        var header = new NpgsqlBatchCommand("DELETE FROM cm_conversations WHERE tenant_id = $1 AND conversation_id = $2 RETURNING user_id");
        var messages = new NpgsqlBatchCommand("""
            WITH m AS (DELETE FROM cm_messages WHERE tenant_id = $1 AND conversation_id = $2 RETURNING is_checkpoint)
            SELECT count(*)::int, (count(*) FILTER (WHERE is_checkpoint))::int FROM m
            """);
        foreach (var command in new[] { header, messages })
        {
            command.Parameters.Add(new() { Value = tenantId });
            command.Parameters.Add(new() { Value = conversationId });
            batch.BatchCommands.Add(command);
        }
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
        var userId = await reader.ReadAsync(cancellationToken) ? reader.GetString(0) : null;
        await reader.NextResultAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return userId is null ? null : new ConversationDeletion(userId, reader.GetInt32(0), reader.GetInt32(1));
    }

    /// <inheritdoc />
    public async Task<bool> DeleteUserProfileAsync(string tenantId, string userId, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("DELETE FROM cm_user_profiles WHERE tenant_id = $1 AND user_id = $2");
        command.Parameters.Add(new() { Value = tenantId });
        command.Parameters.Add(new() { Value = userId });
        return await command.ExecuteNonQueryAsync(cancellationToken) > 0;
    }

    private async Task<LogMessage?> FindByTurnIdAsync(string tenantId, string conversationId, string turnId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var rows = await ReadMessagesAsync(connection, $"SELECT {Columns} FROM cm_messages WHERE tenant_id = $1 AND conversation_id = $2 AND turn_id = $3",
            [tenantId, conversationId, turnId], cancellationToken);
        return rows.Count > 0 ? rows[0] : null;
    }

    private static async Task<ConversationStats?> ReadStatsForUpdateAsync(NpgsqlConnection connection, string tenantId, string conversationId, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("SELECT * FROM cm_conversations WHERE tenant_id = $1 AND conversation_id = $2 FOR UPDATE", connection);
        command.Parameters.Add(new() { Value = tenantId });
        command.Parameters.Add(new() { Value = conversationId });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? ReadStats(reader) : null;
    }

    private static async Task<IReadOnlyList<LogMessage>> ReadMessagesAsync(NpgsqlConnection connection, string sql, object[] parameters, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var value in parameters)
        {
            command.Parameters.Add(new() { Value = value });
        }
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var result = new List<LogMessage>();
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(ReadMessage(reader));
        }
        return result;
    }

    private static LogMessage ReadMessage(NpgsqlDataReader reader) => new(
        reader.GetString(0), reader.GetString(1), reader.GetInt64(2), reader.IsDBNull(3) ? null : reader.GetString(3),
        reader.GetString(4), reader.GetString(5), reader.GetString(6), reader.GetString(7), reader.GetBoolean(8),
        TokenEstimator.TokensFromUnits(reader.GetInt64(9)), reader.GetFieldValue<DateTimeOffset>(10),
        reader.IsDBNull(11) ? null : JsonSerializer.Deserialize<List<TurnMessage>>(reader.GetString(11), ContractsJson.Options),
        reader.GetInt32(12), reader.GetBoolean(13));

    private static ConversationStats ReadStats(NpgsqlDataReader r) => new(
        r.GetString(r.GetOrdinal("conversation_id")),
        r.GetString(r.GetOrdinal("user_id")),
        r.GetInt32(r.GetOrdinal("turn_count")),
        r.GetInt32(r.GetOrdinal("checkpoint_count")),
        r.GetString(r.GetOrdinal("checkpoint_message_id")),
        r.GetInt64(r.GetOrdinal("covered_seq")),
        r.GetString(r.GetOrdinal("summary")),
        r.GetInt32(r.GetOrdinal("window_turns")),
        r.GetInt64(r.GetOrdinal("units_since")),
        r.GetInt32(r.GetOrdinal("messages_since")),
        r.GetInt64(r.GetOrdinal("last_seq")),
        r.GetString(r.GetOrdinal("last_agent_code")),
        r.GetString(r.GetOrdinal("last_answer")),
        r.GetBoolean(r.GetOrdinal("finalized")),
        r.GetFieldValue<DateTimeOffset>(r.GetOrdinal("updated_at")),
        r.IsDBNull(r.GetOrdinal("created_at")) ? r.GetFieldValue<DateTimeOffset>(r.GetOrdinal("updated_at")) : r.GetFieldValue<DateTimeOffset>(r.GetOrdinal("created_at")),
        r.GetInt64(r.GetOrdinal("session_version")),
        r.IsDBNull(r.GetOrdinal("session_state")) ? null : r.GetString(r.GetOrdinal("session_state")));
}
