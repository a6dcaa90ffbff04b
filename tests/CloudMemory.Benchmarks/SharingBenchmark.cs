using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using CloudMemory.Contracts;
using CloudMemory.Session.Features.SharedContexts;
using Dapr.Actors.Client;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.Benchmarks;

/// <summary>
/// <c>sharing</c> (issue 12): sync latency of shared contexts (an update accepted → every other
/// member's follower has it) with 2, 8 and 32 members, in process and over the embedded SSE stream;
/// update throughput on one context and across 1,000 contexts; and conflict outcomes of 64
/// concurrent writers on one field under each conflict policy.
/// </summary>
internal static class SharingBenchmark
{
    private const string Tenant = "default";
    private static readonly int[] MemberCounts = [2, 8, 32];
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static async Task<int> RunAsync(string[] args)
    {
        var quick = args.Contains("--quick");
        var jsonPath = Option(args, "--json");
        var updates = quick ? 200 : 1_000;
        var throughputOps = quick ? 20_000 : 100_000;
        Console.WriteLine($"CloudMemory sharing benchmark ({Environment.ProcessorCount} cores, {(quick ? "quick" : "full")} run)");
        await using var host = await BenchHost.StartAsync(null, []);
        var result = new Dictionary<string, object>();

        var inProcess = new Dictionary<string, object>();
        var sse = new Dictionary<string, object>();
        foreach (var members in MemberCounts)
        {
            var local = await MeasureInProcessLatencyAsync(host, members, updates);
            inProcess[members.ToString()] = local.ToJson();
            Console.WriteLine($"sync latency in process, {members,2} members: p50 {local.P50:F3} ms, p99 {local.P99:F3} ms ({updates} updates)");
            var stream = await MeasureSseLatencyAsync(host, members, updates);
            sse[members.ToString()] = stream.ToJson();
            Console.WriteLine($"sync latency over SSE,   {members,2} members: p50 {stream.P50:F3} ms, p99 {stream.P99:F3} ms ({updates} updates)");
        }
        result["syncLatencyMs"] = new Dictionary<string, object> { ["inProcess"] = inProcess, ["embeddedSse"] = sse };

        var one = await MeasureThroughputAsync(host, contexts: 1, throughputOps / 4);
        Console.WriteLine($"updates/s on one context (64 writers): {one:F0}");
        var many = await MeasureThroughputAsync(host, contexts: 1_000, throughputOps);
        Console.WriteLine($"updates/s across 1,000 contexts (64 writers): {many:F0}");
        result["updatesPerSec"] = new Dictionary<string, object> { ["oneContext"] = Math.Round(one), ["thousandContexts"] = Math.Round(many) };

        var contention = new Dictionary<string, object>();
        foreach (var policy in Shared.ConflictPolicies)
        {
            var outcome = await MeasureContentionAsync(host, policy);
            contention[policy] = outcome;
            Console.WriteLine($"64 writers, {policy,-16}: accepted {outcome["accepted"],2}, refused {outcome["refused"],2}, final {outcome["final"]} (correct: {outcome["correct"]})");
        }
        result["contention64"] = contention;

        if (jsonPath is not null)
        {
            await File.WriteAllTextAsync(jsonPath, JsonSerializer.Serialize(result, Indented));
            Console.WriteLine($"wrote {jsonPath}");
        }
        return 0;
    }

    // --- sync latency ---

    private static async Task<Stats> MeasureInProcessLatencyAsync(BenchHost host, int members, int updates)
    {
        var id = await CreateAsync(host, members, new { f = new { value = 0, conflict = "last-writer-wins" } });
        var store = host.Services.GetRequiredService<SharedContextStore>();
        var feed = host.Services.GetRequiredService<SharedContextFeed>();
        using var cancel = new CancellationTokenSource();
        var tracker = new ArrivalTracker(members - 1);
        var followers = Enumerable.Range(1, members - 1).Select(_ => Task.Run(async () =>
        {
            try
            {
                await foreach (var change in SharedContextFollower.FollowAsync(store, feed, Tenant, id, 1, TimeSpan.FromSeconds(5), cancel.Token))
                {
                    tracker.Arrived(change.Seq);
                }
            }
            catch (OperationCanceledException)
            {
            }
        })).ToList();
        await Task.Delay(200); // followers subscribed
        var latencies = await MeasureUpdatesAsync(updates, tracker, firstSeq: 2, i => UpdateAsync(host, id, "a0", new { f = new { set = i } }));
        await cancel.CancelAsync();
        await Task.WhenAll(followers);
        return Stats.Of(latencies);
    }

    private static async Task<Stats> MeasureSseLatencyAsync(BenchHost host, int members, int updates)
    {
        var id = await CreateAsync(host, members, new { f = new { value = 0, conflict = "last-writer-wins" } });
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 256 }) { BaseAddress = host.BaseAddress, Timeout = Timeout.InfiniteTimeSpan };
        using var cancel = new CancellationTokenSource();
        var tracker = new ArrivalTracker(members - 1);
        var connected = new CountdownEvent(members - 1);
        var followers = Enumerable.Range(1, members - 1).Select(m => Task.Run(async () =>
        {
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/shared-contexts/{id}/changes");
                request.Headers.Add("X-Agent-Id", $"a{m}");
                request.Headers.Add("Accept", "text/event-stream");
                request.Headers.Add("Last-Event-ID", "1");
                using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel.Token);
                response.EnsureSuccessStatusCode();
                using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancel.Token));
                connected.Signal();
                while (await reader.ReadLineAsync(cancel.Token) is { } line)
                {
                    if (line.StartsWith("id: ", StringComparison.Ordinal))
                    {
                        tracker.Arrived(long.Parse(line.AsSpan(4), System.Globalization.CultureInfo.InvariantCulture));
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        })).ToList();
        connected.Wait(TimeSpan.FromSeconds(30));
        var latencies = await MeasureUpdatesAsync(updates, tracker, firstSeq: 2, async i =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Patch, $"/v1/shared-contexts/{id}") { Content = JsonContent.Create(new { baseVersion = 1, changes = new { f = new { set = i } } }) };
            request.Headers.Add("X-Agent-Id", "a0");
            using var response = await http.SendAsync(request);
            response.EnsureSuccessStatusCode();
        });
        await cancel.CancelAsync();
        await Task.WhenAll(followers);
        return Stats.Of(latencies);
    }

    // One update at a time: from sending it until the last other member has it.
    private static async Task<List<double>> MeasureUpdatesAsync(int updates, ArrivalTracker tracker, long firstSeq, Func<int, Task> update)
    {
        var latencies = new List<double>(updates);
        for (var i = 0; i < updates; i++)
        {
            var seq = firstSeq + i;
            var everyone = tracker.WhenAll(seq);
            var start = Stopwatch.GetTimestamp();
            await update(i);
            var done = await everyone.WaitAsync(TimeSpan.FromSeconds(30));
            latencies.Add(Stopwatch.GetElapsedTime(start, done).TotalMilliseconds);
        }
        return latencies;
    }

    // --- throughput ---

    private static async Task<double> MeasureThroughputAsync(BenchHost host, int contexts, int operations)
    {
        var ids = new string[contexts];
        for (var c = 0; c < contexts; c++)
        {
            ids[c] = await CreateAsync(host, 2, new { n = new { value = 0, conflict = "counter" } });
        }
        var next = -1;
        var start = Stopwatch.GetTimestamp();
        await Task.WhenAll(Enumerable.Range(0, 64).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < operations)
            {
                var reply = await UpdateAsync(host, ids[i % contexts], "a1", new { n = new { increment = 1 } });
                if (!reply.IsSuccess)
                {
                    throw new InvalidOperationException(reply.Detail);
                }
            }
        })));
        var seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        var store = host.Services.GetRequiredService<SharedContextStore>();
        long total = 0;
        foreach (var id in ids)
        {
            total += (await store.GetAsync(Tenant, id))!.Fields["n"].Value.GetInt64();
        }
        if (total != operations)
        {
            throw new InvalidOperationException($"lost updates: {total} of {operations}");
        }
        return operations / seconds;
    }

    // --- 64 writers on one field ---

    private static async Task<Dictionary<string, object>> MeasureContentionAsync(BenchHost host, string policy)
    {
        object initial = policy switch
        {
            "append" or "set-union" => Array.Empty<int>(),
            "counter" => 0,
            "map-merge" => new { },
            _ => -1,
        };
        var id = await CreateAsync(host, 65, new Dictionary<string, object> { ["f"] = new { value = initial, conflict = policy } });
        var replies = await Task.WhenAll(Enumerable.Range(0, 64).Select(i => Task.Run(() => UpdateAsync(host, id, $"a{i + 1}", policy switch
        {
            "append" or "set-union" => new { f = new { add = i } },
            "counter" => new { f = new { increment = 1 } },
            "map-merge" => new { f = new { set = new Dictionary<string, int> { [$"k{i}"] = i } } },
            _ => (object)new { f = new { set = i } },
        }))));
        var accepted = replies.Count(r => r.IsSuccess);
        var refused = replies.Count(r => r.Status == 409);
        var doc = (await host.Services.GetRequiredService<SharedContextStore>().GetAsync(Tenant, id))!;
        var value = doc.Fields["f"].Value;
        var correct = accepted + refused == 64 && policy switch
        {
            "reject" => accepted == 1 && value.GetInt32() is >= 0 and < 64,
            "last-writer-wins" => accepted == 64 && value.GetInt32() is >= 0 and < 64,
            "append" or "set-union" => accepted == 64 && value.EnumerateArray().Select(e => e.GetInt32()).Order().SequenceEqual(Enumerable.Range(0, 64)),
            "counter" => accepted == 64 && value.GetInt32() == 64,
            "max" => accepted == 64 && value.GetInt32() == 63,
            "min" => accepted == 64 && value.GetInt32() == -1,
            "map-merge" => accepted == 64 && value.EnumerateObject().Count() == 64,
            _ => false,
        } && doc.Version == 1 + accepted;
        var shown = value.ValueKind is JsonValueKind.Array ? $"[{value.GetArrayLength()} items]" : value.ValueKind is JsonValueKind.Object ? $"{{{value.EnumerateObject().Count()} keys}}" : value.GetRawText();
        return new Dictionary<string, object> { ["accepted"] = accepted, ["refused"] = refused, ["final"] = shown, ["correct"] = correct };
    }

    // --- helpers ---

    private static async Task<string> CreateAsync(BenchHost host, int members, object fields)
    {
        var id = "bench-" + Guid.NewGuid().ToString("N")[..12];
        var request = JsonSerializer.Deserialize<CreateSharedContextRequest>(JsonSerializer.Serialize(new
        {
            id,
            members = Enumerable.Range(1, members - 1).Select(m => new { agentId = $"a{m}", role = "write" }),
            fields,
        }, ContractsJson.Options), ContractsJson.Options)!;
        var reply = await host.Services.GetRequiredService<IActorProxyFactory>().SharedContext(Tenant, id).Create(
            new CreateSharedContextCommand(Tenant, id, "a0", request, null, id));
        return reply.IsSuccess ? id : throw new InvalidOperationException(reply.Detail);
    }

    private static Task<SharedReply<SharedContextAck>> UpdateAsync(BenchHost host, string id, string agent, object changes)
    {
        var parsed = JsonSerializer.Deserialize<Dictionary<string, FieldChange>>(JsonSerializer.Serialize(changes, ContractsJson.Options), ContractsJson.Options)!;
        return host.Services.GetRequiredService<IActorProxyFactory>().SharedContext(Tenant, id).Update(
            new UpdateSharedContextCommand(Tenant, id, agent, new UpdateSharedContextRequest { BaseVersion = 1, Changes = parsed }));
    }

    private static string? Option(string[] args, string name)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
    }

    /// <summary>Counts which followers have which seq; completes when all have it, with the Stopwatch timestamp of the last arrival.</summary>
    private sealed class ArrivalTracker(int followers)
    {
        private readonly ConcurrentDictionary<long, (int Count, TaskCompletionSource<long> Done)> _seqs = new();

        public Task<long> WhenAll(long seq) => Entry(seq).Done.Task;

        public void Arrived(long seq)
        {
            var now = Stopwatch.GetTimestamp();
            var entry = _seqs.AddOrUpdate(seq, _ => (1, new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously)), (_, e) => (e.Count + 1, e.Done));
            if (entry.Count == followers)
            {
                entry.Done.TrySetResult(now);
            }
        }

        private (int Count, TaskCompletionSource<long> Done) Entry(long seq) =>
            _seqs.GetOrAdd(seq, _ => (0, new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously)));
    }

    private sealed record Stats(double P50, double P99, double Max, int Count)
    {
        public static Stats Of(List<double> values)
        {
            values.Sort();
            double At(double p) => values[Math.Min(values.Count - 1, (int)Math.Ceiling(p * values.Count) - 1)];
            return new Stats(At(0.50), At(0.99), values[^1], values.Count);
        }

        public Dictionary<string, object> ToJson() => new() { ["p50"] = Math.Round(P50, 3), ["p99"] = Math.Round(P99, 3), ["max"] = Math.Round(Max, 3), ["n"] = Count };
    }
}
