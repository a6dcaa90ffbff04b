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
    /// <summary>The default budget of the whole cumulative summary (300 tokens: 1 200 Latin characters).</summary>
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
    /// <remarks>
    /// Within <see cref="SummaryInput.MaxTokens"/> (the previous summary keeps at most half): first
    /// every sentence about allergies (safety facts), then one key sentence per turn — the turn's
    /// best-scoring sentence, cut to a fair share of the budget when long — so that every turn it
    /// summarises is represented while the budget lasts; then the best remaining sentences.
    /// </remarks>
    public Task<string> SummarizeAsync(SummaryInput input, CancellationToken cancellationToken = default)
    {
        var budget = (long)Math.Max(1, input.MaxTokens) * Text.TokenEstimator.UnitsPerToken;
        var previous = input.PreviousSummary.Trim();
        var newBudget = budget - Math.Min(Text.TokenEstimator.Units(previous), budget / 2) - 1;

        var turns = new List<List<(int Order, double Score, string Text)>>();
        var order = 0;
        foreach (var message in input.Messages)
        {
            var sentences = new List<(int Order, double Score, string Text)>();
            foreach (var sentence in SplitSentences(message.Query))
            {
                sentences.Add((order++, Score(sentence) + 0.5, sentence)); // what the user says weighs more
            }
            foreach (var sentence in SplitSentences(message.Answer))
            {
                sentences.Add((order++, Score(sentence), sentence));
            }
            turns.Add(sentences);
        }

        var chosen = new List<(int Order, string Text)>();
        var chosenWords = new List<HashSet<string>>();
        var previousWords = Words(previous);
        long used = 0;
        bool Redundant(HashSet<string> words) => chosenWords.Any(w => Similar(w, words)) || (words.Count > 0 && words.IsSubsetOf(previousWords));
        void Choose(int sentenceOrder, string text)
        {
            chosen.Add((sentenceOrder, text));
            chosenWords.Add(Words(text));
            used += Text.TokenEstimator.Units(text) + 1;
        }

        // 1. Safety facts first.
        foreach (var s in turns.SelectMany(t => t).Where(s => SafetyCues.Any(c => s.Text.Contains(c, StringComparison.OrdinalIgnoreCase))))
        {
            var units = Text.TokenEstimator.Units(s.Text) + 1;
            if (used + units <= newBudget && !Redundant(Words(s.Text)))
            {
                Choose(s.Order, s.Text);
            }
        }

        // 2. One key sentence per turn that is not yet represented: its best sentence that says something new.
        var keys = new List<(int Order, string Text)>();
        foreach (var turn in turns)
        {
            if (turn.Any(s => chosen.Any(c => c.Order == s.Order)))
            {
                continue;
            }
            var key = turn.Where(s => !Redundant(Words(s.Text))).OrderByDescending(s => s.Text.Length >= 12).ThenByDescending(s => s.Score).ThenBy(s => s.Order).FirstOrDefault(); // greetings last
            if (key.Text is not null)
            {
                keys.Add((key.Order, key.Text));
                chosenWords.Add(Words(key.Text)); // a later turn saying the same adds nothing
            }
        }
        chosenWords.RemoveRange(chosenWords.Count - keys.Count, keys.Count);
        // Fair shares: short key sentences stay whole, long ones split what is left (never below MinKeyUnits).
        var remaining = Math.Max(0, newBudget - used);
        var shares = new long[keys.Count];
        var left = keys.Count;
        foreach (var i in Enumerable.Range(0, keys.Count).OrderBy(i => Text.TokenEstimator.Units(keys[i].Text)))
        {
            var fair = Math.Max(MinKeyUnits, remaining / Math.Max(1, left--));
            shares[i] = Math.Min(Text.TokenEstimator.Units(keys[i].Text) + 1, fair);
            remaining -= shares[i];
        }
        for (var i = 0; i < keys.Count; i++)
        {
            if (used + Math.Min(shares[i], MinKeyUnits) > newBudget)
            {
                break; // the budget is spent: later turns are not represented
            }
            Choose(keys[i].Order, TruncateUnits(keys[i].Text, Math.Min(shares[i], newBudget - used) - 1));
        }

        // 3. The best remaining sentences while they fit.
        foreach (var s in turns.SelectMany(t => t).Where(s => s.Score > 0.5 && chosen.All(c => c.Order != s.Order)).OrderByDescending(s => s.Score).ThenBy(s => s.Order))
        {
            var units = Text.TokenEstimator.Units(s.Text) + 1;
            var words = Words(s.Text);
            if (used + units <= newBudget && !Redundant(words))
            {
                Choose(s.Order, s.Text);
            }
        }
        if (chosen.Count == 0 && turns.SelectMany(t => t).FirstOrDefault() is { Text: not null } first)
        {
            chosen.Add((first.Order, TruncateUnits(first.Text, Math.Max(1, newBudget))));
        }

        var newPart = string.Join(" ", chosen.OrderBy(c => c.Order).Select(c => c.Text));
        var room = budget - Text.TokenEstimator.Units(newPart) - 1;
        if (Text.TokenEstimator.Units(previous) > room)
        {
            previous = TruncateUnits(previous, Math.Max(0, room));
        }
        var summary = previous.Length == 0 ? newPart : newPart.Length == 0 ? previous : previous + " " + newPart;
        return Task.FromResult(SummarySafety.EnsureSafetyFacts(summary, input.Profile));
    }

    // A key sentence keeps at least this many units (about 10 words) or it says nothing.
    private const long MinKeyUnits = 48;

    private static readonly string[] SafetyCues = ["allerg", "过敏", "anaphyla"];

    // Cuts text to at most maxUnits units, ending with '…' when cut.
    private static string TruncateUnits(string text, long maxUnits)
    {
        if (Text.TokenEstimator.Units(text) <= maxUnits)
        {
            return text;
        }
        long units = 1;
        var length = 0;
        while (length < text.Length && units + Text.TokenEstimator.Units(text.AsSpan(length, 1)) <= maxUnits)
        {
            units += Text.TokenEstimator.Units(text.AsSpan(length, 1));
            length++;
        }
        if (length > 0 && char.IsHighSurrogate(text[length - 1]))
        {
            length--;
        }
        return text[..length].TrimEnd() + "…";
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

    /// <summary>The sentences of a text, as the summarizer splits them.</summary>
    public static IEnumerable<string> Sentences(string text) => SplitSentences(text);

    private static IEnumerable<string> SplitSentences(string text) =>
        SentencePattern().Split(text).Select(s => s.Trim()).Where(s => s.Length > 0);

    [GeneratedRegex(@"(?<=[.!?。！？；;])\s*")]
    private static partial Regex SentencePattern();

    [GeneratedRegex(@"[\p{IsCJKUnifiedIdeographs}]|[\p{L}\p{N}]+")]
    private static partial Regex WordPattern();

    [GeneratedRegex(@"\d|[一二三四五六七八九十两]")]
    private static partial Regex DigitPattern();
}
