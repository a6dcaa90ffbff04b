using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using CloudMemory.Context.Features.Memories;
using CloudMemory.Embeddings.Onnx;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CloudMemory.Benchmarks;

/// <summary>
/// LoCoMo retrieval recall through CloudMemory's own long-term memory service (see
/// /work/shared/bench/locomo/README.md for the data and the scoring rule), plus an optional
/// synthetic scale run.
/// </summary>
internal static class LocomoBenchmark
{
    private const string Tenant = "locomo";
    private static readonly int[] Ks = [1, 5, 10, 20];
    // "hybrid" runs with the configured default weight (the specification's 0.7 semantic);
    // "hybrid-sw0.4" asks for semanticWeight 0.4 per request, the weight that suits the local embedder.
    private static readonly string[] Modes = ["bm25", "semantic", "hybrid", "hybrid-sw0.4"];

    public static async Task<int> RunAsync(string[] args)
    {
        var options = ParseOptions(args);
        var exit = 0;
        if (options.TryGetValue("data", out var data))
        {
            exit = options.ContainsKey("kfold") ? await LocomoKFold.RunAsync(data, options, StartAsync) : await RunLocomoAsync(data, options);
        }
        if (options.TryGetValue("scale", out var scale))
        {
            exit = Math.Max(exit, await RunScaleAsync(int.Parse(scale, CultureInfo.InvariantCulture), options));
        }
        if (!options.ContainsKey("data") && !options.ContainsKey("scale"))
        {
            Console.Error.WriteLine("usage: locomo --data DIR [--embedder local|onnx] [--kfold [--grid small|full] [--conversations N] [--max-questions N]] [--json FILE] [--scale N] [--semantic-weight W] [--fusion weighted|rrf] [--dims N] [--weights U,B,C] [--config Embeddings:NeighbourWeight=0.5;LongTermMemory:SemanticWeight=0.5]");
            return 2;
        }
        return exit;
    }

    private static async Task<int> RunLocomoAsync(string dataDir, Dictionary<string, string> options)
    {
        using var host = await StartAsync(options);
        var memory = host.Services.GetRequiredService<ILongTermMemory>();
        var pipeline = host.Services.GetRequiredService<EmbeddingPipeline>();

        var files = Directory.GetFiles(dataDir, "*.json").Order(StringComparer.Ordinal).ToList();
        var (turns, questions) = await LoadAsync(memory, Tenant, files);
        var ingest = Stopwatch.StartNew();
        await pipeline.WaitForIdleAsync();
        // The tenant's latent space, learned from everything loaded (deterministic; in service it is
        // learned in the background as the corpus grows).
        var latentClock = Stopwatch.StartNew();
        var latent = host.Services.GetRequiredService<LatentSemanticIndex>();
        await latent.TrainAsync(Tenant);
        if (latent.SpaceOf(Tenant) is { } space)
        {
            Console.WriteLine($"latent space: {space.Vocabulary} words, {space.Rank} dims, {space.Texts} texts, learned in {latentClock.ElapsedMilliseconds} ms");
        }
        Console.WriteLine($"loaded {turns} turns of {files.Count} conversations, {questions.Count} questions (categories 1-4); embeddings settled in {ingest.ElapsedMilliseconds} ms");

        var semanticWeight = options.TryGetValue("semantic-weight", out var w) ? double.Parse(w, CultureInfo.InvariantCulture) : (double?)null;
        var fusion = options.GetValueOrDefault("fusion");
        var report = new JsonObject { ["questions"] = questions.Count };
        var modesJson = new JsonObject();
        Console.WriteLine();
        Console.WriteLine($"{"mode",-9} {"category",-9} {"n",5} {"R@1",7} {"R@5",7} {"R@10",7} {"R@20",7}");
        // --dump FILE: one line per question and mode (evidence and top 10), for error analysis outside the repository.
        var dump = options.ContainsKey("dump") ? new System.Text.StringBuilder() : null;
        foreach (var mode in Modes)
        {
            var apiMode = mode switch { "bm25" => SearchModes.Lexical, "semantic" => SearchModes.Semantic, _ => SearchModes.Hybrid };
            var modeWeight = mode == "hybrid-sw0.4" ? 0.4 : semanticWeight;
            var perQuestion = new List<(string Category, double[] Recall)>();
            var latencies = new List<double>();
            // Warm-up so JIT does not count as query latency.
            await memory.SearchAsync(Tenant, new MemorySearchRequest("warm up", 20, apiMode, modeWeight, fusion, new MemorySearchFilters(ContextId: questions[0].Context)));
            foreach (var (context, question, category, evidence) in questions)
            {
                var sw = Stopwatch.StartNew();
                var result = await memory.SearchAsync(Tenant, new MemorySearchRequest(question, 20, apiMode, modeWeight, fusion, new MemorySearchFilters(ContextId: context)));
                latencies.Add(sw.Elapsed.TotalMilliseconds);
                var ranked = result.Hits.Select(h => h.Entry.Metadata["dia_id"]).ToList();
                dump?.AppendLine(CultureInfo.InvariantCulture, $"{mode}\t{category}\t{question}\t{string.Join(' ', evidence)}\t{string.Join(' ', ranked.Take(10))}\t{ranked.Take(5).Count(evidence.Contains)}");
                perQuestion.Add((category, Ks.Select(k => (double)ranked.Take(k).Count(evidence.Contains) / evidence.Count).ToArray()));
            }
            var modeJson = new JsonObject();
            modeJson["overall"] = Recall(perQuestion);
            Print(mode, "overall", perQuestion);
            var byCategory = new JsonObject();
            foreach (var group in perQuestion.GroupBy(p => p.Category).OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                byCategory[group.Key] = Recall(group.ToList());
                Print(mode, group.Key, group.ToList());
            }
            modeJson["byCategory"] = byCategory;
            latencies.Sort();
            modeJson["latencyMs"] = new JsonObject { ["p50"] = Round(Percentile(latencies, 0.50)), ["p95"] = Round(Percentile(latencies, 0.95)) };
            Console.WriteLine($"{mode,-9} latency p50 {Percentile(latencies, 0.50):0.000} ms, p95 {Percentile(latencies, 0.95):0.000} ms");
            modesJson[mode] = modeJson;
        }
        report["modes"] = modesJson;
        if (dump is not null)
        {
            await File.WriteAllTextAsync(options["dump"], dump.ToString());
        }
        if (options.TryGetValue("json", out var jsonPath))
        {
            await File.WriteAllTextAsync(jsonPath, report.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            Console.WriteLine($"wrote {jsonPath}");
        }
        await host.StopAsync();
        return 0;
    }

    /// <summary>Loads every turn of <paramref name="files"/> into <paramref name="tenant"/> (one context per conversation) and returns the turn count and the scored questions.</summary>
    internal static async Task<(int Turns, List<(string Context, string Question, string Category, HashSet<string> Evidence)> Questions)> LoadAsync(ILongTermMemory memory, string tenant, IReadOnlyList<string> files)
    {
        var questions = new List<(string Context, string Question, string Category, HashSet<string> Evidence)>();
        var turns = 0;
        foreach (var file in files)
        {
            var root = JsonNode.Parse(await File.ReadAllTextAsync(file))!.AsObject();
            var conversation = root["conversation"]?.AsObject() ?? root;
            var contextId = "locomo-" + Path.GetFileNameWithoutExtension(file);
            for (var n = 1; conversation[$"session_{n}"] is JsonArray session || conversation.ContainsKey($"session_{n}_date_time"); n++)
            {
                if (conversation[$"session_{n}"] is not JsonArray s)
                {
                    continue;
                }
                foreach (var turn in s)
                {
                    var diaId = (string)turn!["dia_id"]!;
                    var text = $"{turn["speaker"]}: {turn["text"]}";
                    if (turn["blip_caption"] is JsonNode caption)
                    {
                        text += $" [image: {caption}]";
                    }
                    await memory.CreateAsync(tenant, new CreateMemoryRequest(
                        text, MemoryTypes.Message, ContextId: contextId,
                        Metadata: new Dictionary<string, string>(StringComparer.Ordinal) { ["dia_id"] = diaId }));
                    turns++;
                }
            }
            foreach (var qa in root["qa"]!.AsArray())
            {
                var category = qa!["category"]!.ToString();
                if (category is "5" || qa["evidence"] is not JsonArray evidence)
                {
                    continue;
                }
                var ids = evidence.SelectMany(e => e!.ToString().Split([';', ',', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToHashSet(StringComparer.Ordinal);
                if (ids.Count > 0)
                {
                    questions.Add((contextId, (string)qa["question"]!, category, ids));
                }
            }
        }
        return (turns, questions);
    }

    private static async Task<int> RunScaleAsync(int n, Dictionary<string, string> options)
    {
        using var host = await StartAsync(options);
        var memory = host.Services.GetRequiredService<ILongTermMemory>();
        var pipeline = host.Services.GetRequiredService<EmbeddingPipeline>();
        var store = host.Services.GetRequiredService<IMemoryStore>() as InMemoryMemoryStore;
        if (store is not null)
        {
            // --lists / --probes / --ivf-threshold tune the approximate vector index (before any write).
            int Option(string name, int fallback) => options.TryGetValue(name, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
            store.IndexOptions = store.IndexOptions with
            {
                Lists = Option("lists", store.IndexOptions.Lists),
                Probes = Option("probes", store.IndexOptions.Probes),
                ApproximateThreshold = Option("ivf-threshold", store.IndexOptions.ApproximateThreshold),
            };
        }
        var random = new Random(42);
        var vocabulary = SyntheticVocabulary(random, 20_000);
        string Sentence(int words) => string.Join(' ', Enumerable.Range(0, words).Select(_ => vocabulary[Zipf(random, vocabulary.Length)]));

        var load = Stopwatch.StartNew();
        for (var i = 0; i < n; i++)
        {
            await memory.CreateAsync(Tenant, new CreateMemoryRequest(Sentence(14), MemoryTypes.Semantic, ContextId: $"ctx-{i % 1000}"));
            if ((i + 1) % 100_000 == 0)
            {
                Console.WriteLine($"  written {i + 1}, embedding backlog {pipeline.Outstanding}");
            }
        }
        var written = load.Elapsed;
        await pipeline.WaitForIdleAsync();
        Console.WriteLine($"scale: {n} entries written in {written.TotalSeconds:0.0} s, all embedded after {load.Elapsed.TotalSeconds:0.0} s");
        var managed = GC.GetTotalMemory(forceFullCollection: true);
        using (var process = Process.GetCurrentProcess())
        {
            var index = store?.VectorIndexStats(Tenant) ?? default;
            Console.WriteLine($"scale {n} memory: working set {process.WorkingSet64 / 1048576.0:0} MiB, managed heap {managed / 1048576.0:0} MiB (GC heap size {GC.GetGCMemoryInfo().HeapSizeBytes / 1048576.0:0} MiB); vector index {index.Vectors} vectors ({(index.Sparse ? "sparse" : "int8")}) in {index.Lists} lists, {index.Probes} probed (estimated recall@10 {index.EstimatedRecall:0.00}), {index.Bytes / 1048576.0:0} MiB");
        }

        foreach (var (label, filtered) in new[] { ("whole tenant", false), ("one context", true) })
        {
            foreach (var mode in new[] { SearchModes.Lexical, SearchModes.Semantic, SearchModes.Hybrid })
            {
                var latencies = new List<double>();
                for (var q = 0; q < 120; q++)
                {
                    var request = new MemorySearchRequest(Sentence(6), 10, mode, Filters: filtered ? new MemorySearchFilters(ContextId: $"ctx-{q % 1000}") : null);
                    var sw = Stopwatch.StartNew();
                    await memory.SearchAsync(Tenant, request);
                    if (q >= 20)
                    {
                        latencies.Add(sw.Elapsed.TotalMilliseconds);
                    }
                }
                latencies.Sort();
                Console.WriteLine($"scale {n} {label,-12} {mode,-8} p50 {Percentile(latencies, 0.5):0.00} ms  p95 {Percentile(latencies, 0.95):0.00} ms");
            }
        }
        if (store is not null)
        {
            await ReportExactnessAsync(n, store, host.Services.GetRequiredService<IEmbedder>(), () => Sentence(6));
        }
        await host.StopAsync();
        return 0;
    }

    // Store-level comparison on tenant-wide queries: the approximate vector index against the exact
    // scan (recall@10, and recall@50 = the candidates a hybrid search takes), pruned BM25 against
    // exhaustive BM25 (top-k scores must be identical), with the exhaustive paths' latency.
    private static async Task ReportExactnessAsync(int n, InMemoryMemoryStore store, IEmbedder embedder, Func<string> query)
    {
        var now = DateTimeOffset.UtcNow;
        double recall10 = 0, recall50 = 0;
        var lexicalDiffers = 0;
        var queries = 100;
        var exactVector = new List<double>();
        var exactLexical = new List<double>();
        for (var q = 0; q < queries; q++)
        {
            var text = query();
            var vector = await embedder.EmbedQueryAsync(text);
            var sw = Stopwatch.StartNew();
            var exact = store.SearchVectorExact(Tenant, vector, MemoryFilter.None, 50, now);
            exactVector.Add(sw.Elapsed.TotalMilliseconds);
            var approximate = await store.SearchVectorAsync(Tenant, vector, MemoryFilter.None, 50, now);
            var approximate10 = await store.SearchVectorAsync(Tenant, vector, MemoryFilter.None, 10, now);
            recall10 += Overlap(approximate10, exact.Take(10).ToList());
            recall50 += Overlap(approximate, exact);

            sw.Restart();
            var lexicalExact = store.SearchLexicalExact(Tenant, text, MemoryFilter.None, 50, now);
            exactLexical.Add(sw.Elapsed.TotalMilliseconds);
            var lexical = await store.SearchLexicalAsync(Tenant, text, MemoryFilter.None, 50, now);
            if (!lexical.Select(s => s.Score).SequenceEqual(lexicalExact.Select(s => s.Score)))
            {
                lexicalDiffers++;
            }
        }
        exactVector.Sort();
        exactLexical.Sort();
        var index = store.VectorIndexStats(Tenant);
        Console.WriteLine($"scale {n} approximate vs exact (whole tenant, {queries} queries, {index.Probes} of {index.Lists} lists probed): semantic recall@10 {recall10 / queries:0.000}, recall@50 {recall50 / queries:0.000} (ties count as hits); BM25 top-50 differing from exhaustive: {lexicalDiffers}");
        Console.WriteLine($"scale {n} exhaustive store paths: vector scan p50 {Percentile(exactVector, 0.5):0.00} ms p95 {Percentile(exactVector, 0.95):0.00} ms; BM25 all postings p50 {Percentile(exactLexical, 0.5):0.00} ms p95 {Percentile(exactLexical, 0.95):0.00} ms");
    }

    // Recall with ties: a hit counts when it is in the exact top k or scores as high as its k-th
    // (approximate hits carry exact cosines; entries with equal scores are interchangeable).
    private static double Overlap(IReadOnlyList<ScoredId> found, IReadOnlyList<ScoredId> truth)
    {
        if (truth.Count == 0)
        {
            return 1;
        }
        var ids = truth.Select(s => s.Id).ToHashSet(StringComparer.Ordinal);
        var cut = truth[^1].Score;
        return (double)Math.Min(truth.Count, found.Count(s => ids.Contains(s.Id) || s.Score >= cut)) / truth.Count;
    }

    internal static async Task<IHost> StartAsync(Dictionary<string, string> options)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            // Usage statistics would leak between questions (an entry retrieved for one question is boosted for the next).
            [$"{LongTermMemoryOptions.SectionName}:TrackAccess"] = "false",
            [$"{EmbeddingOptions.SectionName}:BatchSize"] = "256",
        });
        // Tuning knobs (global parameters; see docs/benchmarks-locomo.md): --config Section:Key=Value[;...]
        if (options.TryGetValue("config", out var config))
        {
            builder.Configuration.AddInMemoryCollection(config.Split(';', StringSplitOptions.RemoveEmptyEntries)
                .Select(kv => kv.Split('=', 2))
                .Select(kv => new KeyValuePair<string, string?>(kv[0].Contains(':', StringComparison.Ordinal) ? "CloudMemory:" + kv[0] : kv[0], kv[1])));
        }
        var dims = options.TryGetValue("dims", out var d) ? int.Parse(d, CultureInfo.InvariantCulture) : LocalHashingEmbedder.DefaultDimensions;
        if (options.GetValueOrDefault("embedder", "local") == "onnx")
        {
            // The vectors the benchmark re-reads (neighbours, feedback) stay cached across the whole run.
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                [$"{EmbeddingOptions.SectionName}:Provider"] = "onnx",
                [$"{OnnxEmbeddingOptions.SectionName}:CacheSize"] = "100000",
            });
            builder.Services.AddOnnxEmbeddings(builder.Configuration);
        }
        else if (options.TryGetValue("weights", out var weights))
        {
            var parts = weights.Split(',').Select(p => double.Parse(p, CultureInfo.InvariantCulture)).ToArray();
            builder.Services.AddSingleton<IEmbedder>(new LocalHashingEmbedder(dims, new LocalEmbedderWeights(parts[0], parts[1], parts[2], parts.Length > 3 ? parts[3] : 1.0)));
        }
        else
        {
            builder.Services.AddSingleton<IEmbedder>(new LocalHashingEmbedder(dims));
        }
        builder.Services.AddLongTermMemory(builder.Configuration);
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }

    private static JsonObject Recall(List<(string Category, double[] Recall)> rows)
    {
        var o = new JsonObject();
        for (var i = 0; i < Ks.Length; i++)
        {
            o[$"recall@{Ks[i]}"] = Round(rows.Average(r => r.Recall[i]));
        }
        return o;
    }

    private static void Print(string mode, string category, List<(string Category, double[] Recall)> rows) =>
        Console.WriteLine($"{mode,-9} {category,-9} {rows.Count,5} " + string.Join(' ', Enumerable.Range(0, Ks.Length).Select(i => $"{rows.Average(r => r.Recall[i]),7:0.000}")));

    private static double Round(double v) => Math.Round(v, 4);

    private static double Percentile(List<double> sorted, double p) =>
        sorted.Count == 0 ? 0 : sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];

    private static string[] SyntheticVocabulary(Random random, int size)
    {
        string[] syllables = ["ka", "lo", "mi", "ra", "te", "su", "no", "vi", "del", "tor", "an", "pe", "ris", "qu", "zo", "ber", "lin", "ga", "ho", "fen"];
        var words = new HashSet<string>(StringComparer.Ordinal);
        while (words.Count < size)
        {
            words.Add(string.Concat(Enumerable.Range(0, random.Next(2, 5)).Select(_ => syllables[random.Next(syllables.Length)])));
        }
        return words.Order(StringComparer.Ordinal).ToArray();
    }

    // Zipf-like word frequencies, so the synthetic text has common and rare words like real text.
    private static int Zipf(Random random, int n) => Math.Min(n - 1, (int)Math.Floor(Math.Pow(n + 1, random.NextDouble())) - 1);

    private static Dictionary<string, string> ParseOptions(string[] args)
    {
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i].StartsWith("--", StringComparison.Ordinal))
            {
                options[args[i][2..]] = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i] : "true";
            }
        }
        return options;
    }
}
