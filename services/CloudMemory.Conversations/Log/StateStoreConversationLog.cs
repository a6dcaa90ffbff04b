using System.Text.Json;
using CloudMemory.BuildingBlocks.State;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Conversations.Text;

namespace CloudMemory.Conversations.Log;

/// <summary>
/// The message log over the state building block (Dapr mode without PostgreSQL), so that separate
/// apps (session writes, context reads) share it through the default components. Per conversation:
/// a header with the running counts (ETag-checked) and one key per message, by sequence; an append
/// writes the header, the message and its look-up key in one transaction, so the counts never
/// disagree with the messages. Reads take the header, then bulk-get the known sequence range.
/// Concurrent writers to one conversation are serialized by the header's ETag and retried.
/// </summary>
/// <remarks>
/// Keys: <c>cmlog:{tenant}:{conversation}</c> (header), <c>…:m:{seq}</c> (message),
/// <c>…:t:{turnId}</c> and <c>…:c:{messageId}</c> (sequence of a turn id / checkpoint id),
/// <c>cmprofile:{tenant}:{user}</c>, <c>cmuser:{tenant}:{user}</c> (the user's conversation ids, for listing and erasure),
/// <c>cmtenant:{tenant}</c> (the tenant's conversation ids, for the tenant-wide listing; written in the transaction that creates or deletes a header). Each id is percent-encoded, so no id can forge another
/// tenant's key or contain Dapr's <c>||</c> separator. The apps that share the log must see the same
/// keys: the state component needs <c>keyPrefix: name</c> (or none), not the default per-app prefix.
/// </remarks>
public sealed class StateStoreConversationLog(IStateStore store, TimeProvider time, ITokenCounter? tokens = null) : IConversationLog
{
    // Counted once per message, at write time; the totals add the stored counts.
    private ITokenCounter Tokens { get; } = tokens ?? TokenCounters.Create(TokenCounters.O200kBase);

    private const int MaxAttempts = 500;

    /// <inheritdoc />
    public async Task<ConversationStats> EnsureConversationAsync(string tenantId, string conversationId, string userId, CancellationToken cancellationToken = default)
    {
        var key = HeaderKey(tenantId, conversationId);
        for (var attempt = 1; ; attempt++)
        {
            if (await ReadHeaderAsync(key, cancellationToken) is { } existing)
            {
                return existing.Header.Stats;
            }
            var header = NewHeader(conversationId, userId);
            List<StateOperation> operations = [HeaderWrite(key, header, null), await TenantIndexAddAsync(tenantId, conversationId, cancellationToken)];
            if (userId.Length > 0)
            {
                operations.Add(await UserIndexAddAsync(tenantId, userId, conversationId, cancellationToken));
            }
            try
            {
                await store.ExecuteTransactionAsync(operations, cancellationToken);
                return header.Stats;
            }
            catch (StateConcurrencyException) when (attempt < MaxAttempts)
            {
                // someone else registered it first (or changed the user's index): read again
            }
        }
    }

    /// <inheritdoc />
    public async Task<AppendResult> AppendTurnAsync(string tenantId, TurnAppend turn, CancellationToken cancellationToken = default)
    {
        var headerKey = HeaderKey(tenantId, turn.ConversationId);
        var turnKey = turn.TurnId is null ? null : $"{headerKey}:t:{Encode(turn.TurnId)}";
        var units = Tokens.Units(turn.Render());
        for (var attempt = 1; ; attempt++)
        {
            var read = await store.GetBulkAsync(turnKey is null ? [headerKey] : [headerKey, turnKey], cancellationToken);
            var current = read[0].Value is { } h ? Deserialize<LogHeader>(h) : null;
            if (turnKey is not null && read[1].Value is { } seen && current is not null)
            {
                var existing = await ReadMessageAsync(headerKey, Deserialize<long>(seen), cancellationToken);
                return new AppendResult(existing.Message, Duplicate: true, current.Stats);
            }
            var header = current ?? NewHeader(turn.ConversationId, turn.UserId);
            var stats = header.Stats;
            var now = time.GetUtcNow();
            var message = new LogMessage(Guid.NewGuid().ToString("N"), turn.ConversationId, stats.LastSequence + 1, turn.TurnId,
                turn.UserId, turn.AgentCode, turn.Query, turn.Answer, IsCheckpoint: false, TokenEstimator.TokensFromUnits(units), now,
                turn.Messages is { Count: > 0 } ? [.. turn.Messages] : null, stats.TurnCount + 1, stats.CheckpointCount > 0);
            var next = header with
            {
                Stats = stats with
                {
                    UserId = string.IsNullOrEmpty(turn.UserId) ? stats.UserId : turn.UserId,
                    TurnCount = stats.TurnCount + 1,
                    UnitsSinceCheckpoint = stats.UnitsSinceCheckpoint + units,
                    MessagesSinceCheckpoint = stats.MessagesSinceCheckpoint + 1,
                    LastSequence = message.Sequence,
                    LastAgentCode = turn.AgentCode,
                    LastAnswer = turn.Answer,
                    UpdatedAt = now,
                    SessionVersion = Math.Max(stats.SessionVersion, turn.SessionVersion),
                },
            };
            List<StateOperation> operations =
            [
                HeaderWrite(headerKey, next, read[0].Value is null ? null : read[0].ETag),
                StateOperation.Upsert(MessageKey(headerKey, message.Sequence), Serialize(new StoredMessage(message, units))),
            ];
            if (turnKey is not null)
            {
                operations.Add(StateOperation.Upsert(turnKey, Serialize(message.Sequence)));
            }
            if (current is null)
            {
                // A new conversation: the tenant's listing must find it.
                operations.Add(await TenantIndexAddAsync(tenantId, turn.ConversationId, cancellationToken));
            }
            if (next.Stats.UserId.Length > 0 && (current is null || next.Stats.UserId != stats.UserId))
            {
                // A new conversation, or one whose user was set: the user's listing must find it.
                operations.Add(await UserIndexAddAsync(tenantId, next.Stats.UserId, turn.ConversationId, cancellationToken));
            }
            if (await TryCommitAsync(operations, attempt, cancellationToken))
            {
                return new AppendResult(message, Duplicate: false, next.Stats);
            }
        }
    }

    /// <inheritdoc />
    public async Task<CheckpointAppendResult?> AppendCheckpointAsync(string tenantId, CheckpointAppend checkpoint, CancellationToken cancellationToken = default)
    {
        var headerKey = HeaderKey(tenantId, checkpoint.ConversationId);
        var checkpointKey = $"{headerKey}:c:{Encode(checkpoint.MessageId)}";
        var units = Tokens.Units(checkpoint.Content);
        for (var attempt = 1; ; attempt++)
        {
            var read = await store.GetBulkAsync([headerKey, checkpointKey], cancellationToken);
            if (read[0].Value is not { } h)
            {
                return null;
            }
            var header = Deserialize<LogHeader>(h);
            var stats = header.Stats;
            if (read[1].Value is { } seen)
            {
                var existing = await ReadMessageAsync(headerKey, Deserialize<long>(seen), cancellationToken);
                return new CheckpointAppendResult(existing.Message, Duplicate: true, stats);
            }
            if (!string.Equals(stats.CheckpointMessageId, checkpoint.ExpectedPreviousCheckpointId, StringComparison.Ordinal)
                || checkpoint.CoveredThroughSequence > stats.LastSequence)
            {
                return null;
            }
            // The turns the summary does not cover stay after it: recount them from their stored units.
            var after = (await ReadRangeAsync(headerKey, checkpoint.CoveredThroughSequence + 1, stats.LastSequence, cancellationToken))
                .Where(m => !m.Message.IsCheckpoint).ToList();
            var now = time.GetUtcNow();
            var message = new LogMessage(checkpoint.MessageId, checkpoint.ConversationId, stats.LastSequence + 1, null, stats.UserId, "",
                LogMessage.CheckpointQuery, checkpoint.Content, IsCheckpoint: true, TokenEstimator.TokensFromUnits(units), now);
            var next = new LogHeader(stats with
            {
                CheckpointCount = stats.CheckpointCount + 1,
                CheckpointMessageId = message.MessageId,
                CoveredThroughSequence = checkpoint.CoveredThroughSequence,
                Summary = checkpoint.Summary,
                WindowTurns = checkpoint.WindowTurns,
                UnitsSinceCheckpoint = units + after.Sum(m => m.Units),
                MessagesSinceCheckpoint = 1 + after.Count,
                LastSequence = message.Sequence,
                Finalized = stats.Finalized || checkpoint.Final,
                UpdatedAt = now,
                SessionVersion = Math.Max(stats.SessionVersion, checkpoint.SessionVersion),
            }, message.Sequence);
            List<StateOperation> operations =
            [
                HeaderWrite(headerKey, next, read[0].ETag),
                StateOperation.Upsert(MessageKey(headerKey, message.Sequence), Serialize(new StoredMessage(message, units))),
                StateOperation.Upsert(checkpointKey, Serialize(message.Sequence)),
            ];
            if (await TryCommitAsync(operations, attempt, cancellationToken))
            {
                return new CheckpointAppendResult(message, Duplicate: false, next.Stats);
            }
        }
    }

    /// <inheritdoc />
    public async Task<ConversationStats?> GetStatsAsync(string tenantId, string conversationId, CancellationToken cancellationToken = default) =>
        (await ReadHeaderAsync(HeaderKey(tenantId, conversationId), cancellationToken))?.Header.Stats;

    /// <inheritdoc />
    public async Task<HistorySegment> ReadSinceCheckpointAsync(string tenantId, string conversationId, CancellationToken cancellationToken = default)
    {
        var headerKey = HeaderKey(tenantId, conversationId);
        if (await ReadHeaderAsync(headerKey, cancellationToken) is not { } read)
        {
            return new HistorySegment(null, []);
        }
        var (header, _) = read;
        var stats = header.Stats;
        var keys = new List<string>();
        if (stats.CheckpointMessageId.Length > 0)
        {
            keys.Add(MessageKey(headerKey, header.CheckpointSequence));
        }
        for (var seq = stats.CoveredThroughSequence + 1; seq <= stats.LastSequence; seq++)
        {
            if (seq != header.CheckpointSequence)
            {
                keys.Add(MessageKey(headerKey, seq));
            }
        }
        // Messages never change once written, and the header was read first: this is a consistent snapshot.
        var messages = (await ReadKeysAsync(keys, cancellationToken))
            .Where(m => m.Message.Sequence == header.CheckpointSequence || !m.Message.IsCheckpoint)
            .Select(m => m.Message)
            .ToList();
        return new HistorySegment(stats, messages);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<LogMessage>> ReadLastTurnsAsync(string tenantId, string conversationId, int turns, CancellationToken cancellationToken = default)
    {
        var headerKey = HeaderKey(tenantId, conversationId);
        if (turns <= 0 || await ReadHeaderAsync(headerKey, cancellationToken) is not { } read)
        {
            return [];
        }
        var result = new List<LogMessage>(turns);
        var upper = read.Header.Stats.LastSequence;
        while (upper > 0 && result.Count < turns)
        {
            // Checkpoints are interleaved with the turns: read back in windows until enough turns are found.
            var lower = Math.Max(1, upper - (turns - result.Count) - 1);
            var window = await ReadRangeAsync(headerKey, lower, upper, cancellationToken);
            result.InsertRange(0, window.Where(m => !m.Message.IsCheckpoint).Select(m => m.Message));
            upper = lower - 1;
        }
        return result.Count > turns ? result[^turns..] : result;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<LogMessage>> ReadAsync(string tenantId, string conversationId, long afterSequence, int limit, CancellationToken cancellationToken = default)
    {
        var headerKey = HeaderKey(tenantId, conversationId);
        if (limit <= 0 || await ReadHeaderAsync(headerKey, cancellationToken) is not { } read)
        {
            return [];
        }
        var from = Math.Max(0, afterSequence) + 1;
        var to = Math.Min(read.Header.Stats.LastSequence, from + limit - 1);
        return (await ReadRangeAsync(headerKey, from, to, cancellationToken)).Select(m => m.Message).ToList();
    }

    /// <inheritdoc />
    public Task SaveUserProfileAsync(string tenantId, UserProfile profile, CancellationToken cancellationToken = default) =>
        store.SaveAsync(ProfileKey(tenantId, profile.UserId), Serialize(profile), cancellationToken: cancellationToken);

    /// <inheritdoc />
    public async Task<UserProfile?> GetUserProfileAsync(string tenantId, string userId, CancellationToken cancellationToken = default) =>
        await store.GetAsync(ProfileKey(tenantId, userId), cancellationToken: cancellationToken) is { } entry ? Deserialize<UserProfile>(entry.Value) : null;

    // A conflict means another writer appended first: re-read and try again, after a short random pause
    // so that many writers to one conversation do not keep colliding in lockstep.
    private async Task<bool> TryCommitAsync(IReadOnlyList<StateOperation> operations, int attempt, CancellationToken cancellationToken)
    {
        try
        {
            await store.ExecuteTransactionAsync(operations, cancellationToken);
            return true;
        }
        catch (StateConcurrencyException) when (attempt < MaxAttempts)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(0, Math.Min(50, 1 + attempt * 2))), time, cancellationToken);
            return false;
        }
    }

    // A new conversation's header is created with first-write: if two writers race, one transaction fails.
    private static StateOperation HeaderWrite(string key, LogHeader header, string? etag) =>
        StateOperation.Upsert(key, Serialize(header), etag, etag is null ? new StateWriteOptions(StateConcurrency.FirstWrite) : null);

    private async Task<(LogHeader Header, string ETag)?> ReadHeaderAsync(string key, CancellationToken cancellationToken) =>
        await store.GetAsync(key, cancellationToken: cancellationToken) is { } entry ? (Deserialize<LogHeader>(entry.Value), entry.ETag) : null;

    private async Task<StoredMessage> ReadMessageAsync(string headerKey, long sequence, CancellationToken cancellationToken) =>
        (await ReadKeysAsync([MessageKey(headerKey, sequence)], cancellationToken)).Single();

    private Task<List<StoredMessage>> ReadRangeAsync(string headerKey, long from, long to, CancellationToken cancellationToken)
    {
        var keys = new List<string>();
        for (var seq = from; seq <= to; seq++)
        {
            keys.Add(MessageKey(headerKey, seq));
        }
        return ReadKeysAsync(keys, cancellationToken);
    }

    private async Task<List<StoredMessage>> ReadKeysAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken)
    {
        if (keys.Count == 0)
        {
            return [];
        }
        var entries = await store.GetBulkAsync(keys, cancellationToken);
        var result = new List<StoredMessage>(entries.Count);
        foreach (var entry in entries)
        {
            // Every key below the header's LastSequence was written in the header's transaction.
            result.Add(entry.Value is { } value
                ? Deserialize<StoredMessage>(value)
                : throw new InvalidDataException($"state store '{store.StoreName}' has no '{entry.Key}' although the log header counts it{(entry.Error is null ? "" : ": " + entry.Error)}"));
        }
        return result;
    }

    /// <inheritdoc />
    public async Task<bool> SaveSessionStateAsync(string tenantId, string conversationId, string stateJson, long version, CancellationToken cancellationToken = default)
    {
        var headerKey = HeaderKey(tenantId, conversationId);
        for (var attempt = 1; ; attempt++)
        {
            if (await ReadHeaderAsync(headerKey, cancellationToken) is not { } current)
            {
                return false;
            }
            var stats = current.Header.Stats;
            var next = current.Header with { Stats = stats with { SessionState = stateJson, SessionVersion = Math.Max(stats.SessionVersion, version) } };
            if (await TryCommitAsync([HeaderWrite(headerKey, next, current.ETag)], attempt, cancellationToken))
            {
                return true;
            }
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlySet<string>> FindToolCallsAsync(string tenantId, string conversationId, IReadOnlyCollection<string> toolCallIds, CancellationToken cancellationToken = default)
    {
        var found = new HashSet<string>(StringComparer.Ordinal);
        var headerKey = HeaderKey(tenantId, conversationId);
        if (toolCallIds.Count == 0 || await ReadHeaderAsync(headerKey, cancellationToken) is not { } current)
        {
            return found;
        }
        foreach (var stored in await ReadRangeAsync(headerKey, 1, current.Header.Stats.LastSequence, cancellationToken))
        {
            foreach (var call in stored.Message.Messages?.SelectMany(m => m.ToolCalls ?? []) ?? [])
            {
                if (toolCallIds.Contains(call.Id))
                {
                    found.Add(call.Id);
                }
            }
        }
        return found;
    }

    /// <inheritdoc />
    public async Task<ConversationDeletion?> DeleteConversationAsync(string tenantId, string conversationId, CancellationToken cancellationToken = default)
    {
        var headerKey = HeaderKey(tenantId, conversationId);
        for (var attempt = 1; ; attempt++)
        {
            if (await ReadHeaderAsync(headerKey, cancellationToken) is not { } current)
            {
                return null;
            }
            var stats = current.Header.Stats;
            var messages = await ReadRangeAsync(headerKey, 1, stats.LastSequence, cancellationToken);
            // The header is removed only if no append came in meanwhile (its ETag); everything else goes with it.
            List<StateOperation> operations = [StateOperation.Delete(headerKey, current.ETag)];
            foreach (var stored in messages)
            {
                operations.Add(StateOperation.Delete(MessageKey(headerKey, stored.Message.Sequence)));
                if (stored.Message.TurnId is { } turnId)
                {
                    operations.Add(StateOperation.Delete($"{headerKey}:t:{Encode(turnId)}"));
                }
                if (stored.Message.IsCheckpoint)
                {
                    operations.Add(StateOperation.Delete($"{headerKey}:c:{Encode(stored.Message.MessageId)}"));
                }
            }
            if (stats.UserId.Length > 0 && await IndexRemoveAsync(UserIndexKey(tenantId, stats.UserId), conversationId, cancellationToken) is { } userIndex)
            {
                operations.Add(userIndex);
            }
            if (await IndexRemoveAsync(TenantIndexKey(tenantId), conversationId, cancellationToken) is { } tenantIndex)
            {
                operations.Add(tenantIndex);
            }
            if (await TryCommitAsync(operations, attempt, cancellationToken))
            {
                return new ConversationDeletion(stats.UserId, messages.Count, messages.Count(m => m.Message.IsCheckpoint));
            }
        }
    }

    /// <inheritdoc />
    public async Task<bool> DeleteUserProfileAsync(string tenantId, string userId, CancellationToken cancellationToken = default)
    {
        var key = ProfileKey(tenantId, userId);
        if (await store.GetAsync(key, cancellationToken: cancellationToken) is null)
        {
            return false;
        }
        await store.DeleteAsync(key, cancellationToken: cancellationToken);
        return true;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ConversationStats>> ListConversationsAsync(string tenantId, ConversationFilter filter, ConversationCursor? after, int limit, CancellationToken cancellationToken = default)
    {
        var indexKey = filter.UserId is { } user ? UserIndexKey(tenantId, user) : TenantIndexKey(tenantId);
        if (limit <= 0 || await store.GetAsync(indexKey, cancellationToken: cancellationToken) is not { } index)
        {
            return [];
        }
        // The index names every conversation of the tenant (or user); the headers hold what is filtered and ordered on.
        var ids = Deserialize<List<string>>(index.Value);
        var result = new List<ConversationStats>();
        foreach (var chunk in ids.Chunk(ListReadBatch))
        {
            var headers = await store.GetBulkAsync(chunk.Select(id => HeaderKey(tenantId, id)).ToList(), cancellationToken);
            result.AddRange(headers.Where(h => h.Value is not null)
                .Select(h => Deserialize<LogHeader>(h.Value!.Value).Stats)
                .Where(s => filter.Matches(s) && (after is null || after.Precedes(s))));
        }
        return result.Order(Comparer<ConversationStats>.Create(ConversationCursor.Compare)).Take(limit).ToList();
    }

    // Headers read per bulk request when listing.
    private const int ListReadBatch = 200;

    // The write that adds a conversation to the tenant's index, in the transaction that creates its header.
    private Task<StateOperation> TenantIndexAddAsync(string tenantId, string conversationId, CancellationToken cancellationToken) =>
        IndexAddAsync(TenantIndexKey(tenantId), conversationId, cancellationToken);

    // The write that removes a conversation from an index (null when the index does not name it).
    private async Task<StateOperation?> IndexRemoveAsync(string key, string conversationId, CancellationToken cancellationToken)
    {
        if (await store.GetAsync(key, cancellationToken: cancellationToken) is not { } index)
        {
            return null;
        }
        var ids = Deserialize<List<string>>(index.Value);
        if (!ids.Remove(conversationId))
        {
            return null;
        }
        return ids.Count == 0 ? StateOperation.Delete(index.Key, index.ETag) : StateOperation.Upsert(index.Key, Serialize(ids), index.ETag);
    }

    // The write that adds a conversation to its user's index (ETag-checked, so concurrent additions retry).
    private Task<StateOperation> UserIndexAddAsync(string tenantId, string userId, string conversationId, CancellationToken cancellationToken) =>
        IndexAddAsync(UserIndexKey(tenantId, userId), conversationId, cancellationToken);

    private async Task<StateOperation> IndexAddAsync(string key, string conversationId, CancellationToken cancellationToken)
    {
        var entry = await store.GetAsync(key, cancellationToken: cancellationToken);
        var ids = entry is null ? [] : Deserialize<List<string>>(entry.Value);
        if (!ids.Contains(conversationId))
        {
            ids.Add(conversationId);
        }
        return StateOperation.Upsert(key, Serialize(ids), entry?.ETag, entry is null ? new StateWriteOptions(StateConcurrency.FirstWrite) : null);
    }

    private static string UserIndexKey(string tenantId, string userId) => $"cmuser:{Encode(tenantId)}:{Encode(userId)}";

    private static string TenantIndexKey(string tenantId) => $"cmtenant:{Encode(tenantId)}";

    private LogHeader NewHeader(string conversationId, string userId) =>
        NewHeader(conversationId, userId, time.GetUtcNow());

    private static LogHeader NewHeader(string conversationId, string userId, DateTimeOffset now) =>
        new(new ConversationStats(conversationId, userId, 0, 0, "", 0, "", 0, 0, 0, 0, "", "", false, now, now, SessionVersion: 1), 0);

    private static string HeaderKey(string tenantId, string conversationId) => $"cmlog:{Encode(tenantId)}:{Encode(conversationId)}";

    private static string MessageKey(string headerKey, long sequence) => $"{headerKey}:m:{sequence}";

    private static string ProfileKey(string tenantId, string userId) => $"cmprofile:{Encode(tenantId)}:{Encode(userId)}";

    private static string Encode(string id) => Uri.EscapeDataString(id);

    private static byte[] Serialize<T>(T value) => JsonSerializer.SerializeToUtf8Bytes(value, ContractsJson.Options);

    private static T Deserialize<T>(ReadOnlyMemory<byte> value) =>
        JsonSerializer.Deserialize<T>(value.Span, ContractsJson.Options) ?? throw new InvalidDataException($"a log record deserialized to null ({typeof(T).Name})");

    /// <summary>A conversation's running counts and where its current checkpoint message is.</summary>
    private sealed record LogHeader(ConversationStats Stats, long CheckpointSequence);

    /// <summary>A message and its token units (counted once, at write time).</summary>
    private sealed record StoredMessage(LogMessage Message, long Units);
}
