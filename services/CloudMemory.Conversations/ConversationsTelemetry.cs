using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace CloudMemory.Conversations;

/// <summary>Spans and metrics of the message log (every database call) and the summarizers.</summary>
public static class ConversationsTelemetry
{
    /// <summary>Source and meter name.</summary>
    public const string Name = "CloudMemory.Conversations";

    /// <summary>Spans around log calls and summaries.</summary>
    public static readonly ActivitySource Source = new(Name);

    /// <summary>Metrics.</summary>
    public static readonly Meter Meter = new(Name);

    /// <summary>Log call duration (ms), tagged with the operation and store.</summary>
    public static readonly Histogram<double> LogCallDuration = Meter.CreateHistogram<double>("cloudmemory.log.call.duration", "ms", "Duration of message log calls");
}
