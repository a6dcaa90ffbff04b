using System.Text.Json;

namespace CloudMemory.Contracts.Feedback;

/// <summary>Topics and CloudEvent types of the feedback app (component <c>pubsub</c>).</summary>
public static class FeedbackTopics
{
    /// <summary>A feedback record was stored.</summary>
    public const string FeedbackRecorded = "feedback-recorded";

    /// <summary>An agent's strategy changed status (trial started, adopted, rejected).</summary>
    public const string StrategyChanged = "strategy-changed";

    /// <summary>Type of <see cref="FeedbackRecorded"/>.</summary>
    public const string FeedbackRecordedType = "cloudmemory.feedback.recorded.v1";

    /// <summary>Type of <see cref="StrategyChanged"/>.</summary>
    public const string StrategyChangedType = "cloudmemory.strategy.changed.v1";
}

/// <summary>What feedback can be attached to (exactly one per record).</summary>
public static class FeedbackTargetTypes
{
    /// <summary>An agent execution trace.</summary>
    public const string Trace = "trace";

    /// <summary>One step of a trace.</summary>
    public const string Step = "step";

    /// <summary>A conversation (session).</summary>
    public const string Conversation = "conversation";

    /// <summary>A long-term memory entry: its feedback changes the entry's retrieval rank.</summary>
    public const string Memory = "memory";

    /// <summary>An agent as a whole.</summary>
    public const string Agent = "agent";

    /// <summary>Every valid target type.</summary>
    public static IReadOnlySet<string> All { get; } = new HashSet<string>(StringComparer.Ordinal) { Trace, Step, Conversation, Memory, Agent };
}

/// <summary>Who gave the feedback.</summary>
public static class FeedbackKinds
{
    /// <summary>A person (rating, comment, issues, correction).</summary>
    public const string User = "user";

    /// <summary>The system (performance metrics, anomalies).</summary>
    public const string System = "system";

    /// <summary>Inferred from behaviour (retry of a turn, correction, abandonment).</summary>
    public const string Implicit = "implicit";

    /// <summary>Every valid kind.</summary>
    public static IReadOnlySet<string> All { get; } = new HashSet<string>(StringComparer.Ordinal) { User, System, Implicit };
}

/// <summary>The value types a feedback config declares.</summary>
public static class FeedbackValueTypes
{
    /// <summary>A number, optionally bounded by min/max (e.g. a 1–5 rating).</summary>
    public const string Numeric = "numeric";

    /// <summary>One of a fixed list of values, listed best first.</summary>
    public const string Categorical = "categorical";

    /// <summary>true or false.</summary>
    public const string Boolean = "boolean";

    /// <summary>Free text.</summary>
    public const string Text = "text";

    /// <summary>Every valid type.</summary>
    public static IReadOnlySet<string> All { get; } = new HashSet<string>(StringComparer.Ordinal) { Numeric, Categorical, Boolean, Text };
}

/// <summary>The one thing a feedback record is about.</summary>
public sealed record FeedbackTarget(string? Type, string? Id);

/// <summary>
/// <c>POST /v1/feedback</c>. <c>id</c> makes the call idempotent. <c>conversationId</c> (implied by a
/// conversation target) places the feedback in a learning trial's arm; <c>metrics</c> carries system
/// measurements (e.g. <c>latencyMs</c>, <c>responseLength</c>). <c>query</c> is the question the rated
/// thing answered: on a memory target it confines the feedback's effect on retrieval to similar
/// queries; without it, <c>traceId</c> + <c>stepId</c> name the retrieval step whose input query it is.
/// </summary>
public sealed record RecordFeedbackRequest(
    string? Id,
    FeedbackTarget? Target,
    string? AgentId,
    string? Kind,
    string? Name,
    JsonElement Value,
    string? Comment = null,
    IReadOnlyList<string>? Issues = null,
    IReadOnlyList<string>? Suggestions = null,
    string? Correction = null,
    string? ConversationId = null,
    string? StepType = null,
    IReadOnlyDictionary<string, double>? Metrics = null,
    DateTimeOffset? CreatedAt = null,
    string? Query = null,
    string? TraceId = null,
    string? StepId = null);

/// <summary>A stored feedback record. <c>score</c> is the value normalized to [-1, 1] by its config (null for text).</summary>
public sealed record FeedbackRecord(
    string Id,
    FeedbackTarget Target,
    string? AgentId,
    string? ConversationId,
    string? StepType,
    string Kind,
    string Name,
    JsonElement Value,
    double? Score,
    string? Comment,
    IReadOnlyList<string> Issues,
    IReadOnlyList<string> Suggestions,
    string? Correction,
    IReadOnlyDictionary<string, double> Metrics,
    DateTimeOffset CreatedAt,
    DateTimeOffset RecordedAt,
    string? Query = null,
    string? TraceId = null,
    string? StepId = null);

/// <summary>A page of <c>GET /v1/feedback</c>; pass <c>nextCursor</c> as <c>cursor</c> for the next page.</summary>
public sealed record FeedbackPage(IReadOnlyList<FeedbackRecord> Items, string? NextCursor);

/// <summary>
/// <c>PUT /v1/feedback/configs/{name}</c>: what values a feedback name takes. Categorical values are
/// listed best first; <c>higherIsBetter</c> orients numeric and boolean values.
/// </summary>
public sealed record FeedbackConfig(
    string Name,
    string Type,
    double? Min = null,
    double? Max = null,
    IReadOnlyList<string>? Values = null,
    bool HigherIsBetter = true,
    string? Description = null);

/// <summary>Event <c>feedback-recorded</c>.</summary>
public sealed record FeedbackRecorded(
    string TenantId,
    string FeedbackId,
    string TargetType,
    string TargetId,
    string? AgentId,
    string? ConversationId,
    string Kind,
    string Name,
    double? Score,
    IReadOnlyList<string> Issues,
    long OccurredAt,
    string? Query = null);

/// <summary>Event <c>strategy-changed</c>.</summary>
public sealed record StrategyChanged(
    string TenantId,
    string AgentId,
    string StrategyId,
    string StrategyType,
    string Status,
    string? PreviousStatus,
    IReadOnlyDictionary<string, double> Parameters,
    string? CycleId,
    long OccurredAt);

/// <summary>List answer of <c>GET /v1/feedback/configs</c>: the tenant's configs over the built-in ones.</summary>
public sealed record FeedbackConfigList(IReadOnlyList<FeedbackConfig> Items);
