using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace CloudMemory.Dapr;

/// <summary>Spans and metrics of the calls CloudMemory makes to its Dapr sidecar.</summary>
public static class DaprTelemetry
{
    /// <summary>Source and meter name.</summary>
    public const string Name = "CloudMemory.Dapr";

    /// <summary>Spans around every sidecar call.</summary>
    public static readonly ActivitySource Source = new(Name);

    /// <summary>Metrics of sidecar calls.</summary>
    public static readonly Meter Meter = new(Name);

    /// <summary>Sidecar call duration (ms), tagged with method and status.</summary>
    public static readonly Histogram<double> CallDuration = Meter.CreateHistogram<double>("cloudmemory.dapr.call.duration", "ms", "Duration of calls to the Dapr sidecar");
}
