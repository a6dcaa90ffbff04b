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
}
