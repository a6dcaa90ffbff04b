using System.Diagnostics;
using System.Text.Json;
using CloudMemory.BuildingBlocks.Actors;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.BuildingBlocks.State;
using CloudMemory.Context.Features.Memories;
using CloudMemory.Context.Features.Query;
using CloudMemory.Context.Features.TurnIndexing;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Events;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Conversations.Log;
using CloudMemory.Conversations.Sessions;
using CloudMemory.Conversations.Text;
using Dapr.Actors.Client;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.Benchmarks;

/// <summary>
/// <c>perturn</c>: where the time of one turn write and one context query goes (issue 16), step by
/// step in process (Stopwatch and allocated bytes per call, the same public code paths the actor
/// and the query service run), and the CPU a turn costs with each indexing policy, background
/// indexing and embedding included (process CPU time until the backlogs are empty).
/// </summary>
internal static class PerTurnProfile
{
    private const string Tenant = "default";

    public static async Task<int> RunAsync(string[] args)
    {
        var quick = args.Contains("--quick");
        var iterations = quick ? 2_000 : 10_000;
        var turns = Option(args, "--turns") is { } count ? int.Parse(count, System.Globalization.CultureInfo.InvariantCulture) : quick ? 2_000 : 10_000;
        // Profiling one thing alone: --store memory|postgres, --policy none|lexical|semantic, --part steps|cpu.
        var only = Option(args, "--store");
        var policies = Option(args, "--policy") is { } one ? [one] : new[] { TurnIndexingPolicies.None, TurnIndexingPolicies.Lexical, TurnIndexingPolicies.Semantic };
        var part = Option(args, "--part");
        using var postgres = only == "memory" ? null : BenchPostgres.Acquire(Option(args, "--postgres"));
        var connections = new[] { null, postgres?.ConnectionString }.Distinct().Where(c => only is null || (only == "memory") == (c is null)).ToList();
        Console.WriteLine($"CloudMemory per-turn profile ({Environment.ProcessorCount} cores, {(quick ? "quick" : "full")} run)");
        foreach (var connection in part is null or "steps" ? connections : [])
        {
            await ProfileStepsAsync(connection, iterations);
        }
        foreach (var connection in part is null or "steps" or "index" ? connections : [])
        {
            await ProfileIndexingAsync(connection, iterations);
        }
        foreach (var connection in part is null or "cpu" ? connections : [])
        {
            foreach (var policy in policies)
            {
                await CpuPerTurnAsync(connection, policy, turns);
            }
        }
        return 0;
    }

    private static string? Option(string[] args, string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    private static async Task ProfileStepsAsync(string? connection, int iterations)
    {
        await using var host = await BenchHost.StartAsync(connection, ["--CloudMemory:Memory:ModelContextWindow=2000", "--CloudMemory:LongTermMemory:TurnIndexing:Policy=none"]);
        var store = connection is null ? "in-memory" : "PostgreSQL";
        var id = $"p-{Guid.NewGuid():N}";
        await host.CreateConversationAsync(id, 1_000);
        var services = host.Services;
        var sessions = services.GetRequiredService<SessionSnapshots>();
        var log = services.GetRequiredService<IConversationLog>();
        var state = services.GetRequiredService<IStateStore>();
        var query = services.GetRequiredService<MemoryContextService>();
        var request = new MemoryQueryRequest(id, Query: "Should I go to the hospital today?");
        var session = (await sessions.GetAsync(Tenant, id)).Value!.Session;
        var segment = await log.ReadSinceCheckpointAsync(Tenant, id);
        var window = ContextFit.Turns(session.MessageContext.WindowMessages).Select(t => (IReadOnlyList<ChatMessage>)t).ToList();
        var budget = ContextFit.UnitsOf(1500);
        var context = await query.QueryAsync(Tenant, request);

        Console.WriteLine();
        Console.WriteLine($"Context query, {store} log, 1,000-turn conversation (SUMMARY_N, {segment.Messages.Count} rows since the checkpoint, window {session.MessageContext.WindowMessages.Count} messages)");
        Console.WriteLine($"{"step",-58} {"p50 µs",8} {"mean µs",8} {"cpu µs",8} {"bytes",8}");
        await Step("session snapshot (state read + byte compare)", iterations, () => sessions.GetAsync(Tenant, id));
        await Step("log: checkpoint + turns since (one read)", iterations, () => log.ReadSinceCheckpointAsync(Tenant, id));
        await Step("render fullHistory", iterations, () => Task.FromResult(ConversationText.RenderHistory(segment.Messages)));
        await Step("fit summary + window to the budget", iterations, () => Task.FromResult(ContextFit.Fit(session.MessageContext.Summary, window, budget, ContextFit.UnitsOf(300))));
        await Step("serialize the answer (JSON, as HTTP does)", iterations, () => Task.FromResult(JsonSerializer.SerializeToUtf8Bytes(context, ContractsJson.Options)));
        await Step("QueryAsync, whole", iterations, () => query.QueryAsync(Tenant, request));

        Console.WriteLine();
        Console.WriteLine($"Turn write, {store} log, steps of ConversationActor.WriteTurn (same calls, one caller)");
        Console.WriteLine($"{"step",-58} {"p50 µs",8} {"mean µs",8} {"cpu µs",8} {"bytes",8}");
        var key = SessionKeys.For(Tenant, id);
        await Step("load session (state read + JSON parse)", iterations, () => state.GetJsonAsync<SessionValue>(key));
        var scratch = $"s-{Guid.NewGuid():N}";
        await host.CreateAsync(scratch);
        var n = 0;
        await Step("log append (turn + running counts)", Math.Min(iterations, 3_000), () => log.AppendTurnAsync(Tenant,
            new TurnAppend(scratch, null, "bench-user", "triage", $"question {n++} about the headache and the fever", "answer: rest, water, and see a doctor if it passes 39")));
        var turn = ConversationText.MessagesOf(segment.Messages[^1]);
        await Step("slide the session window", iterations, () =>
        {
            var copy = new List<ChatMessage>(session.MessageContext.WindowMessages);
            ConversationText.Slide(copy, turn, 8, budget);
            return Task.FromResult(copy);
        });
        await Step("save session (JSON + state write)", iterations, () => state.SaveJsonAsync(key + "-copy", session));
        var written = new TurnWritten(Tenant, id, "m", "bench-user", 1, "triage", "question", "answer", MemoryMode.SummaryN, 100, 0);
        await Step("TurnWritten event payload (JSON)", iterations, () => Task.FromResult(JsonSerializer.SerializeToElement(written, ContractsJson.Options)));
        var actors = services.GetRequiredService<IActorProxyFactory>();
        await Step("WriteTurn through the actor, whole", Math.Min(iterations, 3_000), () => actors.Conversation(Tenant, scratch).WriteTurn(
            new WriteTurnCommand(Tenant, scratch, null, "triage", $"question {n++}", "answer", null)));
    }

    // The steps of a turn's way into long-term memory (the turn-written event, then the indexer's
    // batch), per turn. The host's own indexer is off (policy none), so only the measured calls run.
    private static async Task ProfileIndexingAsync(string? connection, int iterations)
    {
        await using var host = await BenchHost.StartAsync(connection, ["--CloudMemory:LongTermMemory:TurnIndexing:Policy=none"]);
        var store = connection is null ? "in-memory" : "PostgreSQL";
        var services = host.Services;
        var memory = services.GetRequiredService<ILongTermMemory>();
        var memories = services.GetRequiredService<IMemoryStore>();
        var handler = services.GetServices<Subscription>().First(s => s.Topic == Topics.TurnWritten).Handler;
        var n = 0;
        string Query(int i) => $"Turn {i}: the headache is back since {i % 7 + 1} days, with fever around 38.{i % 10}.";
        const string Answer = "Answer: keep resting, drink water, and take your temperature twice a day; see a doctor if it passes 39.";
        var text = ConversationText.RenderTurn(Query(1), Answer);
        const int batch = 256;
        var batches = Math.Max(20, iterations / 64);

        Console.WriteLine();
        Console.WriteLine($"Turn indexing, {store} long-term memory, per turn (batches of {batch} as the indexer writes them)");
        Console.WriteLine($"{"step",-58} {"p50 µs",8} {"mean µs",8} {"cpu µs",8} {"bytes",8}");
        var written = new TurnWritten(Tenant, "c", "m", "bench-user", 1, "triage", Query(1), Answer, MemoryMode.FullHistory, 100, 0);
        await Step("turn-written envelope (CloudEvent, data as JSON)", iterations, () => Task.FromResult(CloudEventFormat.Create(
            Guid.NewGuid().ToString("N"), "cloudmemory", EventTypes.TurnWritten, written, DateTimeOffset.UtcNow, null, Topics.TurnWritten, Topics.PubSubName, null, Tenant)));
        var envelope = CloudEventFormat.Create("e", "cloudmemory", EventTypes.TurnWritten, written, DateTimeOffset.UtcNow, null, Topics.TurnWritten, Topics.PubSubName, null, Tenant);
        await Step("turn-written handler (read + render; queueing off)", iterations, () => handler(envelope, CancellationToken.None));
        await Step("lexical terms of one turn (span enumeration)", iterations, () =>
        {
            var count = 0;
            foreach (var _ in TextAnalysis.EnumerateLexicalTerms(text, true, stackalloc char[128]))
            {
                count++;
            }
            return Task.FromResult(count);
        });
        List<MessageToIndex> Batch() => Enumerable.Range(0, batch).Select(_ => n++)
            .Select(i => new MessageToIndex($"c-{i % 200}", $"m-{i}", ConversationText.RenderTurn(Query(i), Answer), DateTimeOffset.UtcNow, "bench-user")).ToList();
        await Step("IndexMessagesAsync (ids, hashes, look-up, store write)", batches, () => memory.IndexMessagesAsync(Tenant, Batch(), embed: false), per: batch);
        var ids = new List<string>(batch);
        await Step("  of which the store's UpsertManyAsync", batches, () =>
        {
            var now = DateTimeOffset.UtcNow;
            var entries = Enumerable.Range(0, batch).Select(_ => n++).Select(i => (new MemoryEntry($"x-{i}", Tenant, "bench-user", $"c-{i % 200}", null, MemoryTypes.Message,
                ConversationText.RenderTurn(Query(i), Answer), new Dictionary<string, string>(StringComparer.Ordinal), [], now, now, 0, null), $"h{i}")).ToList();
            return memories.UpsertManyAsync(entries, awaitEmbedding: false);
        }, per: batch);
    }

    // Process CPU time per turn from the first measured write until every background backlog is empty (after a warm-up).
    private static async Task CpuPerTurnAsync(string? connection, string policy, int turns)
    {
        await using var host = await BenchHost.StartAsync(connection, [$"--CloudMemory:LongTermMemory:TurnIndexing:Policy={policy}"]);
        var prefix = Guid.NewGuid().ToString("N")[..8];
        const int conversations = 200;
        for (var c = 0; c < conversations; c++)
        {
            await host.CreateAsync($"c-{prefix}-{c}");
        }
        var actors = host.Services.GetRequiredService<IActorProxyFactory>();
        var indexer = host.Services.GetRequiredService<TurnIndexer>();
        var embeddings = host.Services.GetRequiredService<EmbeddingPipeline>();
        // Warm-up (JIT tiering, every conversation's actor active): five turns per conversation, drained.
        await WriteAsync(turns, turns + (5 * conversations));
        await host.WorkflowsIdleAsync();
        await indexer.WaitForIdleAsync();
        await embeddings.WaitForIdleAsync();
        var process = Process.GetCurrentProcess();
        process.Refresh();
        var cpu = process.TotalProcessorTime;
        var allocated = GC.GetTotalAllocatedBytes();
        var paused = GC.GetTotalPauseDuration();
        int[] collections = [GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2)];
        var start = Stopwatch.GetTimestamp();
        await WriteAsync(0, turns);
        var answered = Stopwatch.GetElapsedTime(start);
        process.Refresh();
        var cpuAnswered = process.TotalProcessorTime - cpu;
        await host.WorkflowsIdleAsync();
        await indexer.WaitForIdleAsync();
        await embeddings.WaitForIdleAsync();
        var drained = Stopwatch.GetElapsedTime(start);
        process.Refresh();
        var cpuPerTurn = (process.TotalProcessorTime - cpu).TotalMilliseconds / turns;
        var bytesPerTurn = (GC.GetTotalAllocatedBytes() - allocated) / turns;
        Console.WriteLine($"  {(connection is null ? "in-memory" : "PostgreSQL"),-10} policy {policy,-8}: {turns / answered.TotalSeconds,7:F0} turns/s until the last answer, " +
            $"{turns / drained.TotalSeconds,7:F0} turns/s including background work, CPU {cpuPerTurn:F3} ms per turn (this process, all of it; " +
            $"{cpuAnswered.TotalMilliseconds / turns:F3} ms by the last answer), {bytesPerTurn:N0} bytes allocated per turn, " +
            $"GC pauses {(GC.GetTotalPauseDuration() - paused).TotalMilliseconds / turns:F3} ms per turn " +
            $"(gen0/1/2 collections {GC.CollectionCount(0) - collections[0]}/{GC.CollectionCount(1) - collections[1]}/{GC.CollectionCount(2) - collections[2]})");

        Task WriteAsync(int from, int to)
        {
            var next = from - 1;
            return Task.WhenAll(Enumerable.Range(0, 32).Select(async _ =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < to)
                {
                    var id = $"c-{prefix}-{i % conversations}";
                    var reply = await actors.Conversation(Tenant, id).WriteTurn(
                        new WriteTurnCommand(Tenant, id, null, "triage", $"Turn {i}: the headache is back since {i % 7 + 1} days, with fever around 38.{i % 10}.",
                            $"Answer {i}: keep resting, drink water, and take your temperature twice a day; see a doctor if it passes 39.", null));
                    if (!reply.IsSuccess)
                    {
                        throw new InvalidOperationException(reply.Detail);
                    }
                }
            }));
        }
    }

    // p50 and mean of one call, and bytes per call, each divided by per (calls that do per things at once).
    private static async Task Step<T>(string name, int iterations, Func<Task<T>> action, int per = 1)
    {
        for (var i = 0; i < Math.Min(200, iterations); i++)
        {
            await action();
        }
        var samples = new double[iterations];
        var bytes = GC.GetAllocatedBytesForCurrentThread();
        using var process = Process.GetCurrentProcess();
        var cpu = process.TotalProcessorTime;
        var total = Stopwatch.GetTimestamp();
        for (var i = 0; i < iterations; i++)
        {
            var start = Stopwatch.GetTimestamp();
            await action();
            samples[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        }
        var mean = Stopwatch.GetElapsedTime(total).TotalMicroseconds / iterations;
        process.Refresh();
        // Process CPU per call (GC and whatever else the process did meanwhile included): on a loaded
        // machine a steadier guide than the wall clock.
        var cpuMean = (process.TotalProcessorTime - cpu).TotalMicroseconds / iterations;
        var perCall = (GC.GetAllocatedBytesForCurrentThread() - bytes) / iterations;
        Array.Sort(samples);
        Console.WriteLine($"  {name,-56} {samples[iterations / 2] / per,8:F1} {mean / per,8:F1} {cpuMean / per,8:F1} {perCall / per,8}");
    }

    private static Task Step(string name, int iterations, Func<Task> action, int per = 1) => Step(name, iterations, async () =>
    {
        await action();
        return 0;
    }, per);
}
