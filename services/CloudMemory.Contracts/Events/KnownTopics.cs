namespace CloudMemory.Contracts.Events;

/// <summary>Every topic CloudMemory publishes (what <c>GET /v1/events?topics=</c> accepts, besides subscribed dead-letter topics).</summary>
public static class KnownTopics
{
    /// <summary>The topic names.</summary>
    public static IReadOnlySet<string> All { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        Topics.TurnWritten,
        Topics.CheckpointCreated,
        Topics.SessionFinalized,
        Topics.SessionUpdated,
        Traces.TraceEvents.ComplianceAlertTopic,
        Feedback.FeedbackTopics.FeedbackRecorded,
        Feedback.FeedbackTopics.StrategyChanged,
        "shared-context-changed",
    };
}
