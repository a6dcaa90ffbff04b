using System.Globalization;
using System.Text.Json.Nodes;
using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Conversations.Summaries;

namespace CloudMemory.Benchmarks;

/// <summary>
/// <c>summary-coverage --data DIR</c>: how much of what a checkpoint summarises the extractive
/// summarizer keeps. Each LoCoMo session is cut into checkpoints of <c>--turns</c> turns (a turn is
/// two consecutive utterances); each checkpoint's summary is made on top of the previous one, bounded
/// like the service bounds it. A turn is represented when the summary contains the first 24
/// characters of one of its sentences (the whole sentence when shorter). Reported: the share of
/// turns represented, per summary budget.
/// </summary>
internal static class SummaryCoverageBenchmark
{
    private const int Probe = 24;

    public static async Task<int> RunAsync(string[] args)
    {
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            options[args[i].TrimStart('-')] = args[i + 1];
        }
        if (!options.TryGetValue("data", out var dataDir))
        {
            Console.Error.WriteLine("usage: summary-coverage --data DIR [--turns 8] [--budgets 187,750,3000]");
            return 2;
        }
        var perCheckpoint = int.Parse(options.GetValueOrDefault("turns", "8"), CultureInfo.InvariantCulture);
        var budgets = options.GetValueOrDefault("budgets", "187,750,3000").Split(',').Select(b => int.Parse(b, CultureInfo.InvariantCulture)).ToArray();
        var sessions = await LoadAsync(dataDir);
        var summarizer = new ExtractiveSummarizer();
        Console.WriteLine($"{sessions.Count} sessions, {sessions.Sum(s => s.Count)} turns, checkpoints of {perCheckpoint} turns");
        Console.WriteLine("budget (tokens) | turns represented | mean summary tokens");
        foreach (var budget in budgets)
        {
            long turns = 0, represented = 0, checkpoints = 0, tokens = 0;
            foreach (var session in sessions)
            {
                var previous = "";
                for (var start = 0; start < session.Count; start += perCheckpoint)
                {
                    var chunk = session.Skip(start).Take(perCheckpoint).ToList();
                    var summary = SummarySafety.Bound(await summarizer.SummarizeAsync(new SummaryInput(previous, chunk, new UserProfile(), budget)), budget, new UserProfile());
                    turns += chunk.Count;
                    represented += chunk.Count(t => Represented(t, summary));
                    tokens += Conversations.Text.TokenEstimator.Estimate(summary);
                    checkpoints++;
                    previous = summary;
                }
            }
            Console.WriteLine($"{budget,15} | {(double)represented / turns,17:P1} | {(double)tokens / checkpoints,19:F0}");
        }
        return 0;
    }

    private static bool Represented(LogMessage turn, string summary) =>
        ExtractiveSummarizer.Sentences(turn.Query).Concat(ExtractiveSummarizer.Sentences(turn.Answer))
            .Any(s => summary.Contains(s.Length <= Probe ? s : s[..Probe], StringComparison.Ordinal));

    private static async Task<List<List<LogMessage>>> LoadAsync(string dataDir)
    {
        var sessions = new List<List<LogMessage>>();
        foreach (var file in Directory.GetFiles(dataDir, "*.json").Order(StringComparer.Ordinal))
        {
            var root = JsonNode.Parse(await File.ReadAllTextAsync(file))!.AsObject();
            var conversation = root["conversation"]?.AsObject() ?? root;
            for (var n = 1; conversation.ContainsKey($"session_{n}") || conversation.ContainsKey($"session_{n}_date_time"); n++)
            {
                if (conversation[$"session_{n}"] is not JsonArray utterances)
                {
                    continue;
                }
                var texts = utterances.Select(u => $"{u!["speaker"]}: {u["text"]}").ToList();
                var turns = new List<LogMessage>();
                for (var i = 0; i < texts.Count; i += 2)
                {
                    turns.Add(new LogMessage($"m{i}", "locomo", i / 2 + 1, null, "u", "", texts[i], i + 1 < texts.Count ? texts[i + 1] : "", false, 0, DateTimeOffset.UnixEpoch));
                }
                sessions.Add(turns);
            }
        }
        return sessions;
    }
}
