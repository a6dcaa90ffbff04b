namespace CloudMemory.Session;

/// <summary>Session service settings (section <c>CloudMemory:Session</c>).</summary>
public sealed class SessionOptions
{
    /// <summary>Configuration section.</summary>
    public const string SectionName = "CloudMemory:Session";

    /// <summary>Sliding TTL of a session in the state store (seed: 1800 s).</summary>
    public int SessionTtlSeconds { get; set; } = 1800;

    /// <summary>Largest accepted turn (user query + agent response, UTF-8 bytes).</summary>
    public int MaxTurnBytes { get; set; } = 256 * 1024;

    /// <summary>Largest accepted session document on Set (UTF-8 bytes).</summary>
    public int MaxSessionBytes { get; set; } = 1024 * 1024;

    /// <summary>
    /// At start, conversations updated within this many hours are checked for a crossing whose
    /// checkpoint was lost with the previous process (0 turns the scan off).
    /// </summary>
    public int CheckpointRecoveryHours { get; set; } = 24;

    /// <summary>Snapshots of a conversation kept as plain JSON; older ones are stored Brotli-compressed (seed: max_snapshots 10).</summary>
    public int MaxSnapshots { get; set; } = 10;

    /// <summary>Snapshots kept per conversation in all; beyond it the oldest is deleted.</summary>
    public int MaxStoredSnapshots { get; set; } = 100;

    /// <summary>Whether every checkpoint also takes a snapshot (label <c>checkpoint N</c>).</summary>
    public bool SnapshotAtCheckpoint { get; set; } = true;
}
