
namespace CloudMemory.Contracts.Feedback;

/// <summary>Statuses of a strategy.</summary>
public static class StrategyStatuses
{
    /// <summary>Derived from feedback, not tried yet.</summary>
    public const string Proposed = "proposed";

    /// <summary>Given to a share of the agent's conversations; the rest are the control.</summary>
    public const string Trial = "trial";

    /// <summary>The trial showed a lift with the stated confidence: every conversation gets it.</summary>
    public const string Adopted = "adopted";

    /// <summary>The trial did not show a lift (rolled back).</summary>
    public const string Rejected = "rejected";

    /// <summary>Replaced by a newer strategy of the same type (or a newer proposal).</summary>
    public const string Superseded = "superseded";
}

/// <summary>Kinds of strategies (seed §5 BehaviorOptimizer).</summary>
public static class StrategyTypes
{
    /// <summary>Shorter answers (from <c>response_too_long</c>); parameter <c>maxLength</c>.</summary>
    public const string ResponseLength = "response_length";

    /// <summary>Verify before answering (from <c>accuracy_issues</c>); parameter <c>verificationThreshold</c>.</summary>
    public const string AccuracyVerification = "accuracy_verification";

    /// <summary>Prefer fast tools (from <c>speed_concerns</c>); parameter <c>preferFastTools</c>.</summary>
    public const string ToolSpeed = "tool_speed";

    /// <summary>CloudMemory's own context parameters (from <c>accuracy_issues</c>): <c>recentTurns</c>, <c>tokenThresholdRatio</c>.</summary>
    public const string SummaryParameters = "summary_parameters";
}

/// <summary>The feedback behind a strategy.</summary>
public sealed record StrategyEvidence(string Pattern, int Evidence, double Share, int FeedbackCount, string Reason);

/// <summary>One arm of a trial: conversations with outcome feedback and how many were satisfied.</summary>
public sealed record ArmResult(int Conversations, int Successes, double Rate);

/// <summary>
/// The measurement of a trial: the outcome is the share of satisfied conversations (mean score of
/// the metric feedback &gt; 0) in each arm, decided by a one-sided Fisher exact test (or Mann-Whitney U on
/// the conversations' mean scores when configured); <c>Z</c> is the two-proportion z for reference.
/// </summary>
public sealed record TrialResult(
    string Metric,
    string Test,
    ArmResult Control,
    ArmResult Treatment,
    double Lift,
    double LiftLow,
    double LiftHigh,
    double Confidence,
    double Z,
    double PValue,
    double Alpha,
    string Decision,
    string Reason);

/// <summary>A strategy of an agent with its parameters, evidence, status and (once decided) its trial result.</summary>
public sealed record Strategy(
    string Id,
    string AgentId,
    string Type,
    string Action,
    IReadOnlyDictionary<string, double> Parameters,
    StrategyEvidence Evidence,
    string Status,
    double TrialShare,
    string CycleId,
    DateTimeOffset CreatedAt,
    DateTimeOffset? TrialStartedAt = null,
    DateTimeOffset? DecidedAt = null,
    TrialResult? Result = null);

/// <summary>
/// <c>GET /v1/agents/{agentId}/strategy</c>: the parameters to use (adopted ones, plus the trial's
/// when <c>conversationId</c> falls in the treatment arm), and the strategies behind them.
/// </summary>
public sealed record AgentStrategy(
    string AgentId,
    IReadOnlyDictionary<string, double> Parameters,
    string? Arm,
    IReadOnlyList<Strategy> Adopted,
    Strategy? Trial,
    IReadOnlyList<Strategy> Proposed);

/// <summary>Decisions a cycle can end with.</summary>
public static class CycleDecisions
{
    /// <summary>Nothing in the feedback called for a change.</summary>
    public const string NoOpportunity = "no_opportunity";

    /// <summary>A proposed strategy went into trial.</summary>
    public const string TrialStarted = "trial_started";

    /// <summary>The running trial has too few conversations yet.</summary>
    public const string TrialContinues = "trial_continues";

    /// <summary>The trial's strategy was adopted.</summary>
    public const string Adopted = "adopted";

    /// <summary>The trial's strategy was rejected and rolled back.</summary>
    public const string Rejected = "rejected";
}

/// <summary>One learning cycle: what it read, proposed, measured and decided.</summary>
public sealed record LearningCycle(
    string Id,
    string AgentId,
    DateTimeOffset StartedAt,
    DateTimeOffset CompletedAt,
    int FeedbackCount,
    IReadOnlyList<DetectedPattern> Patterns,
    IReadOnlyList<string> ProposedStrategyIds,
    string? TrialStrategyId,
    TrialResult? Evaluation,
    IReadOnlyList<string> Decisions,
    string Summary);

/// <summary>A page of cycle history, newest first.</summary>
public sealed record LearningCyclePage(IReadOnlyList<LearningCycle> Items);

/// <summary><c>POST /v1/learning/cycles</c>: run a cycle for <c>agentId</c> now; <c>cycleId</c> makes it idempotent.</summary>
public sealed record RunLearningCycleRequest(string? AgentId, string? CycleId = null);
