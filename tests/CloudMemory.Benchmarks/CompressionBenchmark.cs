using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Conversations.Compression;
using CloudMemory.Conversations.Summaries;
using CloudMemory.Conversations.Text;
using CloudMemory.Session.Features.Snapshots;

namespace CloudMemory.Benchmarks;

/// <summary>
/// How much of what later questions need survives compression (issue 13), on the LoCoMo
/// conversations: each conversation is compressed to <c>--ratio</c> (default 0.3) of its tokens by
/// importance, recency truncation, uniform sampling and the checkpoint summary alone. Reported per
/// method: the share of QA evidence turns whose fact survives (rule in docs/compression.md), the
/// share kept verbatim, and BM25 recall@5 over the compressed turns against the original ones. Also:
/// compression time per 1,000 messages, snapshot size before/after Brotli, restore latency.
/// </summary>
internal static class CompressionBenchmark
{
    private static readonly string[] Methods = ["importance", "recency", "uniform", "summary"];

    public static async Task<int> RunAsync(string[] args)
    {
        var options = ParseOptions(args);
        var dataDir = options.GetValueOrDefault("data") ?? Path.Combine("..", "shared", "bench", "locomo");
        if (!Directory.Exists(dataDir))
        {
            Console.Error.WriteLine($"usage: compression [--data DIR] [--ratio 0.3] [--quick] [--json FILE] [--verbatim-share 0.15] [--length-exponent 0] [--coherence-boost 1] [--conversations 26,30] [--specificity 0] [--date-boost 1] [--reaction 1] [--novelty 1] [--description 1.3] [--keep-repeated-words] [--keep-names] [--opening 2] [--keep-hedges] [--tokenizer o200k_base|cl100k_base|estimate] [--show-misses] [--dump] [--diagnose]  ({dataDir} not found)");
            return 2;
        }
        var ratio = options.TryGetValue("ratio", out var r) ? double.Parse(r, CultureInfo.InvariantCulture) : 0.3;
        var quick = options.ContainsKey("quick");
        // --conversations 41,42,43: only those files (to report a figure on conversations not used for tuning).
        var only = options.TryGetValue("conversations", out var c) ? c.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal) : null;
        var files = Directory.GetFiles(dataDir, "*.json").Order(StringComparer.Ordinal)
            .Where(f => only is null || only.Contains(Path.GetFileNameWithoutExtension(f))).Take(quick ? 2 : int.MaxValue).ToList();
        var conversations = files.Select(Load).ToList();
        // Tokens are the model's (o200k_base, CloudMemory's default tokenizer) unless --tokenizer says otherwise;
        // "estimate" counts a quarter token per character, as the figures of the first six stops did.
        var counter = TokenCounters.Create(options.GetValueOrDefault("tokenizer") ?? TokenCounters.O200kBase);
        var defaults = new MessageCompressor(new ImportanceEvaluator());
        var compressor = new MessageCompressor(new ImportanceEvaluator())
        {
            Counter = counter,
            VerbatimShare = options.TryGetValue("verbatim-share", out var vs) ? double.Parse(vs, CultureInfo.InvariantCulture) : defaults.VerbatimShare,
            LengthExponent = options.TryGetValue("length-exponent", out var le) ? double.Parse(le, CultureInfo.InvariantCulture) : defaults.LengthExponent,
            CoherenceBoost = options.TryGetValue("coherence-boost", out var cb) ? double.Parse(cb, CultureInfo.InvariantCulture) : defaults.CoherenceBoost,
            SpecificityWeight = options.TryGetValue("specificity", out var sw) ? double.Parse(sw, CultureInfo.InvariantCulture) : defaults.SpecificityWeight,
            DateBoost = options.TryGetValue("date-boost", out var db) ? double.Parse(db, CultureInfo.InvariantCulture) : defaults.DateBoost,
            ReactionFactor = options.TryGetValue("reaction", out var rf) ? double.Parse(rf, CultureInfo.InvariantCulture) : defaults.ReactionFactor,
            NoveltyWeight = options.TryGetValue("novelty", out var nw) ? double.Parse(nw, CultureInfo.InvariantCulture) : defaults.NoveltyWeight,
            DescriptionFactor = options.TryGetValue("description", out var df) ? double.Parse(df, CultureInfo.InvariantCulture) : defaults.DescriptionFactor,
            OmitRepeatedWords = !options.ContainsKey("keep-repeated-words") && defaults.OmitRepeatedWords,
            OmitAddressedNames = !options.ContainsKey("keep-names") && defaults.OmitAddressedNames,
            OpeningFactor = options.TryGetValue("opening", out var op) ? double.Parse(op, CultureInfo.InvariantCulture) : defaults.OpeningFactor,
            OmitHedges = !options.ContainsKey("keep-hedges") && defaults.OmitHedges,
        };
        var summarizer = new ExtractiveSummarizer();

        var evidence = Methods.ToDictionary(m => m, _ => (Kept: 0, Verbatim: 0, Total: 0));
        var recall = Methods.ToDictionary(m => m, _ => new List<double>());
        var originalRecall = new List<double>();
        var keptShare = Methods.ToDictionary(m => m, _ => new List<double>());
        var misses = Methods.ToDictionary(m => m, _ => (Dropped: 0, Partial: 0)); // evidence lost: the turn dropped, or kept without every key token
        long compressTicks = 0;
        var messagesCompressed = 0;
        if (conversations.Count > 0)
        {
            compressor.Compress(conversations[0].Messages, Units(conversations[0].Messages, counter) / 3); // warm-up: the timing leaves out JIT compilation
        }
        foreach (var conversation in conversations)
        {
            var units = Units(conversation.Messages, counter);
            var target = (long)(ratio * units);
            var original = conversation.Messages.Select(m => m.Content).ToList();
            var kept = new Dictionary<string, string[]>(StringComparer.Ordinal);

            var clock = Stopwatch.StartNew();
            var compressed = compressor.Compress(conversation.Messages, target, keepLastTurn: true);
            compressTicks += clock.ElapsedTicks;
            messagesCompressed += conversation.Messages.Count;
            if (compressed.KeptUnits > target)
            {
                throw new InvalidOperationException($"conversation {conversation.Id}: compressed to {compressed.KeptUnits} units, over its budget of {target}");
            }
            if (options.ContainsKey("diagnose"))
            {
                var overhead = compressed.Messages.Sum(m => counter.Units(ConversationText.RenderMessage(m with { Content = "" })) + 1);
                var evidenceIds = conversation.Questions.SelectMany(q => q.Evidence).Where(conversation.IndexOf.ContainsKey).Select(id => conversation.IndexOf[id]).ToHashSet();
                Console.Error.WriteLine($"DIAG {conversation.Id}: {compressed.Messages.Count}/{conversation.Messages.Count} messages kept, target {target} units, overhead {overhead} ({(double)overhead / target:P0}), evidence turns {evidenceIds.Count}, appearing {evidenceIds.Count(compressed.SourceIndexes.Contains)}");
            }
            if (options.ContainsKey("dump"))
            {
                // Every kept message, E when it is an evidence turn of some question: where the budget went.
                var evidenceIds = conversation.Questions.SelectMany(q => q.Evidence).Where(conversation.IndexOf.ContainsKey).Select(id => conversation.IndexOf[id]).ToHashSet();
                for (var k = 0; k < compressed.Messages.Count; k++)
                {
                    Console.Error.WriteLine($"DUMP {conversation.Id} {(evidenceIds.Contains(compressed.SourceIndexes[k]) ? "E" : "-")} {compressed.Messages[k].Content.Length,4} {compressed.Messages[k].Role}: {compressed.Messages[k].Content}");
                }
            }
            kept["importance"] = PerMessage(conversation.Messages.Count, compressed.SourceIndexes, compressed.Messages.Select(m => m.Content).ToList());
            kept["recency"] = Recency(conversation.Messages, target, counter);
            kept["uniform"] = Uniform(conversation.Messages, target, counter);
            // The summarizer bounds its text with the estimator: its budget is the target converted as this conversation converts.
            var summaryBudget = (long)(target * ((double)Units(conversation.Messages, TokenCounters.Estimator) / units));
            var summary = await summarizer.SummarizeAsync(new SummaryInput("", AsLog(conversation), new UserProfile(), TokenEstimator.TokensFromUnits(summaryBudget)));
            kept["summary"] = conversation.Messages.Select(_ => summary).ToArray();
            var summarySentences = TextSignals.Sentences(summary).ToList(); // a fact survives in the summary as one sentence

            foreach (var method in Methods)
            {
                var texts = kept[method];
                var size = method == "summary" ? counter.Units(summary) : Units(texts.Select((t, i) => conversation.Messages[i] with { Content = t }).Where(m => m.Content.Length > 0).ToList(), counter);
                keptShare[method].Add((double)size / units);
                foreach (var qa in conversation.Questions)
                {
                    foreach (var id in qa.Evidence)
                    {
                        if (!conversation.IndexOf.TryGetValue(id, out var index))
                        {
                            continue;
                        }
                        var e = evidence[method];
                        e.Total++;
                        if (method == "summary" ? summarySentences.Any(sentence => Survives(original[index], sentence, qa.Answer, keyOnly: true)) : Survives(original[index], texts[index], qa.Answer))
                        {
                            e.Kept++;
                        }
                        else if (method != "summary")
                        {
                            if (method == "importance" && options.ContainsKey("show-misses"))
                            {
                                Console.Error.WriteLine($"MISS [{qa.Answer}] {original[index]}\n   KEPT: {texts[index]}");
                            }
                            misses[method] = texts[index].Length == 0 ? (misses[method].Dropped + 1, misses[method].Partial) : (misses[method].Dropped, misses[method].Partial + 1);
                        }
                        if (method != "summary" && texts[index] == original[index])
                        {
                            e.Verbatim++;
                        }
                        evidence[method] = e;
                    }
                }
                if (method != "summary")
                {
                    var index = new Bm25(texts);
                    recall[method].AddRange(conversation.Questions.Select(q => RecallAt5(index, q, conversation)));
                }
            }
            var full = new Bm25(original.ToArray());
            originalRecall.AddRange(conversation.Questions.Select(q => RecallAt5(full, q, conversation)));
        }

        var report = new JsonObject { ["conversations"] = conversations.Count, ["messages"] = messagesCompressed, ["ratio"] = ratio,
            ["questions"] = conversations.Sum(c => c.Questions.Count) };
        report["tokenizer"] = counter.Name;
        Console.WriteLine($"{conversations.Count} conversations, {messagesCompressed} messages, {report["questions"]} questions (categories 1-4), compressed to {ratio:P0} of tokens ({counter.Name})");
        Console.WriteLine($"{"method",-11} {"kept tokens",12} {"evidence kept",14} {"verbatim",9} {"recall@5",9}");
        var methods = new JsonObject();
        foreach (var method in Methods)
        {
            var e = evidence[method];
            var share = e.Total == 0 ? 0 : (double)e.Kept / e.Total;
            var verbatim = e.Total == 0 ? 0 : (double)e.Verbatim / e.Total;
            var r5 = recall[method].Count == 0 ? (double?)null : recall[method].Average();
            Console.WriteLine($"{method,-11} {keptShare[method].Average(),12:P1} {share,14:P1} {(method == "summary" ? "n/a" : verbatim.ToString("P1", CultureInfo.InvariantCulture)),9} {(r5 is null ? "n/a" : r5.Value.ToString("0.000", CultureInfo.InvariantCulture)),9}");
            methods[method] = new JsonObject
            {
                ["keptTokenShare"] = Round(keptShare[method].Average()), ["evidenceKept"] = Round(share), ["evidenceVerbatim"] = method == "summary" ? null : Round(verbatim),
                ["evidencePairs"] = e.Total, ["recallAt5"] = r5 is null ? null : Round(r5.Value),
            };
        }
        Console.WriteLine($"importance misses: {misses["importance"].Dropped} turns dropped, {misses["importance"].Partial} kept without every key token");
        report["importanceMisses"] = new JsonObject { ["dropped"] = misses["importance"].Dropped, ["partial"] = misses["importance"].Partial };
        Console.WriteLine($"{"original",-11} {1.0,12:P1} {1.0,14:P1} {1.0,9:P1} {originalRecall.Average(),9:0.000}");
        report["methods"] = methods;
        report["originalRecallAt5"] = Round(originalRecall.Average());
        var perThousand = compressTicks * 1000.0 / Stopwatch.Frequency / messagesCompressed * 1000;
        Console.WriteLine($"importance compression: {perThousand:0.0} ms per 1,000 messages");
        report["compressionMsPer1000Messages"] = Round(perThousand);

        // Snapshot size: a session holding each conversation's history, as JSON and Brotli-compressed.
        long raw = 0, packed = 0;
        foreach (var conversation in conversations)
        {
            var snapshot = new SessionSnapshot("snap-1", conversation.Id, DateTimeOffset.UnixEpoch, 1, null, false, false, conversation.Messages.Count,
                new SessionValue { Meta = new MetaInfo { ConversationId = conversation.Id, Version = 1 } }, conversation.Messages);
            var json = JsonSerializer.SerializeToUtf8Bytes(snapshot, ContractsJson.Options);
            raw += json.Length;
            var brotli = SnapshotStore.Compress(json);
            packed += brotli.Length;
            if (!SnapshotStore.Decompress(brotli).AsSpan().SequenceEqual(json))
            {
                throw new InvalidOperationException("a compressed snapshot did not read back identical");
            }
        }
        Console.WriteLine($"snapshot size: {raw / conversations.Count / 1024.0:0.0} KiB JSON → {packed / conversations.Count / 1024.0:0.0} KiB Brotli per conversation ({(double)packed / raw:P1})");
        report["snapshotBytes"] = new JsonObject { ["json"] = raw / conversations.Count, ["brotli"] = packed / conversations.Count, ["ratio"] = Round((double)packed / raw) };

        report["restoreLatencyMs"] = options.ContainsKey("no-restore") ? null : await MeasureRestoreAsync(quick ? 30 : 200);
        if (options.TryGetValue("json", out var path))
        {
            await File.WriteAllTextAsync(path, report.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            Console.WriteLine($"wrote {path}");
        }
        return 0;
    }

    /// <summary>
    /// The survival rule: the key tokens of a fact are the answer's content words that occur in the
    /// evidence turn. The turn's fact survives when every key token is in what was kept of the turn;
    /// when the answer shares no word with the turn (an inference), when half of the turn's content
    /// words are kept.
    /// </summary>
    internal static bool Survives(string original, string kept, string answer, bool keyOnly = false)
    {
        if (kept.Length == 0)
        {
            return false;
        }
        var turnWords = Words(original);
        var keptWords = Words(kept);
        var key = Words(answer).Where(turnWords.Contains).ToList();
        if (key.Count > 0)
        {
            return key.All(keptWords.Contains);
        }
        return !keyOnly && (turnWords.Count == 0 || turnWords.Count(keptWords.Contains) * 2 >= turnWords.Count);
    }

    private static HashSet<string> Words(string text) => TextSignals.ContentWords(text).Select(w => w.Trim('\'')).Where(w => w.Length > 1).ToHashSet(StringComparer.Ordinal);

    private static async Task<JsonObject> MeasureRestoreAsync(int iterations)
    {
        await using var host = await BenchHost.StartAsync(null, []);
        using var http = new HttpClient { BaseAddress = host.BaseAddress };
        const string id = "bench-restore";
        await host.CreateAsync(id);
        for (var i = 0; i < 40; i++)
        {
            await host.WriteTurnAsync(id, i);
        }
        var created = await http.PostAsJsonAsync($"v1/sessions/{id}/snapshots", new CreateSnapshotRequest("bench"), ContractsJson.Options);
        var handle = (await created.Content.ReadFromJsonAsync<SnapshotHandle>(ContractsJson.Options))!;
        var latencies = new List<double>();
        for (var i = 0; i < iterations + 5; i++)
        {
            var clock = Stopwatch.StartNew();
            using var response = await http.PostAsJsonAsync($"v1/sessions/{id}/snapshots/{handle.SnapshotId}/restore", new RestoreSnapshotRequest(), ContractsJson.Options);
            response.EnsureSuccessStatusCode();
            if (i >= 5)
            {
                latencies.Add(clock.Elapsed.TotalMilliseconds);
            }
        }
        latencies.Sort();
        var p50 = latencies[latencies.Count / 2];
        var p95 = latencies[Math.Min(latencies.Count - 1, (int)(latencies.Count * 0.95))];
        Console.WriteLine($"restore (HTTP, embedded, 40-turn session): p50 {p50:0.00} ms, p95 {p95:0.00} ms over {iterations}");
        return new JsonObject { ["p50"] = Round(p50), ["p95"] = Round(p95), ["iterations"] = iterations };
    }

    private static string[] PerMessage(int count, IReadOnlyList<int> sources, IReadOnlyList<string> contents)
    {
        var texts = new string[count];
        Array.Fill(texts, "");
        for (var i = 0; i < sources.Count; i++)
        {
            texts[sources[i]] = contents[i].StartsWith(MessageCompressor.GapMarker, StringComparison.Ordinal) ? contents[i][MessageCompressor.GapMarker.Length..] : contents[i];
        }
        return texts;
    }

    // The newest messages that fit.
    private static string[] Recency(IReadOnlyList<ChatMessage> messages, long target, ITokenCounter counter)
    {
        var texts = new string[messages.Count];
        Array.Fill(texts, "");
        long used = 0;
        for (var i = messages.Count - 1; i >= 0; i--)
        {
            var cost = counter.Units(ConversationText.RenderMessage(messages[i])) + 1;
            if (used + cost > target)
            {
                break;
            }
            used += cost;
            texts[i] = messages[i].Content;
        }
        return texts;
    }

    // Evenly spaced messages: the largest count whose spaced selection fits.
    private static string[] Uniform(IReadOnlyList<ChatMessage> messages, long target, ITokenCounter counter)
    {
        int[] Pick(int m) => Enumerable.Range(0, m).Select(j => (int)((long)j * messages.Count / m)).Distinct().ToArray();
        long Cost(int[] picked) => picked.Sum(i => counter.Units(ConversationText.RenderMessage(messages[i])) + 1);
        int lo = 0, hi = messages.Count;
        while (lo < hi)
        {
            var mid = (lo + hi + 1) / 2;
            if (Cost(Pick(mid)) <= target)
            {
                lo = mid;
            }
            else
            {
                hi = mid - 1;
            }
        }
        var texts = new string[messages.Count];
        Array.Fill(texts, "");
        foreach (var i in Pick(lo))
        {
            texts[i] = messages[i].Content;
        }
        return texts;
    }

    private static double RecallAt5(Bm25 index, Question q, Conversation conversation)
    {
        var top = index.Top(q.Text, 5).Select(i => conversation.Ids[i]).ToHashSet(StringComparer.Ordinal);
        return (double)q.Evidence.Count(top.Contains) / q.Evidence.Count;
    }

    private static List<LogMessage> AsLog(Conversation conversation) =>
        conversation.Messages.Select((m, i) => new LogMessage($"m{i}", conversation.Id, i + 1, null, "", "", m.Role == ChatMessage.UserRole ? m.Content : "",
            m.Role == ChatMessage.UserRole ? "" : m.Content, false, 0, DateTimeOffset.UnixEpoch)).ToList();

    private static long Units(IReadOnlyList<ChatMessage> messages, ITokenCounter counter) => counter.JoinedUnits(messages.Select(ConversationText.RenderMessage));

    // One LoCoMo conversation as chat messages: a system line opens each session with its date; the
    // first speaker is the user, the second the assistant, each with its name; photos as captions.
    private static Conversation Load(string file)
    {
        var root = JsonNode.Parse(File.ReadAllText(file))!.AsObject();
        var conversation = root["conversation"]?.AsObject() ?? root;
        var speakerA = conversation["speaker_a"]?.ToString() ?? "";
        var messages = new List<ChatMessage>();
        var ids = new List<string>();
        var indexOf = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var n = 1; conversation[$"session_{n}"] is JsonArray || conversation.ContainsKey($"session_{n}_date_time"); n++)
        {
            if (conversation[$"session_{n}"] is not JsonArray session)
            {
                continue;
            }
            messages.Add(new ChatMessage(ChatMessage.SystemRole, $"Session {n}, {conversation[$"session_{n}_date_time"]}."));
            ids.Add($"session-{n}");
            foreach (var turn in session)
            {
                var speaker = turn!["speaker"]!.ToString();
                var text = turn["text"]!.ToString();
                if (turn["blip_caption"] is JsonNode caption)
                {
                    text += $" [shares a photo: {caption}]";
                }
                indexOf[turn["dia_id"]!.ToString()] = messages.Count;
                ids.Add(turn["dia_id"]!.ToString());
                messages.Add(new ChatMessage(speaker == speakerA ? ChatMessage.UserRole : ChatMessage.AssistantRole, text) { Name = speaker });
            }
        }
        var questions = new List<Question>();
        foreach (var qa in root["qa"]!.AsArray())
        {
            var category = qa!["category"]!.ToString();
            if (category is "5" || qa["evidence"] is not JsonArray evidence)
            {
                continue;
            }
            var set = evidence.SelectMany(e => e!.ToString().Split([';', ',', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                .Where(indexOf.ContainsKey).ToHashSet(StringComparer.Ordinal);
            if (set.Count > 0)
            {
                questions.Add(new Question(qa["question"]!.ToString(), qa["answer"]?.ToString() ?? "", set));
            }
        }
        return new Conversation(Path.GetFileNameWithoutExtension(file), messages, ids, indexOf, questions);
    }

    private static double Round(double v) => Math.Round(v, 4);

    private static Dictionary<string, string> ParseOptions(string[] args)
    {
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i].StartsWith("--", StringComparison.Ordinal))
            {
                options[args[i][2..]] = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i] : "";
            }
        }
        return options;
    }

    private sealed record Question(string Text, string Answer, HashSet<string> Evidence);

    private sealed record Conversation(string Id, List<ChatMessage> Messages, List<string> Ids, Dictionary<string, int> IndexOf, List<Question> Questions);

    // Plain Okapi BM25 (k1 1.2, b 0.75) over lower-cased words without stop words, one document per message.
    private sealed class Bm25
    {
        private readonly List<Dictionary<string, int>> _docs;
        private readonly Dictionary<string, int> _df = new(StringComparer.Ordinal);
        private readonly double _avg;

        public Bm25(IReadOnlyList<string> texts)
        {
            _docs = texts.Select(t => TextSignals.ContentWords(t).GroupBy(w => w, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal)).ToList();
            foreach (var word in _docs.SelectMany(d => d.Keys))
            {
                _df[word] = _df.GetValueOrDefault(word) + 1;
            }
            _avg = Math.Max(1, _docs.Average(d => d.Values.Sum()));
        }

        public IEnumerable<int> Top(string query, int k)
        {
            var terms = TextSignals.ContentWords(query).Distinct(StringComparer.Ordinal).ToList();
            var n = _docs.Count;
            return Enumerable.Range(0, n).Select(i =>
            {
                var doc = _docs[i];
                var length = doc.Values.Sum();
                double score = 0;
                foreach (var t in terms)
                {
                    if (doc.TryGetValue(t, out var tf))
                    {
                        var idf = Math.Log(1 + (n - _df[t] + 0.5) / (_df[t] + 0.5));
                        score += idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * length / _avg));
                    }
                }
                return (i, score);
            }).Where(x => x.score > 0).OrderByDescending(x => x.score).ThenBy(x => x.i).Take(k).Select(x => x.i);
        }
    }
}
