using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.Contracts.Feedback;
using CloudMemory.Feedback.Features.Analysis;
using CloudMemory.Feedback.Features.Experiences;
using CloudMemory.Feedback.Features.Feedback;
using CloudMemory.Feedback.Features.Learning;
using Microsoft.Extensions.Options;
using Npgsql;

namespace CloudMemory.Benchmarks;

/// <summary>
/// <c>feedback [--quick]</c>: a learning-loop simulation with hidden user preferences and noise
/// (cycles to find the better strategy, lift with its interval, false adoptions over A/A runs),
/// feedback ingest rate, and similar-experience search latency at 100k experiences. In process,
/// in-memory stores, the same engine the workflow activities call. <c>--experiences-only</c> runs just
/// the experience search (and PostgreSQL feedback ingest); <c>--experiences N</c> sets its size.
/// </summary>
internal static class FeedbackBenchmark
{
    private const string Agent = "sim-agent";
    private const int LoadWriters = 8;

    public static async Task<int> RunAsync(string[] args)
    {
        var quick = args.Contains("--quick");
        if (Option(args, "--locomo") is { } locomo)
        {
            await FeedbackLocomo.RunAsync(locomo, quick, Option(args, "--feedback-weight"), !args.Contains("--without-query"), Option(args, "--query-similarity"));
            return 0;
        }
        if (args.Contains("--experiences-only"))
        {
            await ExperienceBenchmarksAsync(args, quick);
            return 0;
        }
        var alpha = 0.05;
        var realRuns = quick ? 10 : 30;
        // Enough A/A runs that the false-adoption estimate can tell 5% from 10% (at 60 its ±1.96 se was ±5.5 points).
        var aaRuns = quick ? 300 : 1000;
        Console.WriteLine($"feedback benchmark ({(quick ? "quick" : "full")}): alpha {alpha}, 200 conversations per cycle, trial share 0.5, horizon 100 conversations per arm");

        var cycles = new List<int>();
        var lifts = new List<TrialResult>();
        var ingest = Stopwatch.StartNew();
        long records = 0;
        for (var run = 0; run < realRuns; run++)
        {
            var (found, cycle, result, n) = await SimulateAsync(run, effect: 0.15, alpha);
            records += n;
            if (found)
            {
                cycles.Add(cycle);
                lifts.Add(result!);
            }
        }
        var aaAdopted = 0;
        for (var run = 0; run < aaRuns; run++)
        {
            var (adopted, _, _, n) = await SimulateAsync(10_000 + run, effect: 0, alpha);
            records += n;
            aaAdopted += adopted ? 1 : 0;
        }
        ingest.Stop();

        Console.WriteLine($"real effect (+15 pts satisfaction when answers fit the hidden preferred length): found in {cycles.Count}/{realRuns} runs; cycles to adoption mean {(cycles.Count == 0 ? double.NaN : cycles.Average()):0.0}, max {(cycles.Count == 0 ? 0 : cycles.Max())}");
        if (lifts.Count > 0)
        {
            Console.WriteLine($"measured lift (mean over runs) {lifts.Average(l => l.Lift):+0.0%;-0.0%}, mean {lifts[0].Confidence:P0} CI [{lifts.Average(l => l.LiftLow):+0.0%;-0.0%}, {lifts.Average(l => l.LiftHigh):+0.0%;-0.0%}]");
        }
        var rate = (double)aaAdopted / aaRuns;
        var se = Math.Sqrt(rate * (1 - rate) / aaRuns);
        Console.WriteLine($"A/A (no strategy better): {aaAdopted}/{aaRuns} adopted = {rate:P1} (±{1.96 * se:P1}), alpha {alpha:P0}, test {new LearningOptions().Test} (one-sided, one look at the horizon)");
        Console.WriteLine($"feedback ingest (validate + score + store, in-memory, one thread): {records / ingest.Elapsed.TotalSeconds:N0} records/s over {records:N0} (includes the simulation's strategy reads and cycles)");

        await ExperienceBenchmarksAsync(args, quick);
        return 0;
    }

    // Similar-experience search in memory and on PostgreSQL (with the feedback ingest into PostgreSQL);
    // alone with --experiences-only.
    private static async Task ExperienceBenchmarksAsync(string[] args, bool quick)
    {
        var experiences = Option(args, "--experiences") is { } size ? int.Parse(size, CultureInfo.InvariantCulture) : quick ? 20_000 : 100_000;
        await ExperienceSearchAsync(new InMemoryExperienceStore(), "in-memory", experiences, quick ? 200 : 1000);
        using var postgres = BenchPostgres.Acquire(Option(args, "--postgres"));
        if (postgres.ConnectionString is { } connection)
        {
            await using var dataSource = new NpgsqlDataSourceBuilder(connection).Build();
            var feedbackStore = new PostgresFeedbackStore(dataSource);
            await feedbackStore.InitializeAsync();
            await PostgresIngestAsync(new FeedbackRecorder(feedbackStore, new NoEvents(), TimeProvider.System), quick ? 5_000 : 20_000, writers: 8);
            var experienceStore = new PostgresExperienceStore(dataSource);
            await experienceStore.InitializeAsync();
            await ExperienceSearchAsync(experienceStore, "PostgreSQL", experiences, quick ? 200 : 1000);
        }
    }

    private static string? Option(string[] args, string name)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
    }

    /// <summary>Feedback ingest into PostgreSQL (validate, score, insert), <paramref name="writers"/> concurrent writers.</summary>
    private static async Task PostgresIngestAsync(FeedbackRecorder recorder, int count, int writers)
    {
        var tenant = "bench-" + Guid.NewGuid().ToString("N")[..8];
        var next = -1;
        var watch = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, writers).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                await recorder.RecordAsync(tenant, new RecordFeedbackRequest($"fb-{i}", new FeedbackTarget("conversation", $"c-{i % 5000}"), Agent, "user", "rating",
                    JsonSerializer.SerializeToElement(1 + i % 5), i % 3 == 0 ? "too long" : null, i % 7 == 0 ? ["way too long"] : null,
                    Metrics: new Dictionary<string, double> { ["responseLength"] = 200 + i % 900 }));
            }
        })));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"feedback ingest (validate + score + store, PostgreSQL, {writers} writers): {count / watch.Elapsed.TotalSeconds:N0} records/s over {count:N0}"));
    }

    /// <summary>One simulated agent: returns whether (and at which cycle) the response_length strategy was adopted.</summary>
    private static async Task<(bool Adopted, int Cycle, TrialResult? Result, long Records)> SimulateAsync(int seed, double effect, double alpha)
    {
        var random = new Random(seed);
        var time = new SimClock();
        var feedbackStore = new InMemoryFeedbackStore();
        var learningStore = new InMemoryLearningStore();
        var publisher = new NoEvents();
        var analysis = new FeedbackAnalysisService(feedbackStore, Options.Create(new AnalysisOptions()), time);
        var engine = new LearningEngine(learningStore, analysis, publisher, Options.Create(new LearningOptions { Alpha = alpha, MinConversationsPerArm = 100 }));
        var recorder = new FeedbackRecorder(feedbackStore, publisher, time);
        var preferred = 250 + random.Next(200); // hidden
        long records = 0;
        for (var cycle = 1; cycle <= 8; cycle++)
        {
            for (var c = 0; c < 200; c++)
            {
                var conversation = $"s{seed}-c{cycle}-{c}";
                var strategy = await engine.GetStrategyAsync("t", Agent, conversation);
                var length = strategy.Parameters.TryGetValue("maxLength", out var max) ? (int)max : 1000;
                var fits = length <= preferred * 1.3;
                var satisfied = random.NextDouble() < 0.5 + (fits ? effect : 0);
                var tooLong = effect > 0 ? !fits && random.NextDouble() < 0.3 : random.NextDouble() < 0.2;
                await recorder.RecordAsync("t", new RecordFeedbackRequest(null, new FeedbackTarget("conversation", conversation), Agent, "user", "rating",
                    JsonSerializer.SerializeToElement(satisfied ? 4 + random.Next(2) : 1 + random.Next(2)), null, tooLong ? ["too long"] : null,
                    Metrics: new Dictionary<string, double> { ["responseLength"] = satisfied ? Math.Min(length, preferred + random.Next(-40, 40)) : length }));
                records++;
            }
            time.Advance(TimeSpan.FromDays(1));
            var input = new LearningCycleInput("t", Agent, $"sim-{seed}-{cycle}", time.GetUtcNow());
            var evaluation = await engine.EvaluateTrialAsync(input);
            if (evaluation.Decision == CycleDecisions.Adopted)
            {
                return (true, cycle, evaluation.Result, records);
            }
            if (evaluation.Decision == CycleDecisions.Rejected && effect == 0)
            {
                return (false, cycle, evaluation.Result, records);
            }
            if (evaluation.Decision != CycleDecisions.TrialContinues)
            {
                await engine.ProposeAsync(input);
            }
            time.Advance(TimeSpan.FromSeconds(1));
        }
        return (false, 0, null, records);
    }

    private static async Task ExperienceSearchAsync(IExperienceStore store, string storeName, int count, int searches)
    {
        var tenant = "bench-" + Guid.NewGuid().ToString("N")[..8];
        var timed = new TimedExperienceStore(store);
        var service = new ExperienceService(timed, TimeProvider.System);
        var random = new Random(7);
        string[] verbs = ["book", "cancel", "summarize", "translate", "triage", "refund", "schedule", "diagnose", "compare", "explain"];
        string[] nouns = ["flight", "hotel", "report", "invoice", "symptom", "order", "meeting", "contract", "claim", "ticket", "policy", "lab_result"];
        string[] tools = ["search", "calendar", "billing", "kb_lookup", "web", "sql", "email", "ocr", "calculator", "translator"];
        string[] cities = ["paris", "berlin", "rome", "oslo", "madrid", "tokyo", "lima", "cairo"];
        TaskContext Make() => new(Intent: $"{verbs[random.Next(verbs.Length)]}_{nouns[random.Next(nouns.Length)]}",
            Entities: [cities[random.Next(cities.Length)], $"n{random.Next(50)}"],
            Tools: [tools[random.Next(tools.Length)], tools[random.Next(tools.Length)]],
            Steps: ["plan", tools[random.Next(tools.Length)], "answer"]);
        var requests = Enumerable.Range(0, count)
            .Select(i => new RecordExperienceRequest($"e{i}", null, Make(), new ExecutionResult(random.NextDouble() < 0.7, DurationMs: random.Next(100, 5000))))
            .ToList();
        var load = Stopwatch.StartNew();
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, LoadWriters).Select(_ => Task.Run(async () =>
        {
            for (var i = Interlocked.Increment(ref next); i < count; i = Interlocked.Increment(ref next))
            {
                await service.RecordAsync(tenant, requests[i]);
            }
        })));
        load.Stop();
        var latencies = new List<double>();
        timed.Reset();
        var found = 0;
        for (var i = 0; i < searches; i++)
        {
            var context = Make();
            var watch = Stopwatch.StartNew();
            var result = await service.SearchAsync(tenant, new SearchExperiencesRequest(context with { Steps = null, Entities = null }));
            latencies.Add(watch.Elapsed.TotalMilliseconds);
            found += result.Items.Count > 0 ? 1 : 0;
        }
        latencies.Sort();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"experience search at {count:N0} experiences ({storeName}): p50 {latencies[latencies.Count / 2]:0.00} ms, p95 {latencies[(int)(latencies.Count * 0.95)]:0.00} ms over {searches} searches ({found} with results); record {count / load.Elapsed.TotalSeconds:N0}/s with {LoadWriters} writers"));
        Console.WriteLine(timed.Describe());
    }

    /// <summary>Times the store's two calls of a search apart from the ranking around them (where a tail comes from).</summary>
    private sealed class TimedExperienceStore(IExperienceStore inner) : IExperienceStore
    {
        private readonly List<double> _candidates = [];
        private readonly List<double> _lookups = [];
        private readonly List<int> _rows = [];
        private int _gen2;

        public void Reset()
        {
            _candidates.Clear();
            _lookups.Clear();
            _rows.Clear();
            _gen2 = GC.CollectionCount(2);
        }

        public string Describe()
        {
            static string Quantiles(List<double> values)
            {
                var sorted = values.Order().ToList();
                return sorted.Count == 0 ? "-" : string.Create(CultureInfo.InvariantCulture, $"p50 {sorted[sorted.Count / 2]:0.00} ms, p95 {sorted[(int)(sorted.Count * 0.95)]:0.00} ms");
            }
            var rows = _rows.Order().ToList();
            return string.Create(CultureInfo.InvariantCulture,
                $"  of which the candidate query {Quantiles(_candidates)} ({(rows.Count == 0 ? 0 : rows[rows.Count / 2])} patterns read at p50, {(rows.Count == 0 ? 0 : rows[(int)(rows.Count * 0.95)])} at p95); last-run look-up {Quantiles(_lookups)}; {GC.CollectionCount(2) - _gen2} gen-2 GCs");
        }

        public Task InitializeAsync(CancellationToken cancellationToken = default) => inner.InitializeAsync(cancellationToken);

        public Task<(Experience Experience, bool Created)> InsertIfAbsentAsync(string tenantId, Experience experience, CancellationToken cancellationToken = default) =>
            inner.InsertIfAbsentAsync(tenantId, experience, cancellationToken);

        public async Task<IReadOnlyList<PatternStats>> FindCandidatesAsync(string tenantId, CandidateQuery query, int limit, CancellationToken cancellationToken = default)
        {
            var watch = Stopwatch.StartNew();
            var result = await inner.FindCandidatesAsync(tenantId, query, limit, cancellationToken);
            _candidates.Add(watch.Elapsed.TotalMilliseconds);
            _rows.Add(result.Count);
            return result;
        }

        public async Task<IReadOnlyList<Experience>> GetManyAsync(string tenantId, IReadOnlyCollection<string> ids, CancellationToken cancellationToken = default)
        {
            var watch = Stopwatch.StartNew();
            var result = await inner.GetManyAsync(tenantId, ids, cancellationToken);
            _lookups.Add(watch.Elapsed.TotalMilliseconds);
            return result;
        }

        public Task<long> DeleteAsync(string tenantId, IReadOnlyCollection<string> conversationIds, string? userId, CancellationToken cancellationToken = default) =>
            inner.DeleteAsync(tenantId, conversationIds, userId, cancellationToken);
    }

    private sealed class SimClock : TimeProvider
    {
        private DateTimeOffset _now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan by) => _now += by;
    }

    private sealed class NoEvents : IEventPublisher
    {
        public Task<string> PublishAsync<T>(string topic, string eventType, T data, PublishOptions? options = null, CancellationToken cancellationToken = default) =>
            Task.FromResult(options?.EventId ?? Guid.NewGuid().ToString("N"));
    }
}
