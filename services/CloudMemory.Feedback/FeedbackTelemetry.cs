using System.Diagnostics;
using System.Diagnostics.Metrics;
using CloudMemory.Contracts.Feedback;

namespace CloudMemory.Feedback;

/// <summary>Spans and metrics of the feedback service.</summary>
public static class FeedbackTelemetry
{
    /// <summary>Source and meter name.</summary>
    public const string Name = "CloudMemory.Feedback";

    /// <summary>Spans around learning cycles and experience searches.</summary>
    public static readonly ActivitySource Source = new(Name);

    /// <summary>Metrics.</summary>
    public static readonly Meter Meter = new(Name);

    /// <summary>Feedback records stored (not counting idempotent repeats).</summary>
    public static readonly Counter<long> Recorded = Meter.CreateCounter<long>("cloudmemory.feedback.recorded", null, "feedback records stored");

    /// <summary>Learning cycles run, by decision.</summary>
    public static readonly Counter<long> Cycles = Meter.CreateCounter<long>("cloudmemory.feedback.learning_cycles", null, "learning cycles run");
}
