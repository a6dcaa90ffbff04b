namespace CloudMemory.Contracts.Feedback;

/// <summary>
/// What a task was. <c>description</c> alone is enough (intent and entities are extracted from it);
/// explicit <c>intent</c>, <c>entities</c>, <c>tools</c> and <c>steps</c> (step types in order) win.
/// </summary>
public sealed record TaskContext(
    string? Description = null,
    string? Intent = null,
    IReadOnlyList<string>? Entities = null,
    IReadOnlyList<string>? Tools = null,
    IReadOnlyList<string>? Steps = null,
    IReadOnlyDictionary<string, string>? Metadata = null);

/// <summary>How the task went.</summary>
public sealed record ExecutionResult(bool? Success, string? TraceId = null, double? DurationMs = null, double? Cost = null, string? Summary = null);

/// <summary>What the user said about it (rating 1–5 and/or text).</summary>
public sealed record ExperienceFeedback(double? Rating = null, string? Comment = null, IReadOnlyList<string>? Issues = null);

/// <summary>
/// <c>POST /v1/experiences</c>; <c>id</c> makes it idempotent. <c>conversationId</c> and <c>userId</c>
/// say whose task it was (the conversation is taken from the referenced trace when not given), so
/// deleting the conversation or erasing the user erases the experience too.
/// </summary>
public sealed record RecordExperienceRequest(string? Id, string? AgentId, TaskContext? TaskContext, ExecutionResult? Result, ExperienceFeedback? Feedback = null,
    string? ConversationId = null, string? UserId = null);

/// <summary>The normalized shape of a task that similar tasks share. <c>key</c> identifies the exact pattern.</summary>
public sealed record TaskPattern(string Intent, IReadOnlyList<string> Entities, IReadOnlyList<string> Tools, IReadOnlyList<string> Steps, string Key);

/// <summary>A stored experience.</summary>
public sealed record Experience(
    string Id,
    string? AgentId,
    TaskContext TaskContext,
    ExecutionResult Result,
    ExperienceFeedback? Feedback,
    TaskPattern Pattern,
    DateTimeOffset RecordedAt,
    string? ConversationId = null,
    string? UserId = null);

/// <summary>Running totals of one pattern: the success rate search ranks by.</summary>
public sealed record PatternStats(
    TaskPattern Pattern,
    int Attempts,
    int Successes,
    double DurationSum,
    int DurationCount,
    double CostSum,
    int CostCount,
    string? LastSuccessId,
    string? LastFailureId);

/// <summary><c>POST /v1/experiences/search</c>.</summary>
public sealed record SearchExperiencesRequest(TaskContext? TaskContext, double? MinSimilarity = null, int? TopK = null);

/// <summary>How each part of the pattern matched.</summary>
public sealed record PatternMatch(double Intent, double Entities, double Tools, double Steps, IReadOnlyList<string> SharedEntities, IReadOnlyList<string> SharedTools);

/// <summary>
/// One similar past pattern: its similarity, success rate (smoothed: (successes + 1) / (attempts + 2)),
/// the ranking score (similarity × smoothed success rate), why it matched, and the latest run that
/// worked and the latest that failed.
/// </summary>
public sealed record SimilarExperience(
    TaskPattern Pattern,
    double Similarity,
    double SuccessRate,
    int Attempts,
    int Successes,
    double? AverageDurationMs,
    double? AverageCost,
    double Score,
    string Reason,
    PatternMatch Match,
    Experience? LastSuccess,
    Experience? LastFailure);

/// <summary>The answer of a search.</summary>
public sealed record SimilarExperiences(TaskPattern Query, IReadOnlyList<SimilarExperience> Items, int CandidatesScored);
