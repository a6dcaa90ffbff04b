using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Conversations.Text;

namespace CloudMemory.Conversations.Log;

/// <summary>
/// The message log in process memory (embedded mode without a database), bounded by
/// <paramref name="maxBytes"/> (estimated: UTF-16 text plus <see cref="MessageOverheadBytes"/> per
/// message); a write beyond it is refused with 507 <c>store-full</c>, never half-applied.
/// </summary>
public sealed class InMemoryConversationLog(TimeProvider time, long maxBytes = long.MaxValue, ITokenCounter? tokens = null) : IConversationLog
{
    // Counted once per message, at write time; the totals add the stored counts.
    private ITokenCounter Tokens { get; } = tokens ?? TokenCounters.Create(TokenCounters.O200kBase);

    /// <summary>Estimated fixed cost of one stored message (record, ids, list and index slots).</summary>
    public const int MessageOverheadBytes = 400;

    private readonly Dictionary<(string Tenant, string Conversation), Conversation> _conversations = [];
    private long _bytes;
    private readonly Dictionary<(string Tenant, string User), UserProfile> _profiles = [];
    private readonly Dictionary<(string Tenant, string User), HashSet<string>> _byUser = [];
    private readonly Dictionary<string, HashSet<string>> _byTenant = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    /// <inheritdoc />
    public Task<ConversationStats> EnsureConversationAsync(string tenantId, string conversationId, string userId, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return Task.FromResult(GetOrCreate(tenantId, conversationId, userId).Stats);
        }
    }

    /// <inheritdoc />
    public Task<AppendResult> AppendTurnAsync(string tenantId, TurnAppend turn, CancellationToken cancellationToken = default)
    {
        // Counted before taking the log's lock: tokenizing is the costly part of an append, and
        // under the lock it would serialize every conversation's writers behind it.
        var rendered = turn.Render();
        var units = Tokens.Units(rendered);
        lock (_gate)
        {
            var conversation = GetOrCreate(tenantId, turn.ConversationId, turn.UserId);
            if (turn.TurnId is not null && conversation.ByTurnId.TryGetValue(turn.TurnId, out var existing))
            {
                return Task.FromResult(new AppendResult(existing, Duplicate: true, conversation.Stats));
            }
            conversation.Bytes += Reserve(rendered.Length);
            var stats = conversation.Stats;
            var message = new LogMessage(Guid.NewGuid().ToString("N"), turn.ConversationId, stats.LastSequence + 1, turn.TurnId,
                turn.UserId, turn.AgentCode, turn.Query, turn.Answer, IsCheckpoint: false, TokenEstimator.TokensFromUnits(units), time.GetUtcNow(),
                turn.Messages is { Count: > 0 } ? [.. turn.Messages] : null, stats.TurnCount + 1, stats.CheckpointCount > 0);
            conversation.Add(message);
            if (turn.TurnId is not null)
            {
                conversation.ByTurnId[turn.TurnId] = message;
            }
            if (!string.IsNullOrEmpty(turn.UserId) && turn.UserId != stats.UserId)
            {
                IndexUser(tenantId, turn.ConversationId, stats.UserId, turn.UserId);
            }
            conversation.Stats = stats with
            {
                UserId = string.IsNullOrEmpty(turn.UserId) ? stats.UserId : turn.UserId,
                TurnCount = stats.TurnCount + 1,
                UnitsSinceCheckpoint = stats.UnitsSinceCheckpoint + units,
                MessagesSinceCheckpoint = stats.MessagesSinceCheckpoint + 1,
                LastSequence = message.Sequence,
                LastAgentCode = turn.AgentCode,
                LastAnswer = turn.Answer,
                UpdatedAt = message.CreatedAt,
                SessionVersion = Math.Max(stats.SessionVersion, turn.SessionVersion),
            };
            return Task.FromResult(new AppendResult(message, Duplicate: false, conversation.Stats));
        }
    }

    /// <inheritdoc />
    public Task<CheckpointAppendResult?> AppendCheckpointAsync(string tenantId, CheckpointAppend checkpoint, CancellationToken cancellationToken = default)
    {
        var units = Tokens.Units(checkpoint.Content);
        lock (_gate)
        {
            if (!_conversations.TryGetValue((tenantId, checkpoint.ConversationId), out var conversation))
            {
                return Task.FromResult<CheckpointAppendResult?>(null);
            }
            if (conversation.ByMessageId.TryGetValue(checkpoint.MessageId, out var existing))
            {
                return Task.FromResult<CheckpointAppendResult?>(new CheckpointAppendResult(conversation.Messages[existing], Duplicate: true, conversation.Stats));
            }
            var stats = conversation.Stats;
            if (!string.Equals(stats.CheckpointMessageId, checkpoint.ExpectedPreviousCheckpointId, StringComparison.Ordinal)
                || checkpoint.CoveredThroughSequence > stats.LastSequence)
            {
                return Task.FromResult<CheckpointAppendResult?>(null);
            }
            conversation.Bytes += Reserve(checkpoint.Content.Length + checkpoint.Summary.Length);
            var message = new LogMessage(checkpoint.MessageId, checkpoint.ConversationId, stats.LastSequence + 1, null, stats.UserId, "",
                LogMessage.CheckpointQuery, checkpoint.Content, IsCheckpoint: true, TokenEstimator.TokensFromUnits(units), time.GetUtcNow());
            conversation.Add(message);
            var after = conversation.After(checkpoint.CoveredThroughSequence).Where(m => !m.IsCheckpoint).ToList();
            conversation.Stats = stats with
            {
                CheckpointCount = stats.CheckpointCount + 1,
                CheckpointMessageId = message.MessageId,
                CoveredThroughSequence = checkpoint.CoveredThroughSequence,
                Summary = checkpoint.Summary,
                WindowTurns = checkpoint.WindowTurns,
                UnitsSinceCheckpoint = units + after.Sum(m => Tokens.Units(ConversationText.Render(m))),
                MessagesSinceCheckpoint = 1 + after.Count,
                LastSequence = message.Sequence,
                Finalized = stats.Finalized || checkpoint.Final,
                UpdatedAt = message.CreatedAt,
                SessionVersion = Math.Max(stats.SessionVersion, checkpoint.SessionVersion),
            };
            return Task.FromResult<CheckpointAppendResult?>(new CheckpointAppendResult(message, Duplicate: false, conversation.Stats));
        }
    }

    /// <inheritdoc />
    public Task<ConversationStats?> GetStatsAsync(string tenantId, string conversationId, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return Task.FromResult(_conversations.TryGetValue((tenantId, conversationId), out var c) ? c.Stats : null);
        }
    }

    /// <inheritdoc />
    public Task<HistorySegment> ReadSinceCheckpointAsync(string tenantId, string conversationId, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (!_conversations.TryGetValue((tenantId, conversationId), out var c))
            {
                return Task.FromResult(new HistorySegment(null, []));
            }
            var stats = c.Stats;
            if (c.Segment is { } unchanged && ReferenceEquals(unchanged.Stats, stats))
            {
                return Task.FromResult(unchanged); // every change replaces Stats: nothing happened since
            }
            var result = new List<LogMessage>(stats.MessagesSinceCheckpoint);
            if (stats.CheckpointMessageId.Length > 0)
            {
                result.Add(c.Messages[c.ByMessageId[stats.CheckpointMessageId]]);
            }
            // Messages are in sequence order: walk back to the first turn after the covered range.
            var start = c.Messages.Count;
            while (start > 0 && c.Messages[start - 1].Sequence > stats.CoveredThroughSequence)
            {
                start--;
            }
            for (var i = start; i < c.Messages.Count; i++)
            {
                if (!c.Messages[i].IsCheckpoint)
                {
                    result.Add(c.Messages[i]);
                }
            }
            c.Segment = new HistorySegment(stats, result);
            return Task.FromResult(c.Segment);
        }
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<LogMessage>> ReadLastTurnsAsync(string tenantId, string conversationId, int turns, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (!_conversations.TryGetValue((tenantId, conversationId), out var c))
            {
                return Task.FromResult<IReadOnlyList<LogMessage>>([]);
            }
            var result = new List<LogMessage>(turns);
            for (var i = c.Messages.Count - 1; i >= 0 && result.Count < turns; i--)
            {
                if (!c.Messages[i].IsCheckpoint)
                {
                    result.Add(c.Messages[i]);
                }
            }
            result.Reverse();
            return Task.FromResult<IReadOnlyList<LogMessage>>(result);
        }
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<LogMessage>> ReadAsync(string tenantId, string conversationId, long afterSequence, int limit, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            IReadOnlyList<LogMessage> page = _conversations.TryGetValue((tenantId, conversationId), out var c)
                ? c.After(afterSequence).Take(limit).ToList()
                : [];
            return Task.FromResult(page);
        }
    }

    /// <inheritdoc />
    public Task SaveUserProfileAsync(string tenantId, UserProfile profile, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            _profiles[(tenantId, profile.UserId)] = profile with
            {
                Allergies = [.. profile.Allergies],
                ChronicDiseases = [.. profile.ChronicDiseases],
                SurgeryHistory = [.. profile.SurgeryHistory],
                Preferences = [.. profile.Preferences],
            };
        }
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task<UserProfile?> GetUserProfileAsync(string tenantId, string userId, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return Task.FromResult(_profiles.TryGetValue((tenantId, userId), out var p)
                ? p with { Allergies = [.. p.Allergies], ChronicDiseases = [.. p.ChronicDiseases], SurgeryHistory = [.. p.SurgeryHistory], Preferences = [.. p.Preferences] }
                : null);
        }
    }

    /// <summary>Estimated bytes held now.</summary>
    public long EstimatedBytes => Interlocked.Read(ref _bytes);

    // Called under the gate before anything is changed.
    private long Reserve(int characters)
    {
        var cost = MessageOverheadBytes + (2L * characters);
        if (_bytes + cost > maxBytes)
        {
            throw new ProblemException(507, "store-full",
                $"The in-memory message log is at its cap ({maxBytes / (1024 * 1024)} MiB, {ConversationsServiceCollectionExtensions.MaxLogMegabytesKey}); " +
                "set ConnectionStrings:CloudMemory to use PostgreSQL, or raise the cap.");
        }
        Interlocked.Add(ref _bytes, cost);
        return cost;
    }

    /// <inheritdoc />
    public Task<bool> SaveSessionStateAsync(string tenantId, string conversationId, string stateJson, long version, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (!_conversations.TryGetValue((tenantId, conversationId), out var c))
            {
                return Task.FromResult(false);
            }
            c.Stats = c.Stats with { SessionState = stateJson, SessionVersion = Math.Max(c.Stats.SessionVersion, version) };
            return Task.FromResult(true);
        }
    }

    /// <inheritdoc />
    public Task<IReadOnlySet<string>> FindToolCallsAsync(string tenantId, string conversationId, IReadOnlyCollection<string> toolCallIds, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            var found = new HashSet<string>(StringComparer.Ordinal);
            if (_conversations.TryGetValue((tenantId, conversationId), out var c))
            {
                foreach (var message in c.Messages)
                {
                    foreach (var call in message.Messages?.SelectMany(m => m.ToolCalls ?? []) ?? [])
                    {
                        if (toolCallIds.Contains(call.Id))
                        {
                            found.Add(call.Id);
                        }
                    }
                }
            }
            return Task.FromResult<IReadOnlySet<string>>(found);
        }
    }

    private Conversation GetOrCreate(string tenantId, string conversationId, string userId)
    {
        if (!_conversations.TryGetValue((tenantId, conversationId), out var conversation))
        {
            var now = time.GetUtcNow();
            conversation = new Conversation(new ConversationStats(conversationId, userId, 0, 0, "", 0, "", 0, 0, 0, 0, "", "", false, now, now, SessionVersion: 1));
            _conversations[(tenantId, conversationId)] = conversation;
            IndexUser(tenantId, conversationId, "", userId);
            if (!_byTenant.TryGetValue(tenantId, out var ids))
            {
                _byTenant[tenantId] = ids = new HashSet<string>(StringComparer.Ordinal);
            }
            ids.Add(conversationId);
        }
        return conversation;
    }

    // Called under the gate: keeps the per-user index of conversations in step with each header's user.
    private void IndexUser(string tenantId, string conversationId, string previousUser, string user)
    {
        if (previousUser.Length > 0 && _byUser.TryGetValue((tenantId, previousUser), out var old))
        {
            old.Remove(conversationId);
        }
        if (user.Length > 0)
        {
            if (!_byUser.TryGetValue((tenantId, user), out var set))
            {
                _byUser[(tenantId, user)] = set = new HashSet<string>(StringComparer.Ordinal);
            }
            set.Add(conversationId);
        }
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<ConversationStats>> ListConversationsAsync(string tenantId, ConversationFilter filter, ConversationCursor? after, int limit, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            // A user filter narrows to that user's index; otherwise every conversation of the tenant is a candidate.
            var ids = filter.UserId is { } user ? _byUser.GetValueOrDefault((tenantId, user)) : _byTenant.GetValueOrDefault(tenantId);
            IReadOnlyList<ConversationStats> page = ids is null ? []
                : ids.Select(id => _conversations[(tenantId, id)].Stats)
                    .Where(s => filter.Matches(s) && (after is null || after.Precedes(s)))
                    .Order(Comparer<ConversationStats>.Create(ConversationCursor.Compare))
                    .Take(limit)
                    .ToList();
            return Task.FromResult(page);
        }
    }

    /// <inheritdoc />
    public Task<ConversationDeletion?> DeleteConversationAsync(string tenantId, string conversationId, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (!_conversations.Remove((tenantId, conversationId), out var c))
            {
                return Task.FromResult<ConversationDeletion?>(null);
            }
            IndexUser(tenantId, conversationId, c.Stats.UserId, "");
            if (_byTenant.TryGetValue(tenantId, out var tenantIds) && tenantIds.Remove(conversationId) && tenantIds.Count == 0)
            {
                _byTenant.Remove(tenantId);
            }
            Interlocked.Add(ref _bytes, -c.Bytes);
            return Task.FromResult<ConversationDeletion?>(new ConversationDeletion(c.Stats.UserId, c.Messages.Count, c.Messages.Count(m => m.IsCheckpoint)));
        }
    }

    /// <inheritdoc />
    public Task<bool> DeleteUserProfileAsync(string tenantId, string userId, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return Task.FromResult(_profiles.Remove((tenantId, userId)));
        }
    }

    private sealed class Conversation(ConversationStats stats)
    {
        public ConversationStats Stats { get; set; } = stats;

        // Estimated bytes this conversation holds (given back to the cap when it is deleted).
        public long Bytes { get; set; }
        public List<LogMessage> Messages { get; } = [];
        public Dictionary<string, LogMessage> ByTurnId { get; } = new(StringComparer.Ordinal);

        // The last segment read, handed out again while Stats is the same instance.
        public HistorySegment? Segment { get; set; }

        // Checkpoints only: turns are never looked up by message id.
        public Dictionary<string, int> ByMessageId { get; } = new(StringComparer.Ordinal);

        // Sequences are 1, 2, 3, ... in list order, so a position is an index, not a scan.
        public IEnumerable<LogMessage> After(long sequence)
        {
            for (var i = (int)Math.Clamp(sequence, 0, Messages.Count); i < Messages.Count; i++)
            {
                yield return Messages[i];
            }
        }

        public void Add(LogMessage message)
        {
            if (message.IsCheckpoint)
            {
                ByMessageId[message.MessageId] = Messages.Count;
            }
            Messages.Add(message);
        }
    }
}
