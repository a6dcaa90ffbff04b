using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Traces;

namespace CloudMemory.Benchmarks;

/// <summary>
/// <c>trace</c> over HTTP: the embedded host (with the trace app) on a loopback Kestrel port;
/// writers each POST batches of 100 steps of their own traces to <c>/v1/traces/steps</c> and wait for
/// the 202 (steps durable). Bodies are serialised before the clock starts, so the figure is the
/// service's (Kestrel, JSON binding, validation, audit, store) — but client and server share the cores.
/// </summary>
internal static class TraceHttpIngest
{
    private const int Batch = 100;

    public static async Task<Dictionary<string, double>> MeasureAsync(string? postgres, int[] writerCounts, int totalSteps, Func<string, int, TraceStepInput> input)
    {
        await using var host = await BenchHost.StartAsync(postgres, []);
        var result = new Dictionary<string, double>();
        foreach (var writers in writerCounts)
        {
            var tenant = "bench-http-" + Guid.NewGuid().ToString("N")[..6];
            var perWriter = Math.Max(1, totalSteps / writers / Batch);
            var bodies = Enumerable.Range(0, writers).Select(w => Enumerable.Range(0, perWriter).Select(b =>
                JsonSerializer.SerializeToUtf8Bytes(new IngestStepsRequest([.. Enumerable.Range(0, Batch).Select(i => input($"{tenant}-w{w}-t{b / 10}", (b % 10) * Batch + i))]),
                    ContractsJson.Options)).ToList()).ToList();
            using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = writers }) { BaseAddress = host.BaseAddress };
            http.DefaultRequestHeaders.Add("X-Tenant-Id", tenant);
            await PostAsync(http, JsonSerializer.SerializeToUtf8Bytes(new IngestStepsRequest([input($"{tenant}-warm", 0)]), ContractsJson.Options));
            var clock = Stopwatch.StartNew();
            await Task.WhenAll(bodies.Select(mine => Task.Run(async () =>
            {
                foreach (var body in mine)
                {
                    await PostAsync(http, body);
                }
            })));
            var rate = writers * perWriter * Batch / clock.Elapsed.TotalSeconds;
            Console.WriteLine($"  ingest over HTTP {(postgres is null ? "in memory " : "PostgreSQL")} {writers,2} writers: {rate,10:N0} steps/s");
            result[$"{writers} writers"] = Math.Round(rate);
        }
        return result;
    }

    /// <summary>
    /// Latency of <c>GET /v1/traces/{id}</c> of a 1,000-step trace (steps, tree, roll-up; the body read
    /// to the end) on the host over loopback HTTP, one request at a time.
    /// </summary>
    public static async Task<Dictionary<string, double>> MeasureTreeReadAsync(string? postgres, int iterations, Func<string, int, TraceStepInput> input)
    {
        await using var host = await BenchHost.StartAsync(postgres, []);
        var tenant = "bench-http-read-" + Guid.NewGuid().ToString("N")[..6];
        using var http = new HttpClient { BaseAddress = host.BaseAddress };
        http.DefaultRequestHeaders.Add("X-Tenant-Id", tenant);
        for (var b = 0; b < 10; b++)
        {
            await PostAsync(http, JsonSerializer.SerializeToUtf8Bytes(new IngestStepsRequest([.. Enumerable.Range(b * Batch, Batch).Select(i => input("tree", i))]), ContractsJson.Options));
        }
        async Task ReadAsync()
        {
            using var response = await http.GetAsync("/v1/traces/tree", HttpCompletionOption.ResponseHeadersRead);
            response.EnsureSuccessStatusCode();
            await using var body = await response.Content.ReadAsStreamAsync();
            await body.CopyToAsync(Stream.Null);
        }
        for (var i = 0; i < 5; i++)
        {
            await ReadAsync();
        }
        var samples = new double[iterations];
        for (var i = 0; i < iterations; i++)
        {
            var clock = Stopwatch.StartNew();
            await ReadAsync();
            samples[i] = clock.Elapsed.TotalMilliseconds;
        }
        Array.Sort(samples);
        return new Dictionary<string, double>
        {
            ["p50"] = Math.Round(samples[iterations / 2], 2),
            ["p95"] = Math.Round(samples[Math.Min(iterations - 1, (int)(iterations * 0.95))], 2),
        };
    }

    private static async Task PostAsync(HttpClient http, byte[] body)
    {
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var response = await http.PostAsync("/v1/traces/steps", content);
        if ((int)response.StatusCode != 202)
        {
            throw new InvalidOperationException($"ingest answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }
    }
}
