using CloudMemory.Contracts.Feedback;
namespace CloudMemory.Feedback.Features.Learning;

/// <summary>The learning loop's settings (<c>CloudMemory:Feedback:Learning</c>).</summary>
public sealed class LearningOptions
{
    /// <summary>Configuration section.</summary>
    public const string SectionName = "CloudMemory:Feedback:Learning";

    /// <summary>The feedback name whose score is the outcome (a conversation is satisfied when its mean score is above 0).</summary>
    public string Metric { get; set; } = "rating";

    /// <summary>Share of the agent's conversations that get a trial's strategy (the rest are the control).</summary>
    public double TrialShare { get; set; } = 0.5;

    /// <summary><see cref="Test"/> value: Fisher's exact test on satisfied conversations (the default).</summary>
    public const string FisherExactTest = "fisher-exact";

    /// <summary><see cref="Test"/> value: Mann-Whitney U on each conversation's mean score (graded metrics).</summary>
    public const string MannWhitneyTest = "mann-whitney";

    /// <summary>The decision's test: <see cref="FisherExactTest"/> or <see cref="MannWhitneyTest"/>.</summary>
    public string Test { get; set; } = FisherExactTest;

    /// <summary>Significance level of the one-sided test; also the long-run false-adoption rate when nothing is better.</summary>
    public double Alpha { get; set; } = 0.05;

    /// <summary>
    /// Conversations with outcome feedback each arm needs before the one decision is taken. The
    /// test runs once, at this horizon (no peeking), so its error rate is <see cref="Alpha"/>.
    /// </summary>
    public int MinConversationsPerArm { get; set; } = 100;

    /// <summary>A trial that has not reached the horizon by then is rejected (rolled back).</summary>
    public TimeSpan MaxTrialDuration { get; set; } = TimeSpan.FromDays(14);

    /// <summary>How much recent feedback a cycle analyzes for proposals.</summary>
    public TimeSpan Lookback { get; set; } = TimeSpan.FromDays(7);

    /// <summary>A rejected strategy type is not proposed again for this long.</summary>
    public TimeSpan RejectionCooldown { get; set; } = TimeSpan.FromDays(7);

    /// <summary>maxLength proposed for "too long" when the feedback carries no lengths.</summary>
    public int DefaultMaxLength { get; set; } = 400;

    /// <summary>Scheduled cycles: every agent with feedback in <see cref="Lookback"/> gets one per interval. Zero disables.</summary>
    public TimeSpan ScheduleInterval { get; set; } = TimeSpan.FromHours(1);
}
