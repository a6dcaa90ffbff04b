using CloudMemory.Contracts.Feedback;
namespace CloudMemory.Feedback.Features.Analysis;

/// <summary>
/// Maps free-text issues ("the answer was way too long", "太慢了") to a small fixed set of categories
/// by keywords; the category names themselves are accepted as issues too.
/// </summary>
public static class IssueCategories
{
    /// <summary>The answer was longer than wanted.</summary>
    public const string TooLong = "too_long";

    /// <summary>The answer was shorter than wanted.</summary>
    public const string TooShort = "too_short";

    /// <summary>Wrong, inaccurate or made-up content.</summary>
    public const string Accuracy = "accuracy";

    /// <summary>Slow answers or tools.</summary>
    public const string Speed = "speed";

    /// <summary>Off-topic or not what was asked.</summary>
    public const string Relevance = "relevance";

    /// <summary>Tone or politeness.</summary>
    public const string Tone = "tone";

    /// <summary>Layout or format.</summary>
    public const string Format = "format";

    /// <summary>Anything else.</summary>
    public const string Other = "other";

    // Order matters: "took too long" is about speed, so speed is tested before length.
    private static readonly (string Category, string[] Keywords)[] Rules =
    [
        (Speed, ["speed", "speed_concerns", "slow", "latency", "took too long", "takes too long", "taking too long", "timeout", "timed out", "waited", "waiting", "delay", "慢", "超时", "等待"]),
        (TooLong, ["too_long", "response_too_long", "too long", "verbose", "lengthy", "wordy", "rambling", "too much text", "too detailed", "shorter", "太长", "啰嗦", "冗长"]),
        (TooShort, ["too_short", "too short", "too brief", "more detail", "longer", "incomplete", "太短", "不够详细"]),
        (Accuracy, ["accuracy", "accuracy_issues", "inaccurate", "incorrect", "wrong", "error", "mistake", "false", "hallucinat", "made up", "not true", "outdated", "错误", "不准确", "不对"]),
        (Relevance, ["relevance", "irrelevant", "off-topic", "off topic", "not what i asked", "unrelated", "不相关", "答非所问"]),
        (Tone, ["tone", "rude", "impolite", "condescending", "robotic", "语气"]),
        (Format, ["format", "formatting", "markdown", "layout", "格式"]),
    ];

    /// <summary>The category of one issue text.</summary>
    public static string Categorize(string issue)
    {
        var text = issue.Trim().ToLowerInvariant();
        foreach (var (category, keywords) in Rules)
        {
            foreach (var keyword in keywords)
            {
                if (text.Contains(keyword, StringComparison.Ordinal))
                {
                    return category;
                }
            }
        }
        return Other;
    }
}
