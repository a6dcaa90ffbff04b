using System.Text.Json;

namespace CloudMemory.Contracts.Sessions;

/// <summary>Body of <c>POST /v1/sessions/{conversationId}/snapshots</c>.</summary>
public sealed record CreateSnapshotRequest(string? Label = null);

/// <summary>Answer of a snapshot creation (201).</summary>
/// <param name="SnapshotId">The snapshot's id (unique within the conversation).</param>
/// <param name="CreatedAt">When it was taken.</param>
/// <param name="Version">The session version it captured.</param>
public sealed record SnapshotHandle(string SnapshotId, DateTimeOffset CreatedAt, long Version);

/// <summary>One entry of the snapshot list.</summary>
/// <param name="SnapshotId">The snapshot's id.</param>
/// <param name="CreatedAt">When it was taken.</param>
/// <param name="Version">The session version it captured.</param>
/// <param name="Label">The caller's label, or the checkpoint's for automatic snapshots.</param>
/// <param name="Automatic">True when taken by a checkpoint.</param>
/// <param name="Compressed">True when stored Brotli-compressed (older than the newest <c>maxSnapshots</c>).</param>
/// <param name="LogSequence">The last message-log sequence the snapshot includes.</param>
/// <param name="TurnCount">Turns written when it was taken.</param>
/// <param name="RawBytes">Size of the snapshot's JSON.</param>
/// <param name="StoredBytes">Size as stored (smaller when compressed).</param>
public sealed record SnapshotInfo(string SnapshotId, DateTimeOffset CreatedAt, long Version, string? Label, bool Automatic, bool Compressed,
    long LogSequence, int TurnCount, int RawBytes, int StoredBytes);

/// <summary>The snapshots of a conversation, newest first.</summary>
public sealed record SnapshotList(string ConversationId, IReadOnlyList<SnapshotInfo> Snapshots);

/// <summary>A full snapshot: the session as it was and the history the model saw then.</summary>
/// <param name="SnapshotId">The snapshot's id.</param>
/// <param name="ConversationId">The conversation.</param>
/// <param name="CreatedAt">When it was taken.</param>
/// <param name="Version">The session version it captured.</param>
/// <param name="Label">Its label.</param>
/// <param name="Automatic">True when taken by a checkpoint.</param>
/// <param name="Compressed">True when stored compressed (reads are transparent).</param>
/// <param name="LogSequence">The last message-log sequence it includes.</param>
/// <param name="Session">The session value as it was.</param>
/// <param name="History">The messages since the then-current checkpoint (what FULL_HISTORY showed), oldest first.</param>
public sealed record SessionSnapshot(string SnapshotId, string ConversationId, DateTimeOffset CreatedAt, long Version, string? Label, bool Automatic, bool Compressed,
    long LogSequence, SessionValue Session, IReadOnlyList<ChatMessage> History);

/// <summary>Body of <c>POST .../snapshots/{snapshotId}/restore</c>.</summary>
/// <param name="RollbackLog">
/// Also roll the message log's position back: a restore checkpoint covers every turn written after
/// the snapshot (they stay in the log, readable, but leave the model's context).
/// </param>
public sealed record RestoreSnapshotRequest(bool RollbackLog = false);

/// <summary>The session as restored, with its new version.</summary>
public sealed record RestoreResult(string ConversationId, string SnapshotId, long RestoredFromVersion, long Version, bool LogRolledBack, SessionValue Session);

/// <summary>What changed between two snapshots (<c>from</c> → <c>to</c>).</summary>
/// <param name="ConversationId">The conversation.</param>
/// <param name="From">The older side.</param>
/// <param name="To">The newer side.</param>
/// <param name="Changes">Changed session fields by JSON path (camelCase), arrays compared whole.</param>
/// <param name="MessagesAdded">History messages in <c>to</c> that are not in <c>from</c>.</param>
/// <param name="MessagesRemoved">History messages in <c>from</c> that are not in <c>to</c> (a checkpoint folded them into the summary).</param>
public sealed record SnapshotDiff(string ConversationId, string From, string To, IReadOnlyList<SnapshotChange> Changes,
    IReadOnlyList<ChatMessage> MessagesAdded, IReadOnlyList<ChatMessage> MessagesRemoved);

/// <summary>One changed field: its value before and after (null when absent).</summary>
public sealed record SnapshotChange(string Path, JsonElement? Before, JsonElement? After);

/// <summary>Take a snapshot of the session (actor command).</summary>
public sealed record CreateSnapshotCommand(string TenantId, string ConversationId, string? Label, bool Automatic = false);

/// <summary>List the snapshots (actor command).</summary>
public sealed record ListSnapshotsCommand(string TenantId, string ConversationId);

/// <summary>Read one snapshot (actor command).</summary>
public sealed record GetSnapshotCommand(string TenantId, string ConversationId, string SnapshotId);

/// <summary>Restore a snapshot (actor command).</summary>
public sealed record RestoreSnapshotCommand(string TenantId, string ConversationId, string SnapshotId, bool RollbackLog);
