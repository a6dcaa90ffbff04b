using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Events;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Conversations;
using CloudMemory.Conversations.Log;
using CloudMemory.Conversations.Text;
using CloudMemory.Session.Features.Snapshots;

namespace CloudMemory.Session.Features.Sessions;

// Session snapshots: taken, listed, read and restored through the conversation actor, so they are
// ordered with the turns and checkpoints of the same conversation.
public sealed partial class ConversationActor
{
    private SnapshotStore SnapshotStore => new(stateStore, _options.MaxSnapshots, _options.MaxStoredSnapshots);

    /// <summary>Takes a snapshot of the session and of the history since its checkpoint.</summary>
    public async Task<ActorReply<SnapshotHandle>> CreateSnapshot(CreateSnapshotCommand command)
    {
        var session = await LoadAsync(command.TenantId, command.ConversationId);
        if (session is null)
        {
            return NotFound<SnapshotHandle>(command.ConversationId);
        }
        var info = await TakeSnapshotAsync(command.TenantId, session, command.Label, command.Automatic);
        return new(new SnapshotHandle(info.SnapshotId, info.CreatedAt, info.Version));
    }

    /// <summary>The snapshots, newest first.</summary>
    public async Task<ActorReply<SnapshotList>> ListSnapshots(ListSnapshotsCommand command)
    {
        var list = await SnapshotStore.ListAsync(command.TenantId, command.ConversationId);
        if (list.Count == 0 && await LoadAsync(command.TenantId, command.ConversationId) is null)
        {
            return NotFound<SnapshotList>(command.ConversationId);
        }
        return new(new SnapshotList(command.ConversationId, list.Reverse().ToList()));
    }

    /// <summary>One snapshot, read back identical whether stored compressed or not.</summary>
    public async Task<ActorReply<SessionSnapshot>> GetSnapshot(GetSnapshotCommand command)
    {
        var snapshot = await SnapshotStore.ReadAsync(command.TenantId, command.ConversationId, command.SnapshotId);
        return snapshot is null ? SnapshotNotFound<SessionSnapshot>(command) : new(snapshot);
    }

    /// <summary>
    /// Puts the session back as the snapshot has it, under a new (higher) version. Safety facts
    /// learnt since (allergies, chronic conditions) are kept. With <c>RollbackLog</c> a restore
    /// checkpoint in the log covers every later turn, so the model's context is the snapshot's too.
    /// </summary>
    public async Task<ActorReply<RestoreResult>> RestoreSnapshot(RestoreSnapshotCommand command)
    {
        using var activity = SessionTelemetry.Source.StartActivity("ConversationActor RestoreSnapshot");
        activity?.SetTag("cloudmemory.conversation_id", command.ConversationId);
        var current = await LoadAsync(command.TenantId, command.ConversationId);
        if (current is null)
        {
            return NotFound<RestoreResult>(command.ConversationId);
        }
        if (current.Meta.Status == SessionStatus.Finalized)
        {
            return Finalized<RestoreResult>(command.ConversationId);
        }
        var snapshot = await SnapshotStore.ReadAsync(command.TenantId, command.ConversationId, command.SnapshotId);
        if (snapshot is null)
        {
            return SnapshotNotFound<RestoreResult>(new GetSnapshotCommand(command.TenantId, command.ConversationId, command.SnapshotId));
        }

        var restored = snapshot.Session.DeepCopy();
        restored.Meta.Version = current.Meta.Version + 1;
        restored.Meta.UpdatedAt = time.GetUtcNow().ToUnixTimeSeconds();
        restored.Meta.Status = SessionStatus.Active;
        KeepSafetyFacts(restored.UserSnapshot, current.UserSnapshot);
        if (command.RollbackLog)
        {
            var failure = await RollBackLogAsync(command, snapshot, restored);
            if (failure is not null)
            {
                return ActorReply<RestoreResult>.Fail(failure.Status, failure.Code!, failure.Detail!);
            }
        }
        await SaveDurableStateAsync(command.TenantId, restored);
        await SaveAsync(command.TenantId, restored);
        SessionTelemetry.SnapshotsRestored.Add(1);
        await PublishAsync(command.TenantId, Topics.SessionRestored, EventTypes.SessionRestored,
            new SessionRestored(command.TenantId, command.ConversationId, snapshot.SnapshotId, snapshot.Version, restored.Meta.Version, command.RollbackLog, restored.Meta.UpdatedAt),
            $"{Id}-restored-v{restored.Meta.Version}");
        return new(new RestoreResult(command.ConversationId, snapshot.SnapshotId, snapshot.Version, restored.Meta.Version, command.RollbackLog, restored));
    }

    // The automatic snapshot of a checkpoint: the checkpoint is committed, so a failure here is logged, not returned.
    private async Task SnapshotAfterCheckpointAsync(string tenantId, SessionValue session, int checkpointNumber)
    {
        if (!_options.SnapshotAtCheckpoint)
        {
            return;
        }
        try
        {
            await TakeSnapshotAsync(tenantId, session, $"checkpoint {checkpointNumber}", automatic: true);
        }
        catch (Exception ex)
        {
            logger.LogError(ex, "Automatic snapshot after checkpoint {Number} of {ActorId} failed", checkpointNumber, Id);
        }
    }

    private async Task<SnapshotInfo> TakeSnapshotAsync(string tenantId, SessionValue session, string? label, bool automatic)
    {
        var segment = await log.ReadSinceCheckpointAsync(tenantId, session.Meta.ConversationId);
        var history = segment.Messages.SelectMany(ConversationText.MessagesOf).ToList();
        var sequence = Math.Max(segment.Stats?.LastSequence ?? 0, segment.Messages.Count > 0 ? segment.Messages[^1].Sequence : 0);
        var snapshot = new SessionSnapshot("", session.Meta.ConversationId, time.GetUtcNow(), session.Meta.Version, label, automatic, Compressed: false,
            sequence, session.DeepCopy(), history);
        var info = await SnapshotStore.AddAsync(tenantId, session.Meta.ConversationId, snapshot);
        SessionTelemetry.SnapshotsCreated.Add(1, new KeyValuePair<string, object?>("automatic", automatic));
        await PublishAsync(tenantId, Topics.SnapshotCreated, EventTypes.SnapshotCreated,
            new SnapshotCreated(tenantId, session.Meta.ConversationId, info.SnapshotId, info.Version, label, automatic, snapshot.CreatedAt.ToUnixTimeSeconds()),
            $"{Id}-{info.SnapshotId}");
        return info;
    }

    // A checkpoint covering everything the log holds now whose content is the snapshot's context:
    // later turns stay in the log (readable through the message API) but leave the model's context.
    private async Task<ActorReply<RestoreResult>?> RollBackLogAsync(RestoreSnapshotCommand command, SessionSnapshot snapshot, SessionValue restored)
    {
        var stats = await log.GetStatsAsync(command.TenantId, command.ConversationId);
        if (stats is null)
        {
            return NotFound<RestoreResult>(command.ConversationId);
        }
        var then = snapshot.Session.MessageContext;
        var summarized = then.Mode == MemoryMode.SummaryN;
        var turns = ContextFit.Turns(summarized ? then.WindowMessages : snapshot.History.Where(m => m.Role != ChatMessage.SystemRole).ToList())
            .Select(t => (IReadOnlyList<ChatMessage>)t).ToList();
        var summary = summarized && then.Summary.Length > 0 ? then.Summary : $"(restored to snapshot {snapshot.SnapshotId})";
        var policy = MemoryPolicy.Resolve(_policy, stats.TurnCount);
        var fitted = ContextFit.Fit(summary, turns, ContextFit.UnitsOf(policy.CheckpointTokens), ContextFit.UnitsOf(policy.SummaryTokens));
        var messageId = $"{CheckpointId(command.TenantId, command.ConversationId, 0)}-restore-v{restored.Meta.Version}";
        var result = await log.AppendCheckpointAsync(command.TenantId, new CheckpointAppend(command.ConversationId, messageId, stats.CheckpointMessageId,
            stats.LastSequence, fitted.Summary!, Math.Max(1, turns.Count), fitted.History, Final: false, restored.Meta.Version));
        if (result is null)
        {
            return ActorReply<RestoreResult>.Fail(409, "checkpoint-conflict", "Another checkpoint was written meanwhile; restore again.");
        }
        restored.MessageContext.Mode = MemoryMode.SummaryN;
        restored.MessageContext.Summary = fitted.Summary!;
        restored.MessageContext.WindowMessages = fitted.Window;
        restored.MessageContext.CheckpointMessageId = result.Message.MessageId;
        restored.MessageContext.CheckpointCount = result.Stats.CheckpointCount;
        restored.MessageContext.WindowTurns = Math.Max(1, turns.Count);
        restored.FlowContext.TurnCount = result.Stats.TurnCount; // turn numbers never go back: the log keeps every turn
        return null;
    }

    private static void KeepSafetyFacts(UserProfile restored, UserProfile current)
    {
        foreach (var allergy in current.Allergies.Where(a => !restored.Allergies.Contains(a, StringComparer.OrdinalIgnoreCase)))
        {
            restored.Allergies.Add(allergy);
        }
        foreach (var disease in current.ChronicDiseases.Where(d => !restored.ChronicDiseases.Contains(d, StringComparer.OrdinalIgnoreCase)))
        {
            restored.ChronicDiseases.Add(disease);
        }
    }

    private static ActorReply<T> SnapshotNotFound<T>(GetSnapshotCommand command) =>
        ActorReply<T>.Fail(404, "snapshot-not-found", $"Conversation '{command.ConversationId}' has no snapshot '{command.SnapshotId}'.");
}
