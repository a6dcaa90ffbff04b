using System.Diagnostics;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Session.Tests.Infrastructure;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Trace;

namespace CloudMemory.Session.Tests.Telemetry;

/// <summary>The hosting defaults' instrumentation: one trace from the caller's traceparent down to PostgreSQL.</summary>
public sealed class TracePropagationTests : IDisposable
{
    private readonly SynchronizedSpans _exported = new();
    private readonly CloudMemoryFactory _factory = new(LogKind.Postgres);

    public TracePropagationTests()
    {
        _factory.Configure = builder => builder.ConfigureTestServices(services =>
            services.AddOpenTelemetry().WithTracing(tracing => tracing.AddInMemoryExporter(_exported)));
    }

    [Fact]
    public async Task CreateSession_WithTraceparent_ServerSpanAndItsNpgsqlCommandsShareTheCallersTrace()
    {
        var client = _factory.CreateClient();
        var traceId = ActivityTraceId.CreateRandom();
        var callerSpan = ActivitySpanId.CreateRandom();
        var id = "otel-" + Guid.NewGuid().ToString("N");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/sessions")
        {
            Content = System.Net.Http.Json.JsonContent.Create(new CreateSessionRequest(id, "user-1")),
        };
        request.Headers.Add("traceparent", $"00-{traceId}-{callerSpan}-01");

        var response = await client.SendAsync(request);

        response.IsSuccessStatusCode.Should().BeTrue(await response.Content.ReadAsStringAsync());
        var spans = await SpansOfTraceAsync(traceId, s => s.Source.Name == "Npgsql");
        var server = spans.Should().ContainSingle(s => s.Kind == ActivityKind.Server && s.Source.Name == "Microsoft.AspNetCore").Subject;
        server.ParentSpanId.Should().Be(callerSpan, "the incoming traceparent is the server span's parent");
        var commands = spans.Where(s => s.Source.Name == "Npgsql").ToList();
        commands.Should().NotBeEmpty("the session is written to PostgreSQL inside the request");
        commands.Should().OnlyContain(s => s.Kind == ActivityKind.Client);
        foreach (var command in commands)
        {
            IsDescendantOf(command, server, spans).Should().BeTrue($"{command.DisplayName} runs under the request's span");
        }
    }

    [Fact]
    public async Task Request_WithoutTraceparent_StartsItsOwnTrace_AndProbesAreNotTraced()
    {
        var client = _factory.CreateClient();

        var path = "/v1/sessions/otel-missing-" + Guid.NewGuid().ToString("N");
        (await client.GetAsync("/healthz")).EnsureSuccessStatusCode();
        (await client.GetAsync(path)).StatusCode.Should().Be(System.Net.HttpStatusCode.NotFound);

        // The listener sees every host in this test process, so only this request's span is looked at.
        var spans = await WaitForAsync(
            () => Snapshot().Where(s => s.Kind == ActivityKind.Server && s.GetTagItem("url.path") as string == path).ToList(),
            found => found.Count > 0);
        spans.Should().ContainSingle().Which.ParentSpanId.Should().Be(default(ActivitySpanId));
        Snapshot().Should().NotContain(s => s.Kind == ActivityKind.Server && s.DisplayName.Contains("healthz", StringComparison.Ordinal));
    }

    private static bool IsDescendantOf(Activity span, Activity ancestor, IReadOnlyList<Activity> spans)
    {
        var parent = span.ParentSpanId;
        for (var depth = 0; depth < 32 && parent != default; depth++)
        {
            if (parent == ancestor.SpanId)
            {
                return true;
            }
            parent = spans.FirstOrDefault(s => s.SpanId == parent)?.ParentSpanId ?? default;
        }
        return false;
    }

    // Spans export when they stop; the server span stops after the response is written.
    private Task<List<Activity>> SpansOfTraceAsync(ActivityTraceId traceId, Func<Activity, bool> alsoNeeded) =>
        WaitForAsync(
            () => Snapshot().Where(s => s.TraceId == traceId).ToList(),
            found => found.Any(s => s.Kind == ActivityKind.Server) && found.Any(alsoNeeded));

    private static async Task<List<Activity>> WaitForAsync(Func<List<Activity>> read, Func<List<Activity>, bool> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        var found = read();
        while (!done(found) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
            found = read();
        }
        return found;
    }

    private List<Activity> Snapshot() => _exported.Snapshot();

    public void Dispose() => _factory.Dispose();

    // The exporter adds from the threads that stop spans while the test reads.
    private sealed class SynchronizedSpans : System.Collections.ObjectModel.Collection<Activity>
    {
        private readonly Lock _gate = new();

        public List<Activity> Snapshot()
        {
            lock (_gate)
            {
                return [.. Items];
            }
        }

        protected override void InsertItem(int index, Activity item)
        {
            lock (_gate)
            {
                base.InsertItem(index, item);
            }
        }
    }
}
