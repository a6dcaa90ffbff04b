using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using CloudMemory.BuildingBlocks.Embedded;
using CloudMemory.Context.Features.Query;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Conversations.Log;
using CloudMemory.Conversations.Sessions;
using CloudMemory.Conversations.Text;
using Dapr.Actors.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.Benchmarks;

/// <summary>
/// <c>context</c>: QueryMemoryContext latency against history length (ours vs the seed's algorithm),
/// HTTP query latency, WriteTurn throughput (in memory and PostgreSQL, in process and over HTTP),
/// and memory per idle session — all measured side by side in one run.
/// </summary>
internal static class ContextBenchmark
{
    private const string Tenant = "default";
    private static readonly int[] HistoryLengths = [10, 100, 1_000, 10_000];
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static async Task<int> RunAsync(string[] args)
    {
        var jsonPath = Option(args, "--json");
        var quick = args.Contains("--quick");
        var iterations = quick ? 300 : 2_000;
        var writeOps = quick ? 5_000 : 40_000;
        using var postgres = BenchPostgres.Acquire(Option(args, "--postgres"));

        Console.WriteLine($"CloudMemory context benchmark ({Environment.ProcessorCount} cores, {(quick ? "quick" : "full")} run)");
        // --part query|write|idle runs one part alone (profiling); every part runs by default.
        var part = Option(args, "--part");
        var only = Option(args, "--store"); // memory|postgres: one store alone (profiling)
        // --turn-indexing none|lexical|semantic: the WriteTurn hosts' turn indexing policy (default: the product's default)
        var turnIndexing = Option(args, "--turn-indexing");
        string[] hostArgs = turnIndexing is null ? [] : [$"--CloudMemory:LongTermMemory:TurnIndexing:Policy={turnIndexing}"];
        // --summary-chars N: each WriteTurn conversation starts with a checkpoint whose summary has N characters
        // (what every turn after a long conversation's first checkpoint carries along)
        var summaryChars = Option(args, "--summary-chars") is { } chars ? int.Parse(chars, System.Globalization.CultureInfo.InvariantCulture) : 0;
        var result = new Dictionary<string, object>();

        if (part is null or "query")
        {
            var query = new Dictionary<string, object>();
            foreach (var (name, connection) in Stores(postgres.ConnectionString).Where(s => only is null || s.Name == only))
            {
                query[name] = await MeasureQueriesAsync(connection, iterations);
            }
            result["query"] = query;
            result["httpQuery"] = await MeasureHttpQueryAsync(iterations);
        }
        if (part is null or "write")
        {
            var throughput = new Dictionary<string, object>();
            foreach (var (name, connection) in Stores(postgres.ConnectionString).Where(s => only is null || s.Name == only))
            {
                throughput[name] = await MeasureWriteTurnsAsync(connection, writeOps, hostArgs, summaryChars);
            }
            result["writeTurnPerSec"] = throughput;
        }
        if (part is null or "idle")
        {
            result["idleSessionBytes"] = await MeasureIdleSessionMemoryAsync(quick ? 5_000 : 20_000);
        }
        result["postgres"] = postgres.ConnectionString is null ? "not measured: no PostgreSQL" : "measured";

        if (jsonPath is not null)
        {
            await File.WriteAllTextAsync(jsonPath, JsonSerializer.Serialize(result, Indented));
            Console.WriteLine($"wrote {jsonPath}");
        }
        return 0;
    }

    private static IEnumerable<(string Name, string? Connection)> Stores(string? postgres)
    {
        yield return ("memory", null);
        if (postgres is not null)
        {
            yield return ("postgres", postgres);
        }
    }

    // --- QueryMemoryContext: ours vs the seed's algorithm, at growing history lengths ---

    private static async Task<Dictionary<string, object>> MeasureQueriesAsync(string? connection, int iterations)
    {
        await using var host = await BenchHost.StartAsync(connection, ["--CloudMemory:Memory:ModelContextWindow=2000"]);
        var ours = new Dictionary<string, object>();
        var seed = new Dictionary<string, object>();
        Console.WriteLine();
        Console.WriteLine($"QueryMemoryContext, {(connection is null ? "in-memory" : "PostgreSQL")} log, in process (window 2000 tokens: checkpoints every ~20 turns)");
        Console.WriteLine($"{"turns",8} {"ours p50 µs",12} {"ours p99 µs",12} {"seed p50 µs",12} {"seed p99 µs",12} {"since cp",9}");
        var service = host.Services.GetRequiredService<MemoryContextService>();
        var log = host.Services.GetRequiredService<IConversationLog>();
        var sessions = host.Services.GetRequiredService<SessionSnapshots>();
        // Let tiered JIT settle on both code paths before the first measured row.
        await host.CreateConversationAsync("warm-up", 30);
        var warmUp = new MemoryQueryRequest("warm-up", Query: "warm up");
        await Percentiles.MeasureAsync(iterations * 2, () => service.QueryAsync(Tenant, warmUp));
        await Percentiles.MeasureAsync(iterations * 2, () => SeedQueryAsync(sessions, log, warmUp));
        foreach (var turns in HistoryLengths)
        {
            var id = $"q-{turns}-{Guid.NewGuid():N}";
            await host.CreateConversationAsync(id, turns);
            var request = new MemoryQueryRequest(id, Query: "Should I go to the hospital today?");
            var oursStats = await Percentiles.MeasureAsync(iterations, () => service.QueryAsync(Tenant, request));
            var seedStats = await Percentiles.MeasureAsync(iterations, () => SeedQueryAsync(sessions, log, request));
            var since = (await log.GetStatsAsync(Tenant, id))!.MessagesSinceCheckpoint;
            ours[turns.ToString()] = oursStats.ToJson();
            seed[turns.ToString()] = seedStats.ToJson();
            Console.WriteLine($"{turns,8} {oursStats.P50,12:F1} {oursStats.P99,12:F1} {seedStats.P50,12:F1} {seedStats.P99,12:F1} {since,9}");
        }
        return new Dictionary<string, object> { ["ours"] = ours, ["seed"] = seed };
    }

    /// <summary>
    /// The seed's QueryMemoryContext (seed 002 §3.1), faithfully: GetShortMemory, re-read every message
    /// since the checkpoint, render the full history and re-count its tokens on every query.
    /// </summary>
    private static async Task<MemoryContext> SeedQueryAsync(SessionSnapshots sessions, IConversationLog log, MemoryQueryRequest request)
    {
        var reply = await sessions.GetAsync(Tenant, request.ConversationId!);
        var session = reply.Value!.Session;
        var messages = (await log.ReadSinceCheckpointAsync(Tenant, request.ConversationId!)).Messages;
        var fullHistory = ConversationText.RenderHistory(messages);
        var estimated = TokenEstimator.Estimate(fullHistory + "\n" + request.Query);
        var ratio = estimated / 2000.0;
        var history = session.MessageContext.Mode == MemoryMode.SummaryN
            ? ConversationText.ComposeSummaryAndRecent(session.MessageContext.Summary, session.MessageContext.WindowMessages)
            : fullHistory;
        return new MemoryContext(request.ConversationId!, session.MessageContext.Mode, session, history, fullHistory, estimated, ratio, ratio >= 0.75, 0.75, 2000);
    }

    // --- QueryMemoryContext over real HTTP (Kestrel on loopback) ---

    private static async Task<Dictionary<string, object>> MeasureHttpQueryAsync(int iterations)
    {
        await using var host = await BenchHost.StartAsync(null, ["--CloudMemory:Memory:ModelContextWindow=2000"]);
        using var http = new HttpClient { BaseAddress = host.BaseAddress };
        var result = new Dictionary<string, object>();
        Console.WriteLine();
        Console.WriteLine("QueryMemoryContext over HTTP (embedded host, in-memory, Kestrel loopback, one client)");
        foreach (var turns in new[] { 10, 10_000 })
        {
            var id = $"h-{turns}-{Guid.NewGuid():N}";
            await host.CreateConversationAsync(id, turns);
            var body = JsonSerializer.Serialize(new MemoryQueryRequest(id, Query: "Should I go to the hospital today?"), ContractsJson.Options);
            var stats = await Percentiles.MeasureAsync(iterations, async () =>
            {
                using var content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
                using var response = await http.PostAsync("/v1/context/query", content);
                response.EnsureSuccessStatusCode();
                await response.Content.ReadAsByteArrayAsync();
            });
            result[turns.ToString()] = stats.ToJson();
            Console.WriteLine($"  {turns,6} turns: p50 {stats.P50 / 1000:F3} ms, p99 {stats.P99 / 1000:F3} ms");
        }
        return result;
    }

    // --- WriteTurn throughput across many conversations ---

    private static async Task<Dictionary<string, object>> MeasureWriteTurnsAsync(string? connection, int operations, string[] hostArgs, int summaryChars = 0)
    {
        const int conversations = 1_000;
        const int concurrency = 64;
        await using var host = await BenchHost.StartAsync(connection, hostArgs);
        var prefix = Guid.NewGuid().ToString("N")[..8];
        var summary = summaryChars > 0 ? string.Concat(Enumerable.Repeat("The patient reported a headache and fever; rest and fluids advised. ", summaryChars / 68 + 1))[..summaryChars] : null;
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = concurrency }) { BaseAddress = host.BaseAddress };
        for (var c = 0; c < conversations; c++)
        {
            await host.CreateAsync($"w-{prefix}-{c}");
            if (summary is not null)
            {
                await host.WriteTurnAsync($"w-{prefix}-{c}", 0);
                using var checkpoint = await http.PostAsJsonAsync($"/v1/sessions/w-{prefix}-{c}/checkpoints", new CheckpointRequest(summary, 1), ContractsJson.Options);
                if (!checkpoint.IsSuccessStatusCode)
                {
                    throw new InvalidOperationException(await checkpoint.Content.ReadAsStringAsync());
                }
            }
        }
        if (summary is not null)
        {
            Console.WriteLine($"  (every conversation has a checkpoint summary of {summaryChars} characters)");
        }
        var actors = host.Services.GetRequiredService<IActorProxyFactory>();
        var inProcess = await Throughput.MeasureAsync(operations, concurrency, async i =>
        {
            var id = $"w-{prefix}-{i % conversations}";
            var reply = await actors.Conversation(Tenant, id).WriteTurn(new WriteTurnCommand(Tenant, id, null, "bench", $"question {i}", $"answer {i}", null));
            if (!reply.IsSuccess)
            {
                throw new InvalidOperationException(reply.Detail);
            }
        });
        var overHttp = await Throughput.MeasureAsync(operations / 2, concurrency, async i =>
        {
            using var response = await http.PostAsJsonAsync($"/v1/sessions/w-{prefix}-{i % conversations}/turns",
                new WriteTurnRequest(null, "bench", $"question {i}", $"answer {i}"), ContractsJson.Options);
            response.EnsureSuccessStatusCode();
        });
        var name = connection is null ? "in-memory" : "PostgreSQL";
        Console.WriteLine();
        Console.WriteLine($"WriteTurn, {name} log, {conversations} conversations, {concurrency} concurrent writers");
        Console.WriteLine($"  in process: {inProcess:F0} turns/s");
        Console.WriteLine($"  over HTTP:  {overHttp:F0} turns/s");
        return new Dictionary<string, object> { ["inProcess"] = Math.Round(inProcess), ["http"] = Math.Round(overHttp) };
    }

    // --- Memory per idle session ---

    private static async Task<Dictionary<string, object>> MeasureIdleSessionMemoryAsync(int sessions)
    {
        var clock = new OffsetTimeProvider();
        await using var host = await BenchHost.StartAsync(null, ["--CloudMemory:Session:SessionTtlSeconds=86400"], clock);
        await host.CreateAsync("warm-up");
        var before = Heap();
        for (var i = 0; i < sessions; i++)
        {
            await host.CreateAsync($"idle-{i}");
        }
        var active = (Heap() - before) / (double)sessions;
        clock.Advance(TimeSpan.FromMinutes(61));
        await host.Services.GetRequiredService<EmbeddedActorRuntime>().DeactivateIdleAsync();
        var idle = (Heap() - before) / (double)sessions;
        Console.WriteLine();
        Console.WriteLine($"Memory per session ({sessions} sessions, in-memory state and log): {active:F0} B with its actor resident, {idle:F0} B once the actor is deactivated (idle)");
        return new Dictionary<string, object> { ["withActor"] = Math.Round(active), ["idle"] = Math.Round(idle) };
    }

    private static long Heap()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return GC.GetTotalMemory(forceFullCollection: true);
    }

    private static string? Option(string[] args, string name)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
    }
}

/// <summary>The embedded host started in process on a loopback port.</summary>
internal sealed class BenchHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private BenchHost(WebApplication app) => _app = app;

    public IServiceProvider Services => _app.Services;

    public Uri BaseAddress => new(_app.Urls.First());

    public static async Task<BenchHost> StartAsync(string? postgres, string[] settings, TimeProvider? clock = null)
    {
        string[] args = ["--urls=http://127.0.0.1:0", "--Logging:LogLevel:Default=Warning", "--CloudMemory:Runtime=Embedded", .. settings];
        if (postgres is not null)
        {
            args = [.. args, $"--ConnectionStrings:CloudMemory={postgres}"];
        }
        var app = Host.Program.Build(args, builder =>
        {
            if (clock is not null)
            {
                builder.Services.AddSingleton(clock);
            }
        });
        await app.StartAsync();
        return new BenchHost(app);
    }

    public async Task CreateAsync(string id)
    {
        var reply = await Services.GetRequiredService<IActorProxyFactory>().Conversation("default", id).Create(new CreateSessionCommand("default", id, "bench-user", "bench"));
        if (!reply.IsSuccess)
        {
            throw new InvalidOperationException(reply.Detail);
        }
    }

    public async Task WriteTurnAsync(string id, int i)
    {
        var reply = await Services.GetRequiredService<IActorProxyFactory>().Conversation("default", id).WriteTurn(
            new WriteTurnCommand("default", id, null, "triage", $"Turn {i}: the headache is back since {i % 7 + 1} days, with fever around 38.{i % 10}.",
                $"Answer {i}: keep resting, drink water, and take your temperature twice a day; see a doctor if it passes 39.", null));
        if (!reply.IsSuccess)
        {
            throw new InvalidOperationException(reply.Detail);
        }
    }

    /// <summary>A conversation of <paramref name="turns"/> turns, its automatic checkpoints done.</summary>
    public async Task CreateConversationAsync(string id, int turns)
    {
        await CreateAsync(id);
        for (var i = 0; i < turns; i++)
        {
            await WriteTurnAsync(id, i);
            if (i % 50 == 0)
            {
                await WorkflowsIdleAsync(); // keeps checkpoints in step with the turns, as a live conversation's would be
            }
        }
        await WorkflowsIdleAsync();
    }

    public Task WorkflowsIdleAsync() => Services.GetRequiredService<EmbeddedWorkflowRunner>().WhenIdleAsync();

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>Latency percentiles in microseconds.</summary>
internal sealed record Percentiles(double P50, double P99, int Samples)
{
    public static async Task<Percentiles> MeasureAsync<T>(int iterations, Func<Task<T>> action) => await MeasureAsync(iterations, async () => { await action(); });

    public static async Task<Percentiles> MeasureAsync(int iterations, Func<Task> action)
    {
        for (var i = 0; i < Math.Max(50, iterations / 5); i++)
        {
            await action();
        }
        var samples = new double[iterations];
        for (var i = 0; i < iterations; i++)
        {
            var start = Stopwatch.GetTimestamp();
            await action();
            samples[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        }
        Array.Sort(samples);
        return new Percentiles(samples[(int)(iterations * 0.50)], samples[Math.Min(iterations - 1, (int)(iterations * 0.99))], iterations);
    }

    public Dictionary<string, double> ToJson() => new() { ["p50Us"] = Math.Round(P50, 1), ["p99Us"] = Math.Round(P99, 1) };
}

/// <summary>Operations per second with a fixed number of concurrent workers.</summary>
internal static class Throughput
{
    public static async Task<double> MeasureAsync(int operations, int concurrency, Func<int, Task> operation)
    {
        // Half as many operations again, unmeasured, first: tiered JIT compiles hot methods again with
        // optimisation only once no new method has been compiled for a while, so after 2,000
        // operations the write path still ran as quickly-jitted code (seen in a perf map) and the
        // figure measured the JIT's progress more than the code.
        await RunAsync(operations / 2, concurrency, i => operation(operations + i));
        var start = Stopwatch.GetTimestamp();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var allocated = GC.GetTotalAllocatedBytes();
        var collections = (GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2));
        // PERF_CTL=FIFO: `perf record -D -1 --control fifo:FIFO` records the measured run alone.
        var perfControl = Environment.GetEnvironmentVariable("PERF_CTL");
        if (perfControl is not null)
        {
            await File.WriteAllTextAsync(perfControl, "enable\n");
        }
        await RunAsync(operations, concurrency, operation);
        if (perfControl is not null)
        {
            await File.WriteAllTextAsync(perfControl, "disable\n");
        }
        var elapsed = Stopwatch.GetElapsedTime(start);
        // Process CPU over the run (every thread, background work included) per operation: steadier
        // than the wall-clock rate on a shared 2-core machine.
        var cpuPerOperation = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMicroseconds / operations;
        Console.WriteLine($"  ({operations} operations, {concurrency} concurrent: {cpuPerOperation:F1} µs process CPU, "
            + $"{(GC.GetTotalAllocatedBytes() - allocated) / operations} B allocated per operation; "
            + $"GCs gen0/1/2 {GC.CollectionCount(0) - collections.Item1}/{GC.CollectionCount(1) - collections.Item2}/{GC.CollectionCount(2) - collections.Item3})");
        return operations / elapsed.TotalSeconds;
    }

    private static Task RunAsync(int operations, int concurrency, Func<int, Task> operation)
    {
        var next = -1;
        return Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < operations)
            {
                await operation(i);
            }
        }));
    }
}

/// <summary>System time plus an offset the benchmark moves forward.</summary>
internal sealed class OffsetTimeProvider : TimeProvider
{
    private TimeSpan _offset;

    public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + _offset;

    public void Advance(TimeSpan by) => _offset += by;
}
