using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace CloudMemory.Session;

/// <summary>Spans and metrics of the session service.</summary>
public static class SessionTelemetry
{
    /// <summary>Source and meter name.</summary>
    public const string Name = "CloudMemory.Session";

    /// <summary>Spans around conversation actor operations.</summary>
    public static readonly ActivitySource Source = new(Name);

    /// <summary>Metrics.</summary>
    public static readonly Meter Meter = new(Name);

    /// <summary>Turns written (idempotent retries not counted).</summary>
    public static readonly Counter<long> TurnsWritten = Meter.CreateCounter<long>("cloudmemory.turns.written", "{turn}");

    /// <summary>Checkpoints written, tagged automatic / final.</summary>
    public static readonly Counter<long> CheckpointsCreated = Meter.CreateCounter<long>("cloudmemory.checkpoints.created", "{checkpoint}");

    /// <summary>Sessions rebuilt from the log after their state expired.</summary>
    public static readonly Counter<long> SessionsRebuilt = Meter.CreateCounter<long>("cloudmemory.sessions.rebuilt", "{session}");

    /// <summary>Session snapshots taken, tagged automatic.</summary>
    public static readonly Counter<long> SnapshotsCreated = Meter.CreateCounter<long>("cloudmemory.snapshots.created", "{snapshot}");

    /// <summary>Sessions restored from a snapshot.</summary>
    public static readonly Counter<long> SnapshotsRestored = Meter.CreateCounter<long>("cloudmemory.snapshots.restored", "{restore}");
}
