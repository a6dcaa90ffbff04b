namespace CloudMemory.Contracts.Feedback;

/// <summary>The answer of <c>GET /v1/feedback/analysis</c>.</summary>
public sealed record FeedbackAnalysis(
    string? AgentId,
    string? StepType,
    DateTimeOffset Since,
    DateTimeOffset Until,
    int FeedbackCount,
    bool Truncated,
    IReadOnlyDictionary<string, int> ByKind,
    ScoreSummary Scores,
    IReadOnlyList<ValueDistribution> Distributions,
    IReadOnlyList<IssueCategoryCount> IssueCategories,
    IReadOnlyList<TrendWindow> Trends,
    IReadOnlyList<DetectedPattern> Patterns,
    int? PreferredLength);

/// <summary>Normalized scores ([-1, 1]) of the records that have one.</summary>
public sealed record ScoreSummary(int Count, double? Mean, double? PositiveShare);

/// <summary>How often each value of one feedback name was given (numbers by value, categories by label).</summary>
public sealed record ValueDistribution(string Name, string Type, int Count, double? Mean, IReadOnlyDictionary<string, int> Counts);

/// <summary>How many records named an issue of <c>category</c>, and a few of their words.</summary>
public sealed record IssueCategoryCount(string Category, int Count, double Share, IReadOnlyList<string> Examples);

/// <summary>One time window of the trend.</summary>
public sealed record TrendWindow(DateTimeOffset Start, DateTimeOffset End, int Count, double? MeanScore, double? PositiveShare, int IssueCount);

/// <summary>
/// A seed §5 pattern (<c>response_too_long</c>, <c>accuracy_issues</c>, <c>speed_concerns</c>) with
/// the numbers that decided it.
/// </summary>
public sealed record DetectedPattern(string Name, bool Detected, int Evidence, double Share, string Reason);
