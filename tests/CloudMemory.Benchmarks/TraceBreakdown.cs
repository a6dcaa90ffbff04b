using System.Diagnostics;
using System.Text.Json;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Traces;
using CloudMemory.Trace.Features.Read;
using CloudMemory.Trace.Features.Steps;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;

namespace CloudMemory.Benchmarks;

/// <summary>
/// <c>trace --breakdown</c>: where the time of the two hot paths goes, measured part by part on one
/// thread — ingest (validation + audit + hashing, the store append, the group commit) and the
/// 1,000-step tree read on PostgreSQL (the query alone, the step decode, the tree, the JSON answer).
/// </summary>
internal static class TraceBreakdown
{
    public static async Task RunAsync(string? postgresConnection, Func<string, int, TraceStepInput> input, Func<string, int, List<TraceStep>> trace)
    {
        Console.WriteLine("breakdown (one thread):");
        await using var ingestor = new TraceIngestor(new InMemoryTraceStore(), new NoPublisher(), Options.Create(new CloudMemory.Trace.TraceOptions()),
            TimeProvider.System, NullLogger<TraceIngestor>.Instance);
        const int batches = 200;
        var inputs = Enumerable.Range(0, batches).Select(b => (IReadOnlyList<TraceStepInput>)[.. Enumerable.Range(0, 100).Select(i => input($"bd-{b}", i))]).ToList();
        ingestor.Prepare("warm", inputs[0], null);
        var sample = inputs[0][1];
        var classifier = new CloudMemory.Trace.Features.Audit.SensitivityClassifier(new CloudMemory.Trace.AuditOptions());
        Micro("  classify (audit) of one step", () => classifier.Classify(sample.Inputs, sample.Outputs, sample.Error));
        // The same classifier on one string that the medical pre-check rules out, and on one it cannot
        // ("chive" holds the stem "hiv"), where the three medical regexes run as they did for every string before it.
        var ruledOut = JsonSerializer.SerializeToElement(new { note = "which antibiotic for a sinus infection?" });
        var notRuledOut = JsonSerializer.SerializeToElement(new { note = "which antibiotic for a chive infection?" });
        Micro("  classify, text the pre-check rules out", () => classifier.Classify(ruledOut, null, null));
        Micro("  classify, text the medical regexes scan", () => classifier.Classify(notRuledOut, null, null));
        Micro("  canonical hashes of one step", () => CanonicalHash.Of(sample.Inputs) + CanonicalHash.Of(sample.Outputs));
        Micro("  payload size of one step", () => sample.Inputs!.Value.GetRawText().Length + sample.Outputs!.Value.GetRawText().Length);
        Micro("  prepare of one step", () => ingestor.Prepare("bd", [sample], null));
        var clock = Stopwatch.StartNew();
        var prepared = inputs.Select(batch => ingestor.Prepare("bd", batch, null)).ToList();
        Report("prepare (validate, audit, hash)", batches * 100, clock.Elapsed);

        var store = new InMemoryTraceStore();
        clock.Restart();
        foreach (var batch in prepared)
        {
            await store.AppendAsync(batch);
        }
        Report("in-memory append", batches * 100, clock.Elapsed);

        clock.Restart();
        foreach (var batch in prepared)
        {
            await ingestor.WriteAsync([.. batch.Select(s => s with { TenantId = "bd2" })]);
        }
        Report("group commit + in-memory append", batches * 100, clock.Elapsed);

        clock.Restart();
        foreach (var batch in inputs)
        {
            await ingestor.IngestAsync("bd3", batch, null);
        }
        Report("IngestAsync end to end", batches * 100, clock.Elapsed);

        if (postgresConnection is null)
        {
            return;
        }
        await using var dataSource = new NpgsqlDataSourceBuilder(postgresConnection) { ConnectionStringBuilder = { MaxAutoPrepare = 32 } }.Build();
        var pg = new PostgresTraceStore(dataSource);
        await pg.MigrateAsync();
        var tenant = "bd-read-" + Guid.NewGuid().ToString("N")[..6];
        await pg.AppendAsync([.. trace("left", 1_000).Select(s => new TenantStep(tenant, s, 0))]);
        await ColdTreeReadAsync(pg, tenant);
        var steps = await pg.GetTraceAsync(tenant, "left");
        var view = TraceViewBuilder.Build("left", steps);
        var doc = JsonSerializer.SerializeToUtf8Bytes(steps[1], ContractsJson.Options);
        var bare = JsonSerializer.SerializeToUtf8Bytes(steps[1] with { Inputs = null, Outputs = null, Metadata = null }, ContractsJson.Options);
        Console.WriteLine($"  doc {doc.Length} bytes, without payload {bare.Length} bytes");
        Micro("  decode one step", () => JsonSerializer.Deserialize<TraceStep>(doc, ContractsJson.Options)!);
        Micro("  decode one step without payload", () => JsonSerializer.Deserialize<TraceStep>(bare, ContractsJson.Options)!);
        var binary = StepCodec.Encode(steps[1]);
        Console.WriteLine($"  stored binary form {binary.Length} bytes");
        Micro("  decode one step (stored binary form)", () => StepCodec.Decode(binary));
        var range = Enumerable.Repeat(binary, 256).ToArray();
        var decoded = new TraceStep[range.Length];
        Micro("  decode 256 steps one by one, per step", () =>
        {
            for (var i = 0; i < range.Length; i++)
            {
                decoded[i] = StepCodec.Decode(range[i]);
            }
            return decoded;
        }, perCall: range.Length);
        Micro("  decode 256 steps as a range, per step", () =>
        {
            StepCodec.DecodeRange(range, 0, range.Length, decoded);
            return decoded;
        }, perCall: range.Length);
        Micro("  JsonDocument.Parse of one step", () => { using var d = JsonDocument.Parse(doc); return d.RootElement.ValueKind; });
        Micro("  encode one step", () => JsonSerializer.SerializeToUtf8Bytes(steps[1], ContractsJson.Options));
        Micro("  decode one step", () => JsonSerializer.Deserialize<TraceStep>(doc, ContractsJson.Options)!);
        Time("query only (doc bytes, no decode)", async () =>
        {
            await using var command = dataSource.CreateCommand("SELECT doc FROM cm_trace_steps WHERE tenant_id = $1 AND trace_id = $2");
            command.Parameters.Add(new() { Value = tenant });
            command.Parameters.Add(new() { Value = "left" });
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                reader.GetFieldValue<byte[]>(0);
            }
        });
        Time("GetTraceAsync (query + decode)", async () => await pg.GetTraceAsync(tenant, "left"));
        Time("tree build (TraceViewBuilder)", () =>
        {
            TraceViewBuilder.Build("left", steps);
            return Task.CompletedTask;
        });
        Time("JSON answer (serialize view)", () =>
        {
            JsonSerializer.SerializeToUtf8Bytes(view, ContractsJson.Options);
            return Task.CompletedTask;
        });
        var storedDocs = Enumerable.Range(0, steps.Count).Select(i => StepCodec.Encode(steps[i])).ToList();
        var all = new TraceStep[storedDocs.Count];
        Micro("  CPU: decode 1,000 steps (one thread)", () => { StepCodec.DecodeRange(storedDocs, 0, storedDocs.Count, all); return all; }, perCall: 1000);
        Micro("  CPU: GetTraceAsync, per step", () => pg.GetTraceAsync(tenant, "left").GetAwaiter().GetResult(), perCall: 1000);
        Micro("  CPU: tree build, per step", () => TraceViewBuilder.Build("left", steps), perCall: 1000);
        Micro("  CPU: JSON answer (serializer), per step", () => JsonSerializer.SerializeToUtf8Bytes(view, ContractsJson.Options), perCall: 1000);
        Micro("  CPU: GetTraceRowsAsync, per step", () => pg.GetTraceRowsAsync(tenant, "left").GetAwaiter().GetResult(), perCall: 1000);
        var rows = await pg.GetTraceRowsAsync(tenant, "left");
        var headView = TraceViewBuilder.Build("left", rows.Steps);
        Micro("  CPU: JSON answer (TraceViewJson), per step", () =>
        {
            TraceViewJson.WriteAsync(Stream.Null, headView, rows.Payloads).GetAwaiter().GetResult();
            return headView;
        }, perCall: 1000);
        Time("GetTraceRowsAsync (query + head decode)", async () => await pg.GetTraceRowsAsync(tenant, "left"));
        // The whole tree read once the process is warm: read + tree (the benchmark's treeRead1kPostgresMs), and with the answer written.
        Time("warm: read + tree", async () =>
        {
            var read = await pg.GetTraceRowsAsync(tenant, "left");
            TraceViewBuilder.Build("left", read.Steps);
        });
        Time("warm: read + tree + JSON answer", async () =>
        {
            var read = await pg.GetTraceRowsAsync(tenant, "left");
            await TraceViewJson.WriteAsync(Stream.Null, TraceViewBuilder.Build("left", read.Steps), read.Payloads);
        });
        Time("JSON answer (TraceViewJson)", () => TraceViewJson.WriteAsync(Stream.Null, headView, rows.Payloads));
        Console.WriteLine($"  JSON answer {JsonSerializer.SerializeToUtf8Bytes(view, ContractsJson.Options).Length} bytes");
        await using (var explain = dataSource.CreateCommand("EXPLAIN (ANALYZE, BUFFERS) SELECT doc FROM cm_trace_steps WHERE tenant_id = $1 AND trace_id = $2"))
        {
            explain.Parameters.Add(new() { Value = tenant });
            explain.Parameters.Add(new() { Value = "left" });
            await using var reader = await explain.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                Console.WriteLine("    " + reader.GetString(0));
            }
        }
    }

    /// <summary>
    /// <c>trace --read-loop SECONDS</c>: the tree read of <c>GET /v1/traces/{id}</c> (rows, tree, JSON answer
    /// to a null stream) on one thread, over and over, for a profiler to attach to (e.g. <c>perf record</c>
    /// with <c>DOTNET_PerfMapEnabled=1</c>); prints the reads made and their median.
    /// </summary>
    public static async Task ReadLoopAsync(string postgresConnection, double seconds, Func<string, int, List<TraceStep>> trace)
    {
        await using var dataSource = new NpgsqlDataSourceBuilder(postgresConnection) { ConnectionStringBuilder = { MaxAutoPrepare = 32 } }.Build();
        var pg = new PostgresTraceStore(dataSource);
        await pg.MigrateAsync();
        var tenant = "bd-loop-" + Guid.NewGuid().ToString("N")[..6];
        await pg.AppendAsync([.. trace("left", 1_000).Select(s => new TenantStep(tenant, s, 0))]);
        var samples = new List<double>();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var until = Stopwatch.StartNew();
        while (until.Elapsed.TotalSeconds < seconds)
        {
            var clock = Stopwatch.StartNew();
            var rows = await pg.GetTraceRowsAsync(tenant, "left");
            await TraceViewJson.WriteAsync(Stream.Null, TraceViewBuilder.Build("left", rows.Steps), rows.Payloads);
            samples.Add(clock.Elapsed.TotalMilliseconds);
        }
        cpu = Process.GetCurrentProcess().TotalProcessorTime - cpu;
        samples.Sort();
        Console.WriteLine($"  {samples.Count} reads, p50 {samples[samples.Count / 2]:N2} ms, min {samples[0]:N2} ms, " +
            $"process CPU {cpu.TotalMilliseconds / samples.Count:N2} ms per read (read + tree + JSON answer)");
    }

    // The first reads of the tree in this process, as `trace --quick` makes them (5 warm-up reads, then 40
    // measured): wall and process CPU of each, in groups of 5, to tell JIT warm-up from steady state.
    private static async Task ColdTreeReadAsync(PostgresTraceStore pg, string tenant)
    {
        Console.WriteLine("  first 60 tree reads in this process (read + tree), per group of 5: median wall / median CPU (ms)");
        var line = new System.Text.StringBuilder("   ");
        var wall = new double[5];
        var cpu = new double[5];
        for (var i = 0; i < 60; i++)
        {
            var startCpu = Process.GetCurrentProcess().TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            var rows = await pg.GetTraceRowsAsync(tenant, "left");
            TraceViewBuilder.Build("left", rows.Steps);
            wall[i % 5] = clock.Elapsed.TotalMilliseconds;
            cpu[i % 5] = (Process.GetCurrentProcess().TotalProcessorTime - startCpu).TotalMilliseconds;
            if (i % 5 == 4)
            {
                Array.Sort(wall);
                Array.Sort(cpu);
                line.Append(System.Globalization.CultureInfo.InvariantCulture, $" {wall[2]:N1}/{cpu[2]:N1}");
            }
        }
        Console.WriteLine(line);
    }

    private static void Micro(string what, Func<object> action, int perCall = 1)
    {
        var n = Math.Max(20, 20_000 / perCall);
        for (var i = 0; i < n / 10; i++)
        {
            action();
        }
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        for (var i = 0; i < n; i++)
        {
            action();
        }
        var used = Process.GetCurrentProcess().TotalProcessorTime - cpu;
        Console.WriteLine($"  {what,-40} {used.TotalMicroseconds / n / perCall,8:N2} us CPU");
    }

    private static void Report(string what, int steps, TimeSpan elapsed) =>
        Console.WriteLine($"  {what,-40} {steps / elapsed.TotalSeconds,12:N0} steps/s");

    private static void Time(string what, Func<Task> action)
    {
        for (var i = 0; i < 5; i++)
        {
            action().GetAwaiter().GetResult();
        }
        var samples = new double[30];
        var allocated = GC.GetTotalAllocatedBytes(precise: true);
        for (var i = 0; i < samples.Length; i++)
        {
            var clock = Stopwatch.StartNew();
            action().GetAwaiter().GetResult();
            samples[i] = clock.Elapsed.TotalMilliseconds;
        }
        allocated = GC.GetTotalAllocatedBytes(precise: true) - allocated;
        Array.Sort(samples);
        // The minimum is what a read costs when nothing else runs (the machine is shared); allocations do not depend on load.
        Console.WriteLine($"  {what,-40} p50 {samples[15],8:N2} ms, min {samples[0],6:N2} ms, {allocated / samples.Length / 1024.0,8:N0} KiB allocated per call");
    }

    private sealed class NoPublisher : CloudMemory.BuildingBlocks.PubSub.IEventPublisher
    {
        public Task<string> PublishAsync<T>(string topic, string eventType, T data, CloudMemory.BuildingBlocks.PubSub.PublishOptions? options = null, CancellationToken cancellationToken = default) =>
            Task.FromResult(options?.EventId ?? "");
    }
}
