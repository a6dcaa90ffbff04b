using CloudMemory.Contracts.Sessions;

namespace CloudMemory.Client;

/// <summary>Session snapshots (session app): take, list, read, diff and restore.</summary>
public sealed partial class CloudMemoryClient
{
    /// <summary>Takes a snapshot of the session (<c>POST /v1/sessions/{id}/snapshots</c>).</summary>
    public Task<SnapshotHandle> CreateSnapshotAsync(string conversationId, string? label = null, CancellationToken cancellationToken = default) =>
        SendAsync<SnapshotHandle>(HttpMethod.Post, options.SessionAppId, $"v1/sessions/{Escape(conversationId)}/snapshots", new CreateSnapshotRequest(label), null, cancellationToken);

    /// <summary>The conversation's snapshots, newest first.</summary>
    public Task<SnapshotList> ListSnapshotsAsync(string conversationId, CancellationToken cancellationToken = default) =>
        SendAsync<SnapshotList>(HttpMethod.Get, options.SessionAppId, $"v1/sessions/{Escape(conversationId)}/snapshots", null, null, cancellationToken);

    /// <summary>One full snapshot (compressed ones are read back transparently); <c>snapshot-not-found</c> when unknown.</summary>
    public Task<SessionSnapshot> GetSnapshotAsync(string conversationId, string snapshotId, CancellationToken cancellationToken = default) =>
        SendAsync<SessionSnapshot>(HttpMethod.Get, options.SessionAppId, $"v1/sessions/{Escape(conversationId)}/snapshots/{Escape(snapshotId)}", null, null, cancellationToken);

    /// <summary>What changed from <paramref name="fromSnapshotId"/> to <paramref name="toSnapshotId"/>.</summary>
    public Task<SnapshotDiff> DiffSnapshotsAsync(string conversationId, string fromSnapshotId, string toSnapshotId, CancellationToken cancellationToken = default) =>
        SendAsync<SnapshotDiff>(HttpMethod.Get, options.SessionAppId,
            $"v1/sessions/{Escape(conversationId)}/snapshots/{Escape(fromSnapshotId)}/diff?to={Escape(toSnapshotId)}", null, null, cancellationToken);

    /// <summary>Restores the session as the snapshot has it, with a new version; <paramref name="rollbackLog"/> also rolls back the log position.</summary>
    public Task<RestoreResult> RestoreSnapshotAsync(string conversationId, string snapshotId, bool rollbackLog = false, CancellationToken cancellationToken = default) =>
        SendAsync<RestoreResult>(HttpMethod.Post, options.SessionAppId, $"v1/sessions/{Escape(conversationId)}/snapshots/{Escape(snapshotId)}/restore",
            new RestoreSnapshotRequest(rollbackLog), null, cancellationToken);
}
