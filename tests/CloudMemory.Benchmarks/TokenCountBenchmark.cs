using System.Diagnostics;
using System.Text.Json.Nodes;
using CloudMemory.Conversations.Text;

namespace CloudMemory.Benchmarks;

/// <summary>
/// <c>tokens --data LOCOMO_DIR --chinese SEEDS_DIR [--quick]</c>: what counting a message at write
/// time costs with each <see cref="TokenCounters"/> counter, and how far the estimator's counts are
/// from the tokenizers'. English text: LoCoMo turns (<c>speaker: text</c> pairs rendered as the log
/// renders a turn); Chinese text: the Chinese design documents (lines with CJK characters, markdown
/// marks removed). Cost: µs per 200-character message, over distinct 200-character slices of each
/// corpus, after a warm-up pass. Counts: totals over whole messages, and per-message deviations.
/// </summary>
internal static class TokenCountBenchmark
{
    private const int SliceLength = 200;

    public static async Task<int> RunAsync(string[] args)
    {
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < args.Length; i++)
        {
            var key = args[i].TrimStart('-');
            options[key] = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i] : "";
        }
        if (!options.TryGetValue("data", out var locomo) || !options.TryGetValue("chinese", out var chinese))
        {
            Console.Error.WriteLine("usage: tokens --data LOCOMO_DIR --chinese DIR_OF_CHINESE_MARKDOWN [--quick]");
            return 2;
        }
        var quick = options.ContainsKey("quick");
        var english = await EnglishTurnsAsync(locomo);
        var chineseMessages = await ChineseMessagesAsync(chinese);
        var load = Stopwatch.StartNew();
        var counters = new[] { TokenCounters.O200kBase, TokenCounters.Cl100kBase }.Select(TokenCounters.Create).ToList();
        Console.WriteLine($"tokenizer vocabularies loaded in {load.ElapsedMilliseconds} ms (o200k_base + cl100k_base, once per process)");
        counters.Add(TokenCounters.Estimator);

        Console.WriteLine();
        Console.WriteLine($"cost per message (µs per {SliceLength}-character message, single thread)");
        Console.WriteLine("text    | counter     | µs/message | tokens/message");
        var rounds = quick ? 1 : 5;
        foreach (var (name, corpus) in new[] { ("English", english), ("Chinese", chineseMessages) })
        {
            var slices = Slices(corpus, quick ? 500 : 4000);
            foreach (var counter in counters)
            {
                var (micros, tokens) = Measure(counter, slices, rounds);
                Console.WriteLine($"{name,-7} | {counter.Name,-11} | {micros,10:F2} | {tokens,14:F1}");
            }
        }

        Console.WriteLine();
        Console.WriteLine("counts of whole messages (estimator vs tokenizer)");
        Console.WriteLine("text    | messages | tokenizer   | tokenizer total | estimator total | estimator/tokenizer | per-message estimator/tokenizer p5 / median / p95");
        foreach (var (name, corpus) in new[] { ("English", english), ("Chinese", chineseMessages) })
        {
            var estimated = corpus.Select(m => TokenEstimator.Estimate(m)).ToList();
            foreach (var counter in counters.Where(c => c != TokenCounters.Estimator))
            {
                var counted = corpus.Select(m => (int)(counter.Units(m) / TokenEstimator.UnitsPerToken)).ToList();
                var ratios = estimated.Zip(counted).Where(p => p.Second > 0).Select(p => (double)p.First / p.Second).Order().ToList();
                Console.WriteLine($"{name,-7} | {corpus.Count,8} | {counter.Name,-11} | {counted.Sum(),15} | {estimated.Sum(),15} | {(double)estimated.Sum() / counted.Sum(),19:F3} | "
                    + $"{Percentile(ratios, 0.05):F2} / {Percentile(ratios, 0.5):F2} / {Percentile(ratios, 0.95):F2}");
            }
        }
        return 0;
    }

    private static (double Micros, double Tokens) Measure(ITokenCounter counter, List<string> slices, int rounds)
    {
        long units = 0;
        foreach (var slice in slices)
        {
            units += counter.Units(slice); // warm-up (JIT, the tokenizer's word cache)
        }
        var best = double.MaxValue;
        for (var round = 0; round < rounds; round++)
        {
            var clock = Stopwatch.StartNew();
            foreach (var slice in slices)
            {
                units += counter.Units(slice);
            }
            best = Math.Min(best, clock.Elapsed.TotalMicroseconds / slices.Count);
        }
        return (best, (double)units / (rounds + 1) / slices.Count / TokenEstimator.UnitsPerToken);
    }

    private static List<string> Slices(List<string> corpus, int max)
    {
        var text = string.Join('\n', corpus);
        var slices = new List<string>();
        for (var start = 0; start + SliceLength <= text.Length && slices.Count < max; start += SliceLength)
        {
            var slice = text.Substring(start, SliceLength);
            if (char.IsHighSurrogate(slice[^1]))
            {
                continue;
            }
            slices.Add(slice);
        }
        return slices;
    }

    private static double Percentile(List<double> sorted, double p) =>
        sorted.Count == 0 ? double.NaN : sorted[(int)Math.Min(sorted.Count - 1, Math.Floor(p * sorted.Count))];

    private static async Task<List<string>> EnglishTurnsAsync(string dataDir)
    {
        var turns = new List<string>();
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
                for (var i = 0; i + 1 < texts.Count; i += 2)
                {
                    turns.Add(ConversationText.RenderTurn(texts[i], texts[i + 1]));
                }
            }
        }
        return turns;
    }

    private static async Task<List<string>> ChineseMessagesAsync(string dir)
    {
        var messages = new List<string>();
        foreach (var file in Directory.GetFiles(dir, "*.md").Order(StringComparer.Ordinal))
        {
            var inCode = false;
            foreach (var raw in await File.ReadAllLinesAsync(file))
            {
                if (raw.TrimStart().StartsWith("```", StringComparison.Ordinal))
                {
                    inCode = !inCode;
                    continue;
                }
                var line = raw.Trim().TrimStart('#', '>', '-', '*', ' ', '|').Replace("**", "", StringComparison.Ordinal).Trim();
                if (!inCode && CjkShare(line) >= 0.5 && line.Length >= 8)
                {
                    messages.Add(line);
                }
            }
        }
        return messages;
    }

    private static double CjkShare(string line)
    {
        if (line.Length == 0)
        {
            return 0;
        }
        var cjk = line.Count(c => c is >= '\u4E00' and <= '\u9FFF' or >= '\u3000' and <= '\u303F' or >= '\uFF00' and <= '\uFFEF');
        return (double)cjk / line.Length;
    }
}
