using System.Security.Cryptography;
using System.Text;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.BuildingBlocks.State;
using CloudMemory.BuildingBlocks.Workflows;
using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Events;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Conversations;
using CloudMemory.Conversations.Log;
using CloudMemory.Conversations.Sessions;
using CloudMemory.Conversations.Text;
using CloudMemory.Session.Features.Checkpoints;
using Dapr.Actors.Runtime;
using Microsoft.Extensions.Options;

namespace CloudMemory.Session.Features.Sessions;

/// <summary>
/// One actor per tenant and conversation: every write to a conversation's short-term memory runs
/// here, one at a time, so concurrent agents never lose a turn or overwrite each other; different
/// conversations run in parallel. The session lives in the state store under the seed's key with
/// a sliding TTL; the durable truth (turns, checkpoints, counts) lives in the message log, from
/// which an expired session is rebuilt.
/// </summary>
public sealed partial class ConversationActor(
    ActorHost host,
    IStateStore stateStore,
    IConversationLog log,
    IEventPublisher publisher,
    IWorkflowClient workflows,
    IOptions<SessionOptions> sessionOptions,
    IOptions<MemoryPolicyOptions> policyOptions,
    TimeProvider time,
    ILogger<ConversationActor> logger) : Actor(host), IConversationActor
{
    // The actor id as text ("{tenant}~{conversation}").
    private new string Id => base.Id.GetId();

    private readonly SessionOptions _options = sessionOptions.Value;
    private readonly MemoryPolicyOptions _policy = policyOptions.Value;

    // The session as this activation last saved it, with its stored bytes (see LoadAsync).
    private (byte[] Bytes, SessionValue Session)? _saved;

    /// <summary>CreateShortMemory: idempotent.</summary>
    public async Task<ActorReply<SessionReply>> Create(CreateSessionCommand command)
    {
        var existing = await LoadAsync(command.TenantId, command.ConversationId);
        if (existing is not null)
        {
            return new(new SessionReply(existing, SessionKeys.ETag(existing.Meta.Version)));
        }
        var now = time.GetUtcNow().ToUnixTimeSeconds();
        var profile = await log.GetUserProfileAsync(command.TenantId, command.UserId) ?? new UserProfile { UserId = command.UserId };
        var stats = await log.EnsureConversationAsync(command.TenantId, command.ConversationId, command.UserId);
        var session = new SessionValue
        {
            Meta = new MetaInfo
            {
                ConversationId = command.ConversationId, UserId = command.UserId, CreatedAt = stats.CreatedAt.ToUnixTimeSeconds(), UpdatedAt = now,
                Version = Math.Max(1, stats.SessionVersion),
            },
            FlowContext = new FlowContext { CurrentAgentKey = command.AgentCode },
            UserSnapshot = profile,
        };
        await SaveAsync(command.TenantId, session);
        return new(new SessionReply(session, SessionKeys.ETag(session.Meta.Version), Created: true));
    }

    /// <summary>GetShortMemory: rebuilt from the log after expiry.</summary>
    public async Task<ActorReply<SessionReply>> Get(GetSessionCommand command)
    {
        var session = await LoadAsync(command.TenantId, command.ConversationId);
        return session is null
            ? NotFound<SessionReply>(command.ConversationId)
            : new(new SessionReply(session, SessionKeys.ETag(session.Meta.Version)));
    }

    /// <summary>SetShortMemory under optimistic concurrency (If-Match).</summary>
    public async Task<ActorReply<SessionReply>> Set(SetSessionCommand command, CancellationToken cancellationToken)
    {
        var current = await LoadAsync(command.TenantId, command.ConversationId);
        if (current is null)
        {
            return NotFound<SessionReply>(command.ConversationId);
        }
        if (current.Meta.Status == SessionStatus.Finalized)
        {
            return Finalized<SessionReply>(command.ConversationId);
        }
        var etag = SessionKeys.ETag(current.Meta.Version);
        if (command.IfMatch != "*" && command.IfMatch != etag)
        {
            return ActorReply<SessionReply>.Fail(409, "etag-mismatch", $"The session changed (current ETag {etag}, If-Match {command.IfMatch}); read it again and retry.");
        }
        var (merged, changed) = SessionMerge.Apply(current, command.Session, command.AgentId);
        if (changed.Count == 0)
        {
            await SaveAsync(command.TenantId, current); // Set refreshes the TTL even when nothing changed
            return new(new SessionReply(current, etag));
        }
        Touch(merged);
        // The commit point: a caller that gave up by now (a slow merge) gets nothing written.
        cancellationToken.ThrowIfCancellationRequested();
        if (changed.Contains("userSnapshot") && merged.UserSnapshot.UserId.Length > 0)
        {
            await log.SaveUserProfileAsync(command.TenantId, merged.UserSnapshot, CancellationToken.None);
        }
        await SaveDurableStateAsync(command.TenantId, merged);
        await SaveAsync(command.TenantId, merged);
        await PublishAsync(command.TenantId, Topics.SessionUpdated, EventTypes.SessionUpdated,
            new SessionUpdated(command.TenantId, command.ConversationId, merged.Meta.Version, command.AgentId ?? "", changed, merged.Meta.UpdatedAt),
            $"{Id}-v{merged.Meta.Version}");
        return new(new SessionReply(merged, SessionKeys.ETag(merged.Meta.Version)));
    }

    /// <summary>Writes the calling agent's private slot.</summary>
    public async Task<ActorReply<SessionReply>> WriteAgentSlot(WriteAgentSlotCommand command)
    {
        var session = await LoadAsync(command.TenantId, command.ConversationId);
        if (session is null)
        {
            return NotFound<SessionReply>(command.ConversationId);
        }
        if (session.Meta.Status == SessionStatus.Finalized)
        {
            return Finalized<SessionReply>(command.ConversationId);
        }
        session.GlobalState.AgentSlots[command.AgentCode] = command.Value.Clone();
        Touch(session);
        await SaveDurableStateAsync(command.TenantId, session);
        await SaveAsync(command.TenantId, session);
        await PublishAsync(command.TenantId, Topics.SessionUpdated, EventTypes.SessionUpdated,
            new SessionUpdated(command.TenantId, command.ConversationId, session.Meta.Version, command.AgentCode, [$"globalState.agentSlots.{command.AgentCode}"], session.Meta.UpdatedAt),
            $"{Id}-v{session.Meta.Version}");
        return new(new SessionReply(session, SessionKeys.ETag(session.Meta.Version)));
    }

    /// <summary>WriteTurn: appends to the log, updates the session, checkpoints in the background when the threshold is crossed.</summary>
    public async Task<ActorReply<WriteTurnResult>> WriteTurn(WriteTurnCommand command)
    {
        using var activity = SessionTelemetry.Source.StartActivity("ConversationActor WriteTurn");
        activity?.SetTag("cloudmemory.conversation_id", command.ConversationId);
        var session = await LoadAsync(command.TenantId, command.ConversationId);
        if (session is null)
        {
            return NotFound<WriteTurnResult>(command.ConversationId);
        }
        if (session.Meta.Status == SessionStatus.Finalized)
        {
            return ActorReply<WriteTurnResult>.Fail(409, "session-finalized", $"Conversation '{command.ConversationId}' is finalized; start a new conversation.");
        }
        var userId = string.IsNullOrEmpty(command.UserId) ? session.Meta.UserId : command.UserId;
        var agentCode = command.AgentCode ?? "";
        var messages = command.Messages is { Count: > 0 } ? command.Messages : null;
        var answered = messages?.Where(m => m.Role == ChatMessage.ToolRole).Select(m => m.ToolCallId!)
            .Except(messages.SelectMany(m => m.ToolCalls ?? []).Select(c => c.Id)).ToList() ?? [];
        if (answered.Count > 0)
        {
            // A tool result must answer a call of this turn or of an earlier one.
            var known = await log.FindToolCallsAsync(command.TenantId, command.ConversationId, answered);
            var unknown = answered.Where(id => !known.Contains(id)).ToList();
            if (unknown.Count > 0)
            {
                return ActorReply<WriteTurnResult>.Fail(400, "unknown-tool-call", $"No assistant message of this conversation made tool call(s) {string.Join(", ", unknown)}.");
            }
        }
        var turn = new TurnAppend(command.ConversationId, command.TurnId, userId, agentCode, command.UserQuery, command.AgentResponse, messages, session.Meta.Version + 1);
        var append = await log.AppendTurnAsync(command.TenantId, turn);
        if (append.Duplicate)
        {
            activity?.SetTag("cloudmemory.duplicate", true);
            if (!SameTurn(append.Message, turn))
            {
                return ActorReply<WriteTurnResult>.Fail(409, "turn-id-reused", $"Turn id '{command.TurnId}' was already used for a different turn.");
            }
            if (session.FlowContext.TurnCount < append.Stats.TurnCount)
            {
                // The first attempt reached the log but not the session (the caller saw an error and
                // retried): bring the session up to the log, which is the truth.
                session.FlowContext.TurnCount = append.Stats.TurnCount;
                session.FlowContext.LastBotMessage = append.Stats.LastAnswer;
                session.FlowContext.CurrentAgentKey = append.Stats.LastAgentCode;
                Touch(session);
                await SaveAsync(command.TenantId, session);
            }
            return new(Answer(command.ConversationId, append.Message, append.Stats));
        }

        if (!string.IsNullOrEmpty(command.UserId))
        {
            session.Meta.UserId = command.UserId;
            session.UserSnapshot.UserId = command.UserId;
        }
        if (!string.IsNullOrEmpty(command.AgentCode))
        {
            session.FlowContext.CurrentAgentKey = command.AgentCode;
        }
        if (!string.IsNullOrEmpty(command.AgentResponse))
        {
            session.FlowContext.LastBotMessage = command.AgentResponse;
        }
        session.FlowContext.TurnCount = append.Stats.TurnCount;
        var policy = MemoryPolicy.Resolve(_policy, append.Stats.TurnCount);
        if (session.MessageContext.Mode == MemoryMode.SummaryN)
        {
            // The window slides with every turn, so SUMMARY_N history always ends with the latest turns;
            // it never grows past the context budget.
            ConversationText.Slide(session.MessageContext.WindowMessages, ConversationText.MessagesOf(append.Message),
                Math.Max(1, session.MessageContext.WindowTurns), ContextFit.UnitsOf(policy.BudgetTokens));
        }
        Touch(session);
        await SaveAsync(command.TenantId, session);
        SessionTelemetry.TurnsWritten.Add(1);

        var tokens = TokenEstimator.TokensFromUnits(append.Stats.HistoryUnits + 1);
        await PublishAsync(command.TenantId, Topics.TurnWritten, EventTypes.TurnWritten,
            new TurnWritten(command.TenantId, command.ConversationId, append.Message.MessageId, session.Meta.UserId, append.Stats.TurnCount, agentCode,
                command.UserQuery, command.AgentResponse, session.MessageContext.Mode, tokens, session.Meta.UpdatedAt),
            append.Message.MessageId);

        // At or above the threshold, the checkpoint of the current segment (number CheckpointCount + 1)
        // is started; its id is deterministic, so later turns of the same segment and retries start
        // nothing new. A checkpoint takes at most CheckpointShare of the budget, so it brings the
        // history back under the threshold: exactly one checkpoint per crossing.
        if (_policy.AutoCheckpoint && tokens >= policy.TokenThresholdRatio * policy.ModelContextWindow)
        {
            await StartCheckpointAsync(command.TenantId, command.ConversationId, append.Stats.CheckpointCount + 1, policy.RecentTurns, command.TraceId, command.StepId);
        }
        return new(Answer(command.ConversationId, append.Message, append.Stats));
    }

    // The answer of a turn, the same for the first write and every retry.
    private static WriteTurnResult Answer(string conversationId, LogMessage turn, ConversationStats stats) =>
        new(conversationId, turn.AfterCheckpoint ? MemoryMode.SummaryN : MemoryMode.FullHistory, turn.CreatedAt.ToUnixTimeSeconds(),
            turn.TurnNumber > 0 ? turn.TurnNumber : stats.TurnCount);

    private static bool SameTurn(LogMessage stored, TurnAppend retry) =>
        stored.Query == retry.Query && stored.Answer == retry.Answer
        && System.Text.Json.JsonSerializer.Serialize(stored.Messages, Contracts.ContractsJson.Options) == System.Text.Json.JsonSerializer.Serialize(retry.Messages, Contracts.ContractsJson.Options);

    /// <summary>Writes a checkpoint (summary already produced) to the log and switches the session to SUMMARY_N.</summary>
    public async Task<ActorReply<CheckpointResult>> ApplyCheckpoint(ApplyCheckpointCommand command)
    {
        using var activity = SessionTelemetry.Source.StartActivity("ConversationActor ApplyCheckpoint");
        activity?.SetTag("cloudmemory.conversation_id", command.ConversationId);
        var session = await LoadAsync(command.TenantId, command.ConversationId);
        if (session is null)
        {
            return NotFound<CheckpointResult>(command.ConversationId);
        }
        if (session.Meta.Status == SessionStatus.Finalized)
        {
            // Finalize is idempotent: a repeat answers as the first did and writes nothing.
            return command.Final
                ? new(new CheckpointResult(command.ConversationId, session.MessageContext.CheckpointMessageId, session.MessageContext.Mode,
                    session.MessageContext.Summary, session.MessageContext.CheckpointCount, session.Meta.Status))
                : Finalized<CheckpointResult>(command.ConversationId);
        }
        // The checkpoint message (summary + the newest turns it covers) takes at most CheckpointShare of
        // the budget: afterwards the history is well below the threshold, so the next checkpoint waits
        // for the next crossing. The session's window keeps RecentTurns turns within the whole budget.
        var policy = MemoryPolicy.Resolve(_policy, session.FlowContext.TurnCount);
        var covered = await log.ReadLastTurnsAsync(command.TenantId, command.ConversationId, command.RecentTurns + 64);
        var checkpoint = ContextFit.Fit(command.Summary, TurnsOf(covered.Where(m => m.Sequence <= command.CoveredThroughSequence), command.RecentTurns),
            ContextFit.UnitsOf(policy.CheckpointTokens), ContextFit.UnitsOf(policy.SummaryTokens));
        var content = checkpoint.History;
        var result = await log.AppendCheckpointAsync(command.TenantId, new CheckpointAppend(command.ConversationId, command.MessageId,
            command.ExpectedPreviousCheckpointId, command.CoveredThroughSequence, checkpoint.Summary!, command.RecentTurns, content, command.Final, session.Meta.Version + 1));
        if (result is null)
        {
            return ActorReply<CheckpointResult>.Fail(409, "checkpoint-conflict", "Another checkpoint was written meanwhile; query the context again.");
        }
        if (!result.Duplicate)
        {
            session.MessageContext.Summary = checkpoint.Summary!;
            session.MessageContext.WindowMessages = FitWindow(covered, command.RecentTurns, policy);
            session.MessageContext.Mode = MemoryMode.SummaryN;
            session.MessageContext.CheckpointMessageId = result.Message.MessageId;
            session.MessageContext.CheckpointCount = result.Stats.CheckpointCount;
            session.MessageContext.WindowTurns = command.RecentTurns;
            if (command.Final)
            {
                session.Meta.Status = SessionStatus.Finalized;
            }
            Touch(session);
            await SaveAsync(command.TenantId, session);
            SessionTelemetry.CheckpointsCreated.Add(1, new KeyValuePair<string, object?>("automatic", command.Automatic), new KeyValuePair<string, object?>("final", command.Final));
            await PublishAsync(command.TenantId, Topics.CheckpointCreated, EventTypes.CheckpointCreated,
                new CheckpointCreated(command.TenantId, command.ConversationId, result.Message.MessageId, result.Stats.CheckpointCount, checkpoint.Summary!, command.Automatic, session.Meta.UpdatedAt,
                    command.TraceId, command.StepId),
                result.Message.MessageId);
            if (command.Final)
            {
                await PublishAsync(command.TenantId, Topics.SessionFinalized, EventTypes.SessionFinalized,
                    new SessionFinalized(command.TenantId, command.ConversationId, session.Meta.UserId, result.Message.MessageId, checkpoint.Summary!, session.FlowContext.TurnCount, session.Meta.UpdatedAt,
                        command.TraceId, command.StepId),
                    result.Message.MessageId + "-final");
            }
            await SnapshotAfterCheckpointAsync(command.TenantId, session, result.Stats.CheckpointCount);
        }
        return new(new CheckpointResult(command.ConversationId, session.MessageContext.CheckpointMessageId, session.MessageContext.Mode,
            session.MessageContext.Summary, session.MessageContext.CheckpointCount, session.Meta.Status));
    }

    /// <summary>The deterministic id of the <paramref name="number"/>th checkpoint (workflow instance id and message id alike).</summary>
    public static string CheckpointId(string tenantId, string conversationId, int number)
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(ConversationActorContract.ActorId(tenantId, conversationId))))[..24];
        return $"cp-{hash}-{number}";
    }

    // traceId/stepId: the step of the turn write that crossed the threshold; the checkpoint-created event carries it (trace-linked memory).
    private async Task StartCheckpointAsync(string tenantId, string conversationId, int number, int recentTurns, string? traceId, string? stepId)
    {
        var id = CheckpointId(tenantId, conversationId, number);
        try
        {
            await workflows.ScheduleNewWorkflowAsync(nameof(CheckpointConversationWorkflow), id,
                new CheckpointWorkflowInput(tenantId, conversationId, id, recentTurns, traceId, stepId));
        }
        catch (Exception ex)
        {
            // The turn is stored; a failed start must not fail it. The next crossing or an explicit checkpoint recovers.
            logger.LogError(ex, "Could not start checkpoint {CheckpointId} for {ConversationId}", id, conversationId);
        }
    }

    private async Task<SessionValue?> LoadAsync(string tenantId, string conversationId)
    {
        var entry = await stateStore.GetAsync(SessionKeys.For(tenantId, conversationId));
        if (entry is not null)
        {
            // The session this activation saved last is reused while the store still holds exactly
            // its bytes (no JSON parse per turn). It is taken, not shared: a call that changes it and
            // then fails leaves nothing cached, and the next call parses the stored bytes again.
            var saved = _saved;
            _saved = null;
            return saved is { } s && s.Bytes.AsSpan().SequenceEqual(entry.Value.Span)
                ? s.Session
                : System.Text.Json.JsonSerializer.Deserialize<SessionValue>(entry.Value.Span, Contracts.ContractsJson.Options)!;
        }
        var stats = await log.GetStatsAsync(tenantId, conversationId);
        return stats is null ? null : await RebuildAsync(tenantId, stats);
    }

    // The state entry expired (or was lost, e.g. a restart): the log has everything — turns,
    // checkpoints and counts, the durable part of the session (global state, agent slots, pending
    // action, profile snapshot), its creation time and the highest version handed out, so the
    // rebuilt session continues the version sequence and a stale If-Match stays stale.
    private async Task<SessionValue> RebuildAsync(string tenantId, ConversationStats stats)
    {
        var windowTurns = stats.WindowTurns > 0 ? stats.WindowTurns : _policy.RecentTurns;
        var recent = stats.CheckpointCount > 0 ? await log.ReadLastTurnsAsync(tenantId, stats.ConversationId, windowTurns) : [];
        var profile = stats.UserId.Length > 0 ? await log.GetUserProfileAsync(tenantId, stats.UserId) : null;
        var durable = stats.SessionState is null ? null
            : System.Text.Json.JsonSerializer.Deserialize<DurableSessionState>(stats.SessionState, Contracts.ContractsJson.Options);
        var session = new SessionValue
        {
            Meta = new MetaInfo
            {
                ConversationId = stats.ConversationId,
                UserId = stats.UserId,
                UpdatedAt = stats.UpdatedAt.ToUnixTimeSeconds(),
                CreatedAt = stats.CreatedAt.ToUnixTimeSeconds(),
                Status = stats.Finalized ? SessionStatus.Finalized : SessionStatus.Active,
                Version = stats.SessionVersion + 1,
            },
            GlobalState = durable?.GlobalState ?? new GlobalState(),
            FlowContext = new FlowContext { CurrentAgentKey = stats.LastAgentCode, LastBotMessage = stats.LastAnswer, TurnCount = stats.TurnCount },
            MessageContext = new MessageContext
            {
                Summary = stats.Summary,
                WindowMessages = FitWindow(recent, windowTurns, MemoryPolicy.Resolve(_policy, stats.TurnCount)),
                Mode = stats.CheckpointCount > 0 ? MemoryMode.SummaryN : MemoryMode.FullHistory,
                CheckpointMessageId = stats.CheckpointMessageId,
                CheckpointCount = stats.CheckpointCount,
                WindowTurns = stats.CheckpointCount > 0 ? windowTurns : 0,
            },
            UserSnapshot = profile ?? durable?.UserSnapshot ?? new UserProfile { UserId = stats.UserId },
        };
        SessionTelemetry.SessionsRebuilt.Add(1);
        logger.LogInformation("Rebuilt session {ConversationId} from the log ({TurnCount} turns, {Checkpoints} checkpoints)", stats.ConversationId, stats.TurnCount, stats.CheckpointCount);
        await SaveAsync(tenantId, session);
        return session;
    }

    private static List<IReadOnlyList<ChatMessage>> TurnsOf(IEnumerable<LogMessage> turnsOldestFirst, int turns)
    {
        var list = turnsOldestFirst.Where(m => !m.IsCheckpoint).ToList();
        return list.Skip(Math.Max(0, list.Count - turns)).Select(m => (IReadOnlyList<ChatMessage>)ConversationText.MessagesOf(m)).ToList();
    }

    private static List<ChatMessage> FitWindow(IEnumerable<LogMessage> turnsOldestFirst, int turns, MemoryPolicy policy) =>
        ContextFit.Fit(null, TurnsOf(turnsOldestFirst, turns), ContextFit.UnitsOf(policy.BudgetTokens), 0).Window;

    // What the log cannot derive is written to it with every change that touches it.
    private Task SaveDurableStateAsync(string tenantId, SessionValue session) =>
        log.SaveSessionStateAsync(tenantId, session.Meta.ConversationId,
            System.Text.Json.JsonSerializer.Serialize(new DurableSessionState(session.GlobalState, session.UserSnapshot), Contracts.ContractsJson.Options),
            session.Meta.Version);

    private static ActorReply<T> Finalized<T>(string conversationId) =>
        ActorReply<T>.Fail(409, "session-finalized", $"Conversation '{conversationId}' is finalized; start a new conversation.");

    private void Touch(SessionValue session)
    {
        session.Meta.UpdatedAt = time.GetUtcNow().ToUnixTimeSeconds();
        session.Meta.Version++;
    }

    private async Task SaveAsync(string tenantId, SessionValue session)
    {
        _saved = null;
        var bytes = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(session, Contracts.ContractsJson.Options);
        await stateStore.SaveAsync(SessionKeys.For(tenantId, session.Meta.ConversationId), bytes, etag: null,
            new StateWriteOptions(Ttl: TimeSpan.FromSeconds(_options.SessionTtlSeconds)));
        _saved = (bytes, session);
    }

    private async Task PublishAsync<T>(string tenantId, string topic, string type, T data, string eventId)
    {
        try
        {
            await publisher.PublishAsync(topic, type, data, new PublishOptions(eventId, Subject: Id, TenantId: tenantId));
        }
        catch (Exception ex)
        {
            // The write is committed; subscribers miss this event rather than the caller seeing a failure.
            logger.LogError(ex, "Publishing {Type} for {ActorId} failed", type, Id);
        }
    }

    private static ActorReply<T> NotFound<T>(string conversationId) =>
        ActorReply<T>.Fail(404, "session-not-found", $"Conversation '{conversationId}' is unknown.");
}

/// <summary>The part of a session the log cannot derive, stored with it.</summary>
public sealed record DurableSessionState(GlobalState GlobalState, UserProfile UserSnapshot);
