using CloudMemory.Contracts.Sessions;

namespace CloudMemory.Contracts.Events;

/// <summary>Pub/sub topics and CloudEvent types CloudMemory publishes (component <c>pubsub</c>).</summary>
public static class Topics
{
    /// <summary>Name of the pub/sub component (metadata.name in components/).</summary>
    public const string PubSubName = "pubsub";

    /// <summary>A turn was written.</summary>
    public const string TurnWritten = "turn-written";

    /// <summary>A checkpoint was created.</summary>
    public const string CheckpointCreated = "checkpoint-created";

    /// <summary>A session was finalized.</summary>
    public const string SessionFinalized = "session-finalized";

    /// <summary>A session's shared state changed (Set, agent slot).</summary>
    public const string SessionUpdated = "session-updated";

    /// <summary>A session snapshot was taken.</summary>
    public const string SnapshotCreated = "snapshot-created";

    /// <summary>A session was restored from a snapshot.</summary>
    public const string SessionRestored = "session-restored";
}

/// <summary>CloudEvent <c>type</c> values (versioned).</summary>
public static class EventTypes
{
    /// <summary>Type of <see cref="TurnWritten"/>.</summary>
    public const string TurnWritten = "cloudmemory.turn.written.v1";

    /// <summary>Type of <see cref="CheckpointCreated"/>.</summary>
    public const string CheckpointCreated = "cloudmemory.checkpoint.created.v1";

    /// <summary>Type of <see cref="SessionFinalized"/>.</summary>
    public const string SessionFinalized = "cloudmemory.session.finalized.v1";

    /// <summary>Type of <see cref="SessionUpdated"/>.</summary>
    public const string SessionUpdated = "cloudmemory.session.updated.v1";

    /// <summary>Type of <see cref="SnapshotCreated"/>.</summary>
    public const string SnapshotCreated = "cloudmemory.snapshot.created.v1";

    /// <summary>Type of <see cref="SessionRestored"/>.</summary>
    public const string SessionRestored = "cloudmemory.session.restored.v1";
}

/// <summary>A turn was appended to a conversation (with its text, so followers need no second call).</summary>
public sealed record TurnWritten(string TenantId, string ConversationId, string MessageId, string UserId, int TurnCount, string AgentCode, string UserQuery, string AgentResponse, MemoryMode Mode, int TokensSinceCheckpoint, long OccurredAt);

/// <summary>A checkpoint (summary + recent turns) was written; <c>TraceId</c>/<c>StepId</c> name the trace step that asked for it, when the request was traced.</summary>
public sealed record CheckpointCreated(string TenantId, string ConversationId, string CheckpointMessageId, int CheckpointCount, string Summary, bool Automatic, long OccurredAt,
    string? TraceId = null, string? StepId = null);

/// <summary>A conversation was finalized; <c>TraceId</c>/<c>StepId</c> name the trace step that asked for it, when the request was traced.</summary>
public sealed record SessionFinalized(string TenantId, string ConversationId, string UserId, string CheckpointMessageId, string Summary, int TurnCount, long OccurredAt,
    string? TraceId = null, string? StepId = null);

/// <summary>Shared state of a session changed.</summary>
public sealed record SessionUpdated(string TenantId, string ConversationId, long Version, string ChangedBy, IReadOnlyList<string> Changed, long OccurredAt);

/// <summary>A snapshot of a session was taken (manually, or by a checkpoint when <c>Automatic</c>).</summary>
public sealed record SnapshotCreated(string TenantId, string ConversationId, string SnapshotId, long Version, string? Label, bool Automatic, long OccurredAt);

/// <summary>A session was restored from a snapshot; <c>Version</c> is the new version.</summary>
public sealed record SessionRestored(string TenantId, string ConversationId, string SnapshotId, long RestoredFromVersion, long Version, bool LogRolledBack, long OccurredAt);
