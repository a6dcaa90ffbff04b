using System.Text;
using System.Text.RegularExpressions;

namespace CloudMemory.Conversations.Summaries;

/// <summary>
/// The built-in summarizer (no network): keeps the sentences that carry what a clinician-style
/// summary needs — symptoms and durations, allergies and history, advice and decisions — chosen
/// by cue words (English and Chinese) and numbers, in conversation order, within a size budget.
/// Cumulative: the previous summary comes first, compacted when the whole grows past the budget.
/// </summary>
public sealed partial class ExtractiveSummarizer : ISummarizer
{
    /// <summary>Budget of the new part, in characters.</summary>
    public const int NewPartBudget = 320;

    /// <summary>Budget of the whole cumulative summary, in characters.</summary>
    public const int TotalBudget = 1200;

    private static readonly string[] Cues =
    [
        "allerg", "过敏", "pain", "ache", "fever", "cough", "symptom", "头痛", "发热", "发烧", "咳", "疼", "痛", "症状",
        "day", "week", "month", "year", "天", "周", "月", "年", "since", "持续",
        "history", "chronic", "surgery", "diabetes", "hypertension", "病史", "慢性", "手术", "高血压", "糖尿病",
        "recommend", "suggest", "advise", "should", "prescrib", "book", "appointment", "建议", "应该", "挂号", "预约", "开药", "就诊",
        "decid", "confirm", "agree", "确认", "决定", "同意", "prefer", "偏好", "喜欢",
    ];

    /// <inheritdoc />
    public string Name => "extractive";

    /// <inheritdoc />
    public Task<string> SummarizeAsync(SummaryInput input, CancellationToken cancellationToken = default)
    {
        var scored = new List<(int Order, double Score, string Text)>();
        var order = 0;
        foreach (var message in input.Messages)
        {
            foreach (var sentence in SplitSentences(message.Query))
            {
                scored.Add((order++, Score(sentence) + 0.5, sentence)); // what the user says weighs more
            }
            foreach (var sentence in SplitSentences(message.Answer))
            {
                scored.Add((order++, Score(sentence), sentence));
            }
        }

        var chosen = new List<(int Order, string Text)>();
        var chosenWords = new List<HashSet<string>>();
        var previousWords = Words(input.PreviousSummary);
        var used = 0;
        foreach (var s in scored.Where(s => s.Score > 0.5).OrderByDescending(s => s.Score).ThenBy(s => s.Order))
        {
            if (used + s.Text.Length > NewPartBudget && chosen.Count > 0)
            {
                continue;
            }
            // Conversations repeat themselves ("still a headache", "any fever?"): a sentence that says
            // nearly what a chosen one, or the previous summary, already says adds nothing.
            var words = Words(s.Text);
            if (chosenWords.Any(w => Similar(w, words)) || (words.Count > 0 && words.IsSubsetOf(previousWords)))
            {
                continue;
            }
            chosen.Add((s.Order, s.Text));
            chosenWords.Add(words);
            used += s.Text.Length;
        }
        if (chosen.Count == 0 && scored.Count > 0)
        {
            chosen.Add((scored[0].Order, Truncate(scored[0].Text, NewPartBudget)));
        }

        var newPart = string.Join(" ", chosen.OrderBy(c => c.Order).Select(c => c.Text));
        var previous = input.PreviousSummary.Trim();
        if (previous.Length + newPart.Length > TotalBudget)
        {
            previous = Truncate(previous, Math.Max(0, TotalBudget - newPart.Length));
        }
        var summary = previous.Length == 0 ? newPart : previous + " " + newPart;
        return Task.FromResult(SummarySafety.EnsureSafetyFacts(summary, input.Profile));
    }

    private static HashSet<string> Words(string text) =>
        WordPattern().Matches(text.ToLowerInvariant()).Select(m => m.Value).ToHashSet(StringComparer.Ordinal);

    // Jaccard similarity of word sets (CJK characters count as words) at or above 0.6.
    private static bool Similar(HashSet<string> a, HashSet<string> b)
    {
        if (a.Count == 0 || b.Count == 0)
        {
            return false;
        }
        var common = a.Count(b.Contains);
        return common / (double)(a.Count + b.Count - common) >= 0.6;
    }

    private static double Score(string sentence)
    {
        var lower = sentence.ToLowerInvariant();
        double score = Cues.Count(c => lower.Contains(c, StringComparison.Ordinal));
        if (DigitPattern().IsMatch(sentence))
        {
            score += 0.5;
        }
        if (sentence.Length < 6)
        {
            score -= 1; // greetings and acknowledgements
        }
        return score;
    }

    private static IEnumerable<string> SplitSentences(string text) =>
        SentencePattern().Split(text).Select(s => s.Trim()).Where(s => s.Length > 0);

    private static string Truncate(string text, int max)
    {
        if (text.Length <= max)
        {
            return text;
        }
        var builder = new StringBuilder(text, 0, Math.Max(0, max - 1), max);
        return builder.Append('…').ToString();
    }

    [GeneratedRegex(@"(?<=[.!?。！？；;])\s*")]
    private static partial Regex SentencePattern();

    [GeneratedRegex(@"[\p{IsCJKUnifiedIdeographs}]|[\p{L}\p{N}]+")]
    private static partial Regex WordPattern();

    [GeneratedRegex(@"\d|[一二三四五六七八九十两]")]
    private static partial Regex DigitPattern();
}
