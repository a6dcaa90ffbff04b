using System.Globalization;
using System.Text.Json;
using CloudMemory.Contracts.Feedback;

namespace CloudMemory.Feedback.Features.Analysis;

/// <summary>Thresholds of pattern detection (<c>CloudMemory:Feedback:Analysis</c>).</summary>
public sealed class AnalysisOptions
{
    /// <summary>Configuration section.</summary>
    public const string SectionName = "CloudMemory:Feedback:Analysis";

    /// <summary>A pattern needs at least this many records behind it.</summary>
    public int MinEvidence { get; set; } = 3;

    /// <summary>…and at least this share of the opinions in the period.</summary>
    public double MinShare { get; set; } = 0.1;

    /// <summary>Negative feedback on answers this much longer (median) than positively rated ones means "too long".</summary>
    public double LengthRatio { get; set; } = 1.25;

    /// <summary>Negative feedback on answers this much slower (median) than positively rated ones means "too slow".</summary>
    public double LatencyRatio { get; set; } = 1.5;

    /// <summary>Most records one analysis reads (newest first).</summary>
    public int MaxRecords { get; set; } = 50_000;
}

/// <summary>
/// Pure analysis of a set of feedback records: distributions, issue categories, trends and the seed
/// §5 patterns. Metrics read: <c>responseLength</c> (characters or tokens, the caller's unit) and
/// <c>latencyMs</c> (or a <c>latency_ms</c> feedback value).
/// </summary>
public static class FeedbackAnalyzer
{
    /// <summary>Metric name of the answer's length.</summary>
    public const string ResponseLengthMetric = "responseLength";

    /// <summary>Metric name of the answer's latency.</summary>
    public const string LatencyMetric = "latencyMs";

    /// <summary>Pattern: answers are too long.</summary>
    public const string ResponseTooLong = "response_too_long";

    /// <summary>Pattern: answers are wrong or corrected.</summary>
    public const string AccuracyIssues = "accuracy_issues";

    /// <summary>Pattern: answers are too slow.</summary>
    public const string SpeedConcerns = "speed_concerns";

    /// <summary>Analyzes <paramref name="records"/> (all inside [since, until)).</summary>
    public static FeedbackAnalysis Analyze(IReadOnlyList<FeedbackRecord> records, Func<string, FeedbackConfig?> configOf, string? agentId, string? stepType,
        DateTimeOffset since, DateTimeOffset until, TimeSpan window, bool truncated, AnalysisOptions options)
    {
        var opinions = records.Where(IsOpinion).ToList();
        var categorized = records.Select(r => (Record: r, Categories: r.Issues.Select(IssueCategories.Categorize).ToHashSet(StringComparer.Ordinal))).ToList();
        var issueCategories = categorized
            .SelectMany(c => c.Categories.Select(category => (category, c.Record)))
            .GroupBy(x => x.category, StringComparer.Ordinal)
            .Select(g => new IssueCategoryCount(g.Key, g.Count(), Share(g.Count(), opinions.Count),
                g.SelectMany(x => x.Record.Issues.Where(i => IssueCategories.Categorize(i) == g.Key)).Distinct(StringComparer.Ordinal).Take(3).ToList()))
            .OrderByDescending(c => c.Count).ThenBy(c => c.Category, StringComparer.Ordinal)
            .ToList();
        int Evidence(string category) => categorized.Count(c => c.Categories.Contains(category));

        var scored = records.Where(r => r.Score is not null).ToList();
        var scores = new ScoreSummary(scored.Count,
            scored.Count == 0 ? null : Math.Round(scored.Average(r => r.Score!.Value), 4),
            scored.Count == 0 ? null : Math.Round(Share(scored.Count(r => r.Score > 0), scored.Count), 4));

        var lengths = Split(records, r => r.Metrics.TryGetValue(ResponseLengthMetric, out var v) ? v : null);
        var latencies = Split(records, Latency);
        var preferredLength = Median(lengths.Positive) is { } good && lengths.Positive.Count >= options.MinEvidence ? (int?)Math.Round(good) : null;

        var tooLongEvidence = Evidence(IssueCategories.TooLong);
        var longer = Ratio(lengths, options.MinEvidence);
        var tooLong = Pattern(ResponseTooLong, tooLongEvidence, opinions.Count, options, "issues about length",
            longer is { } lr && lr >= options.LengthRatio
                ? $"negatively rated answers are {lr:0.##}x the length of positively rated ones (median)"
                : null, Math.Max(lengths.Negative.Count, 0));
        if (tooLong.Detected && preferredLength is null && Median(lengths.Negative) is { } longMedian && lengths.Negative.Count >= options.MinEvidence)
        {
            preferredLength = (int)Math.Round(longMedian * 0.75);
        }

        var accuracyEvidence = categorized.Count(c => c.Categories.Contains(IssueCategories.Accuracy) || !string.IsNullOrWhiteSpace(c.Record.Correction)
            || (c.Record.Name == "correction" && c.Record.Score < 0));
        var accuracy = Pattern(AccuracyIssues, accuracyEvidence, opinions.Count, options, "accuracy issues or corrections", null, 0);

        var slower = Ratio(latencies, options.MinEvidence);
        var speed = Pattern(SpeedConcerns, Evidence(IssueCategories.Speed), opinions.Count, options, "issues about speed",
            slower is { } sr && sr >= options.LatencyRatio
                ? $"negatively rated answers took {sr:0.##}x the latency of positively rated ones (median)"
                : null, latencies.Negative.Count);

        return new FeedbackAnalysis(agentId, stepType, since, until, records.Count, truncated,
            records.GroupBy(r => r.Kind, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal),
            scores, Distributions(records, configOf), issueCategories, Trends(records, since, until, window),
            [tooLong, accuracy, speed], preferredLength);
    }

    private static bool IsOpinion(FeedbackRecord record) =>
        record.Kind != FeedbackKinds.System || record.Score is not null || record.Issues.Count > 0;

    private static DetectedPattern Pattern(string name, int evidence, int opinions, AnalysisOptions options, string what, string? metricReason, int metricEvidence)
    {
        var share = Share(evidence, opinions);
        if (evidence >= options.MinEvidence && share >= options.MinShare)
        {
            return new DetectedPattern(name, true, evidence, Math.Round(share, 4), $"{evidence} of {opinions} opinions ({share:P0}) name {what}");
        }
        if (metricReason is not null)
        {
            return new DetectedPattern(name, true, Math.Max(evidence, metricEvidence), Math.Round(share, 4), metricReason);
        }
        return new DetectedPattern(name, false, evidence, Math.Round(share, 4),
            $"{evidence} of {opinions} opinions name {what}; needs at least {options.MinEvidence} and {options.MinShare:P0}");
    }

    private static double? Latency(FeedbackRecord record) =>
        record.Metrics.TryGetValue(LatencyMetric, out var metric) ? metric
        : record.Name == "latency_ms" && record.Value.ValueKind == JsonValueKind.Number ? record.Value.GetDouble()
        : null;

    private static (List<double> Positive, List<double> Negative) Split(IReadOnlyList<FeedbackRecord> records, Func<FeedbackRecord, double?> metric)
    {
        var positive = new List<double>();
        var negative = new List<double>();
        foreach (var record in records)
        {
            if (metric(record) is not { } value)
            {
                continue;
            }
            var longIssue = record.Issues.Any(i => IssueCategories.Categorize(i) is IssueCategories.TooLong or IssueCategories.Speed);
            if (record.Score > 0 && !longIssue)
            {
                positive.Add(value);
            }
            else if (record.Score < 0 || longIssue)
            {
                negative.Add(value);
            }
        }
        return (positive, negative);
    }

    private static double? Ratio((List<double> Positive, List<double> Negative) split, int minEvidence) =>
        split.Positive.Count >= minEvidence && split.Negative.Count >= minEvidence && Median(split.Positive) is > 0 and var good
            ? Median(split.Negative)!.Value / good
            : null;

    private static double? Median(List<double> values)
    {
        if (values.Count == 0)
        {
            return null;
        }
        var sorted = values.Order().ToList();
        var mid = sorted.Count / 2;
        return sorted.Count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    private static double Share(int part, int whole) => whole == 0 ? 0 : (double)part / whole;

    private static List<ValueDistribution> Distributions(IReadOnlyList<FeedbackRecord> records, Func<string, FeedbackConfig?> configOf)
    {
        var result = new List<ValueDistribution>();
        foreach (var group in records.GroupBy(r => r.Name, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var type = configOf(group.Key)?.Type ?? FeedbackValueTypes.Text;
            if (type == FeedbackValueTypes.Text)
            {
                continue;
            }
            var counts = new SortedDictionary<string, int>(StringComparer.Ordinal);
            var numbers = new List<double>();
            foreach (var record in group)
            {
                var key = record.Value.ValueKind switch
                {
                    JsonValueKind.Number => record.Value.GetDouble().ToString("0.###", CultureInfo.InvariantCulture),
                    JsonValueKind.True => "true",
                    JsonValueKind.False => "false",
                    JsonValueKind.String => record.Value.GetString()!,
                    _ => record.Value.GetRawText(),
                };
                counts[key] = counts.GetValueOrDefault(key) + 1;
                if (record.Value.ValueKind == JsonValueKind.Number)
                {
                    numbers.Add(record.Value.GetDouble());
                }
            }
            result.Add(new ValueDistribution(group.Key, type, group.Count(), numbers.Count == 0 ? null : Math.Round(numbers.Average(), 4), counts));
        }
        return result;
    }

    private static List<TrendWindow> Trends(IReadOnlyList<FeedbackRecord> records, DateTimeOffset since, DateTimeOffset until, TimeSpan window)
    {
        var count = (int)Math.Ceiling((until - since) / window);
        var buckets = new List<FeedbackRecord>[count];
        for (var i = 0; i < count; i++)
        {
            buckets[i] = [];
        }
        foreach (var record in records)
        {
            var index = (int)((record.CreatedAt - since) / window);
            if (index >= 0 && index < count)
            {
                buckets[index].Add(record);
            }
        }
        return buckets.Select((bucket, i) =>
        {
            var scored = bucket.Where(r => r.Score is not null).ToList();
            var start = since + window * i;
            var end = start + window < until ? start + window : until;
            return new TrendWindow(start, end, bucket.Count,
                scored.Count == 0 ? null : Math.Round(scored.Average(r => r.Score!.Value), 4),
                scored.Count == 0 ? null : Math.Round(Share(scored.Count(r => r.Score > 0), scored.Count), 4),
                bucket.Sum(r => r.Issues.Count));
        }).ToList();
    }
}
