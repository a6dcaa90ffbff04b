using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace CloudMemory.Trace;

/// <summary>Spans and metrics of the trace service.</summary>
public static class TraceTelemetry
{
    /// <summary>Source and meter name.</summary>
    public const string Name = "CloudMemory.Trace";

    /// <summary>Spans around store writes and reads.</summary>
    public static readonly ActivitySource Source = new(Name);

    /// <summary>Metrics.</summary>
    public static readonly Meter Meter = new(Name);

    /// <summary>Steps made durable.</summary>
    public static readonly Counter<long> StepsStored = Meter.CreateCounter<long>("cloudmemory.trace.steps_stored", "{step}", "steps newly stored");

    /// <summary>Store writes that failed and were retried.</summary>
    public static readonly Counter<long> StoreRetries = Meter.CreateCounter<long>("cloudmemory.trace.store_retries", "{attempt}", "failed store writes that were retried");

    /// <summary>Steps per store write (group commit size).</summary>
    public static readonly Histogram<int> BatchSize = Meter.CreateHistogram<int>("cloudmemory.trace.batch_size", "{step}", "steps per store write");
}
