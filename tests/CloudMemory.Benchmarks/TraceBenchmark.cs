using System.Diagnostics;
using System.Text.Json;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Traces;
using CloudMemory.Trace;
using CloudMemory.Trace.Features.Analysis;
using CloudMemory.Trace.Features.Diff;
using CloudMemory.Trace.Features.Read;
using CloudMemory.Trace.Features.Replay;
using CloudMemory.Trace.Features.Steps;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;

namespace CloudMemory.Benchmarks;

/// <summary>
/// <c>trace</c>: step ingest throughput in process (validation, audit, hashing and the group-commit
/// store write included) and over HTTP (<see cref="TraceHttpIngest"/>) with 1, 8 and 64 concurrent
/// writers, in memory and on PostgreSQL; read of a
/// 1,000-step trace tree and diff of two 1,000-step traces on PostgreSQL; analysis of a 1,000-step
/// trace against a tenant history of 100k steps; debug replay of a 10,000-step trace.
/// </summary>
internal static class TraceBenchmark
{
    private static readonly int[] Writers = [1, 8, 64];
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static async Task<int> RunAsync(string[] args)
    {
        var quick = args.Contains("--quick");
        var jsonPath = Option(args, "--json");
        var memorySteps = quick ? 64_000 : 256_000;
        var postgresSteps = quick ? 25_600 : 102_400;
        var readIterations = quick ? 40 : 200;
        using var postgres = BenchPostgres.Acquire(Option(args, "--postgres"));
        Console.WriteLine($"CloudMemory trace benchmark ({Environment.ProcessorCount} cores, {(quick ? "quick" : "full")} run)");
        if (Option(args, "--read-loop") is { } seconds)
        {
            await TraceBreakdown.ReadLoopAsync(postgres.ConnectionString!, double.Parse(seconds, System.Globalization.CultureInfo.InvariantCulture), (id, count) => Trace(id, count));
            return 0;
        }
        if (args.Contains("--breakdown"))
        {
            await TraceBreakdown.RunAsync(postgres.ConnectionString, Input, (id, count) => Trace(id, count));
            return 0;
        }
        var result = new Dictionary<string, object>();

        var memory = new InMemoryTraceStore();
        var ingestMemory = new Dictionary<string, double>();
        foreach (var writers in Writers)
        {
            ingestMemory[$"{writers} writers"] = await MeasureIngestAsync(memory, "bench-memory", writers, memorySteps);
        }
        result["ingestStepsPerSecMemory"] = ingestMemory;
        var httpSteps = quick ? 12_800 : 51_200;
        result["ingestStepsPerSecHttpMemory"] = await TraceHttpIngest.MeasureAsync(null, Writers, httpSteps, Input);

        var big = Trace("big", 10_000);
        await memory.AppendAsync([.. big.Select(s => new TenantStep("bench-memory", s, 0))]);
        var stored = await memory.GetTraceAsync("bench-memory", "big");
        result["replay10kMs"] = Latency(readIterations / 4 + 1, () =>
        {
            var r = TraceReplayer.Replay("big", "debug", stored, null, null,
                [new Breakpoint(Condition: "durationMs > 1000000")], [StepCondition.Parse("durationMs > 1000000")], null, null);
            if (r.StepsReplayed != 10_000)
            {
                throw new InvalidOperationException("replay did not cover the trace");
            }
            return Task.CompletedTask;
        });
        var history = await memory.GetDurationStatsAsync("bench-memory");
        var thousand = Trace("analysis", 1_000);
        result["analysis1kWith100kHistoryMs"] = Latency(readIterations, () =>
        {
            TraceAnalyzer.Analyze("analysis", thousand, history);
            return Task.CompletedTask;
        });
        result["historySteps"] = history.Sum(h => h.Count);

        if (postgres.ConnectionString is { } connection)
        {
            await using var dataSource = new NpgsqlDataSourceBuilder(connection) { ConnectionStringBuilder = { MaxAutoPrepare = 32 } }.Build();
            var store = new PostgresTraceStore(dataSource);
            await store.MigrateAsync();
            var ingestPostgres = new Dictionary<string, double>();
            foreach (var writers in Writers)
            {
                ingestPostgres[$"{writers} writers"] = await MeasureIngestAsync(store, "bench-pg-" + Guid.NewGuid().ToString("N")[..6], writers, postgresSteps);
            }
            result["ingestStepsPerSecPostgres"] = ingestPostgres;
            result["ingestStepsPerSecHttpPostgres"] = await TraceHttpIngest.MeasureAsync(connection, Writers, httpSteps, Input);

            var tenant = "bench-read-" + Guid.NewGuid().ToString("N")[..6];
            await store.AppendAsync([.. Trace("left", 1_000).Select(s => new TenantStep(tenant, s, 0))]);
            await store.AppendAsync([.. Trace("right", 1_000, divergeAt: 500).Select(s => new TenantStep(tenant, s, 0))]);
            // The tree read as GET /v1/traces/{id} does it: rows with raw payloads, the tree, and (second
            // figure) the JSON answer written; the third figure answers the way it did before: every step
            // decoded whole and the view serialized by System.Text.Json.
            result["treeRead1kPostgresMs"] = Latency(readIterations, async () =>
            {
                var rows = await store.GetTraceRowsAsync(tenant, "left");
                TraceViewBuilder.Build("left", rows.Steps);
            });
            result["treeRead1kPostgresWithJsonMs"] = Latency(readIterations, async () =>
            {
                var rows = await store.GetTraceRowsAsync(tenant, "left");
                await TraceViewJson.WriteAsync(Stream.Null, TraceViewBuilder.Build("left", rows.Steps), rows.Payloads);
            });
            result["treeRead1kPostgresSerializerMs"] = Latency(readIterations, async () =>
            {
                var steps = await store.GetTraceAsync(tenant, "left");
                await JsonSerializer.SerializeAsync(Stream.Null, TraceViewBuilder.Build("left", steps), ContractsJson.Options);
            });
            result["treeRead1kHttpPostgresMs"] = await TraceHttpIngest.MeasureTreeReadAsync(connection, readIterations, Input);
            // The first figure above is taken on the process's first reads of a trace, while the JIT is
            // still compiling the read path (`trace --breakdown` prints those reads one group at a time).
            // The same read again, after the ~150 reads above, is what a running service answers.
            result["treeRead1kPostgresWarmMs"] = Latency(readIterations, async () =>
            {
                var rows = await store.GetTraceRowsAsync(tenant, "left");
                TraceViewBuilder.Build("left", rows.Steps);
            });
            result["diff1kPostgresMs"] = Latency(readIterations, async () =>
            {
                var left = store.GetTraceAsync(tenant, "left");
                var right = store.GetTraceAsync(tenant, "right");
                var diff = TraceDiff.Compare("left", await left, "right", await right);
                if (diff.FirstDivergence?.StepIndex != 500)
                {
                    throw new InvalidOperationException("diff missed the divergence");
                }
            });
        }
        else
        {
            result["postgres"] = "not measured: no PostgreSQL";
        }

        foreach (var (key, value) in result)
        {
            Console.WriteLine($"{key,-32} {JsonSerializer.Serialize(value)}");
        }
        if (jsonPath is not null)
        {
            await File.WriteAllTextAsync(jsonPath, JsonSerializer.Serialize(result, Indented));
            Console.WriteLine($"wrote {jsonPath}");
        }
        return 0;
    }

    /// <summary>Steps/s through <see cref="TraceIngestor.IngestAsync"/>: writers each send batches of 100 steps of their own traces.</summary>
    private static async Task<double> MeasureIngestAsync(ITraceStore store, string tenant, int writers, int totalSteps)
    {
        await using var ingestor = new TraceIngestor(store, new NoPublisher(), Options.Create(new CloudMemory.Trace.TraceOptions()), TimeProvider.System, NullLogger<TraceIngestor>.Instance);
        const int batch = 100;
        var perWriter = totalSteps / writers / batch;
        var run = Guid.NewGuid().ToString("N")[..6];
        var batches = Enumerable.Range(0, writers).Select(w => Enumerable.Range(0, perWriter).Select(b =>
            (IReadOnlyList<TraceStepInput>)[.. Enumerable.Range(0, batch).Select(i => Input($"{run}-w{w}-t{b / 10}", (b % 10) * batch + i))]).ToList()).ToList();
        await ingestor.IngestAsync(tenant, [Input($"{run}-warm", 0)], null);
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var (gen0, gen1, gen2) = (GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2));
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(batches.Select(mine => Task.Run(async () =>
        {
            foreach (var steps in mine)
            {
                await ingestor.IngestAsync(tenant, steps, null);
            }
        })));
        var elapsed = clock.Elapsed;
        var rate = writers * perWriter * batch / elapsed.TotalSeconds;
        // How busy the process kept the cores, and the collections meanwhile: tells idle hand-offs from CPU cost.
        var busy = (Process.GetCurrentProcess().TotalProcessorTime - cpu) / (elapsed * Environment.ProcessorCount);
        Console.WriteLine($"  ingest {store.GetType().Name,-20} {writers,2} writers: {rate,10:N0} steps/s  (cpu {busy:P0}, " +
            $"gc {GC.CollectionCount(0) - gen0}/{GC.CollectionCount(1) - gen1}/{GC.CollectionCount(2) - gen2}, threads {ThreadPool.ThreadCount})");
        return Math.Round(rate);
    }

    private static readonly JsonElement Inputs = JsonSerializer.SerializeToElement(new { query = "which antibiotic for a sinus infection?", k = 5 }, ContractsJson.Options);
    private static readonly JsonElement Outputs = JsonSerializer.SerializeToElement(new { answer = "see the formulary entry", hits = 3 }, ContractsJson.Options);

    private static TraceStepInput Input(string traceId, int index) => new()
    {
        TraceId = traceId,
        StepIndex = index,
        StepType = (index % 3) switch { 0 => StepTypes.Llm, 1 => StepTypes.Tool, _ => StepTypes.Retrieval },
        Name = (index % 3) switch { 0 => "gpt-4o", 1 => "search", _ => "kb" },
        AgentId = "agent-" + (index % 4),
        ParentStepId = index % 10 == 0 ? null : $"s{index - index % 10}",
        StartedAt = DateTimeOffset.UnixEpoch.AddSeconds(1_790_000_000).AddMilliseconds(index * 10),
        DurationMs = 5 + index % 50,
        Inputs = Inputs,
        Outputs = Outputs,
        Usage = new TokenUsage(100, 20),
        ContextId = "conv-" + traceId,
    };

    /// <summary>A stored trace of <paramref name="count"/> steps in groups of 10 under a parent; from <paramref name="divergeAt"/> outputs differ.</summary>
    private static List<TraceStep> Trace(string traceId, int count, int divergeAt = int.MaxValue) =>
        [.. Enumerable.Range(0, count).Select(i => new TraceStep
        {
            TraceId = traceId,
            StepId = $"s{i}",
            StepIndex = i,
            AgentId = "agent-" + (i % 4),
            ParentStepId = i % 10 == 0 ? null : $"s{i - i % 10}",
            StepType = i % 10 == 0 ? StepTypes.Plan : i % 2 == 0 ? StepTypes.Tool : StepTypes.Llm,
            Name = i % 2 == 0 ? "search" : "gpt-4o",
            Inputs = Inputs,
            Outputs = Outputs,
            StartedAt = DateTimeOffset.UnixEpoch.AddSeconds(1_790_000_000).AddMilliseconds(i * 10),
            DurationMs = i % 10 == 0 ? 95 : 5 + i % 7,
            Success = i % 97 != 0,
            Error = i % 97 != 0 ? null : new StepError("timeout"),
            Usage = new TokenUsage(100, 20),
            InputHash = "in" + i % 13,
            OutputHash = i >= divergeAt ? "other" + i : "out" + i % 17,
            Audit = new StepAudit([], [], [], [], [], "compliant", []),
            RecordedAt = DateTimeOffset.UnixEpoch,
        })];

    private static Dictionary<string, double> Latency(int iterations, Func<Task> action)
    {
        for (var i = 0; i < Math.Min(5, iterations); i++)
        {
            action().GetAwaiter().GetResult();
        }
        var samples = new double[iterations];
        for (var i = 0; i < iterations; i++)
        {
            var clock = Stopwatch.StartNew();
            action().GetAwaiter().GetResult();
            samples[i] = clock.Elapsed.TotalMilliseconds;
        }
        Array.Sort(samples);
        return new Dictionary<string, double>
        {
            ["p50"] = Math.Round(samples[iterations / 2], 2),
            ["p95"] = Math.Round(samples[Math.Min(iterations - 1, (int)(iterations * 0.95))], 2),
        };
    }

    private static string? Option(string[] args, string name)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
    }

    private sealed class NoPublisher : IEventPublisher
    {
        public Task<string> PublishAsync<T>(string topic, string eventType, T data, PublishOptions? options = null, CancellationToken cancellationToken = default) =>
            Task.FromResult(options?.EventId ?? "");
    }
}
