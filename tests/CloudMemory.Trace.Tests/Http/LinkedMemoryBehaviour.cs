using System.Net.Http.Json;
using System.Text.Json;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Contracts.Traces;
using CloudMemory.Testing;
using CloudMemory.Trace.Features.Read;
using CloudMemory.Trace.Tests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using static CloudMemory.Trace.Tests.Infrastructure.Steps;

namespace CloudMemory.Trace.Tests.Http;

/// <summary>
/// Trace-linked memory made by the session app on behalf of a traced request, over HTTP only, so it
/// runs on both runtimes: an explicit checkpoint, the automatic checkpoint a traced turn write starts
/// (the step travels through the checkpoint workflow's input), and shared-context field changes
/// (headers or body <c>stepId</c>; the context's trace when the request names none).
/// </summary>
public abstract class LinkedMemoryBehaviour
{
    /// <summary>Settings of every host: a 60-token window (threshold 45), so one long turn crosses it.</summary>
    public static readonly IReadOnlyDictionary<string, string?> Settings = new Dictionary<string, string?>
    {
        ["CloudMemory:Llm:Endpoint"] = "",
        ["CloudMemory:Memory:ModelContextWindow"] = "60",
        ["CloudMemory:Memory:RecentTurns"] = "2",
    };

    private readonly string _tenant = NewTenant();

    /// <summary>A client of the apps sending <paramref name="tenant"/>.</summary>
    protected abstract HttpClient Client(string tenant);

    [Fact]
    public async Task AutomaticCheckpoint_StartedByATracedTurnWrite_IsLinkedToThatTurnsStep()
    {
        using var http = Client(_tenant);
        var t = NewTrace();
        var conversation = "conv-" + Guid.NewGuid().ToString("N")[..8];
        (await http.PostAsJsonAsync("/v1/sessions", new CreateSessionRequest(conversation, "u1"), ContractsJson.Options)).EnsureSuccessStatusCode();
        // A short untraced turn stays under the threshold; the traced long one crosses it.
        (await Turn(http, conversation, "hello", "hi", trace: null)).EnsureSuccessStatusCode();
        (await Ingest(http, t)).EnsureSuccessStatusCode();
        (await Turn(http, conversation, string.Join(' ', Enumerable.Repeat("My knee has been swollen and painful since the fall last week.", 6)),
            "Please rest it, keep it raised, and see a doctor if it does not improve.", trace: (t, "s1"))).EnsureSuccessStatusCode();

        var checkpointId = await Eventually(async () =>
        {
            var session = await (await http.GetAsync($"/v1/sessions/{conversation}")).JsonAsync();
            var id = session.GetProperty("messageContext").GetProperty("checkpointMessageId").GetString();
            return string.IsNullOrEmpty(id) ? null : id;
        }, "the automatic checkpoint is written in the background");
        var provenance = await Eventually(async () =>
        {
            var p = await (await http.GetAsync($"/v1/memories/{checkpointId}/provenance")).ReadAsync<MemoryProvenance>();
            return p.Steps.Count > 0 ? p : null;
        }, "checkpoint-created reaches the trace app");
        provenance.Steps.Should().ContainSingle().Which.StepId.Should().Be("s1");
        provenance.Steps[0].TraceId.Should().Be(t);
        provenance.Ancestors.Select(a => a.StepId).Should().Equal("s0");

        using var other = Client(NewTenant());
        (await (await other.GetAsync($"/v1/memories/{checkpointId}/provenance")).ReadAsync<MemoryProvenance>()).Steps.Should().BeEmpty();
    }

    [Fact]
    public async Task AutomaticCheckpoint_StartedByAnUntracedTurnWrite_IsLinkedToNothing()
    {
        using var http = Client(_tenant);
        var conversation = "conv-" + Guid.NewGuid().ToString("N")[..8];
        (await http.PostAsJsonAsync("/v1/sessions", new CreateSessionRequest(conversation, "u1"), ContractsJson.Options)).EnsureSuccessStatusCode();
        (await Turn(http, conversation, string.Join(' ', Enumerable.Repeat("The printer on the third floor jams on every second page.", 6)),
            "Try the tray on the left.", trace: null)).EnsureSuccessStatusCode();
        var checkpointId = await Eventually(async () =>
        {
            var session = await (await http.GetAsync($"/v1/sessions/{conversation}")).JsonAsync();
            var id = session.GetProperty("messageContext").GetProperty("checkpointMessageId").GetString();
            return string.IsNullOrEmpty(id) ? null : id;
        }, "the automatic checkpoint is written in the background");
        (await (await http.GetAsync($"/v1/memories/{checkpointId}/provenance")).ReadAsync<MemoryProvenance>()).Steps.Should().BeEmpty();
    }

    [Fact]
    public async Task ManualCheckpoint_FromATracedRequest_IsLinkedToItsStep()
    {
        using var http = Client(_tenant);
        var t = NewTrace();
        var conversation = "conv-" + Guid.NewGuid().ToString("N")[..8];
        (await http.PostAsJsonAsync("/v1/sessions", new CreateSessionRequest(conversation, "u1"), ContractsJson.Options)).EnsureSuccessStatusCode();
        (await Turn(http, conversation, "my head hurts", "rest and drink water", trace: null)).EnsureSuccessStatusCode();
        using var checkpoint = new HttpRequestMessage(HttpMethod.Post, $"/v1/sessions/{conversation}/checkpoints")
        {
            Content = JsonContent.Create(new CheckpointRequest("The user has a headache; advised rest."), options: ContractsJson.Options),
        };
        // W3C traceparent this time: the trace and the caller's span (the step OTLP ingest would store).
        var w3cTrace = t[3..].PadRight(32, 'a');
        checkpoint.Headers.Add("traceparent", $"00-{w3cTrace}-00f067aa0ba902b7-01");
        var result = await (await http.SendAsync(checkpoint)).ReadAsync<CheckpointResult>();
        (await http.PostAsJsonAsync("/v1/traces/steps", Batch(
            Step(w3cTrace, 0, StepTypes.Plan, "plan") with { StepId = "aaaaaaaaaaaaaaaa" },
            Step(w3cTrace, 1, StepTypes.Memory, "checkpoint") with { StepId = "00f067aa0ba902b7", ParentStepId = "aaaaaaaaaaaaaaaa" }), ContractsJson.Options)).EnsureSuccessStatusCode();

        var provenance = await Eventually(async () =>
        {
            var p = await (await http.GetAsync($"/v1/memories/{result.CheckpointMessageId}/provenance")).ReadAsync<MemoryProvenance>();
            return p.Steps.Count > 0 ? p : null;
        }, "checkpoint-created reaches the trace app");
        provenance.Steps.Should().ContainSingle().Which.StepId.Should().Be("00f067aa0ba902b7");
        provenance.Ancestors.Select(a => a.StepId).Should().Equal("aaaaaaaaaaaaaaaa");
    }

    [Fact]
    public async Task SharedContextFieldChanges_CarryTheRequestsStep_AndProvenanceAnswersForTheContextAndEachField()
    {
        using var http = Client(_tenant);
        var t = NewTrace();
        var collaboration = NewTrace();
        var id = "case-" + Guid.NewGuid().ToString("N")[..8];
        (await Ingest(http, t)).EnsureSuccessStatusCode();
        (await Ingest(http, collaboration)).EnsureSuccessStatusCode();
        (await Send(http, HttpMethod.Post, "/v1/shared-contexts", new
        {
            id,
            traceId = collaboration,
            policy = new { join = "tenant" },
            fields = new { diagnosis = new { value = "", conflict = "last-writer-wins" }, severity = new { value = 1, conflict = "last-writer-wins" } },
        }, trace: null)).EnsureSuccessStatusCode();

        // Headers name the step (no body stepId): the change records the request's trace and step.
        (await Send(http, HttpMethod.Patch, $"/v1/shared-contexts/{id}", new { baseVersion = 1, changes = new { diagnosis = new { set = "influenza A" } } },
            trace: (t, "s1"))).EnsureSuccessStatusCode();
        // A body stepId without a trace: the context's own trace.
        (await Send(http, HttpMethod.Patch, $"/v1/shared-contexts/{id}", new { baseVersion = 2, stepId = "s1", changes = new { severity = new { set = 2 } } },
            trace: null)).EnsureSuccessStatusCode();
        // Untraced: linked to nothing.
        (await Send(http, HttpMethod.Patch, $"/v1/shared-contexts/{id}", new { baseVersion = 3, changes = new { severity = new { set = 3 } } },
            trace: null)).EnsureSuccessStatusCode();

        var changes = (await (await Send(http, HttpMethod.Get, $"/v1/shared-contexts/{id}/changes", null, trace: null)).JsonAsync()).GetProperty("changes");
        var updates = changes.EnumerateArray().Where(c => c.GetProperty("kind").GetString() == "updated").ToList();
        updates.Select(c => Text(c, "stepId")).Should().Equal("s1", "s1", null);
        updates.Select(c => Text(c, "traceId")).Should().Equal(t, collaboration, null);

        var diagnosis = await Provenance(http, $"{id}:diagnosis", count: 1);
        diagnosis.Steps.Select(s => (s.TraceId, s.StepId)).Should().Equal((t, "s1"));
        diagnosis.Ancestors.Select(a => a.StepId).Should().Equal("s0");
        var severity = await Provenance(http, $"{id}:severity", count: 1);
        severity.Steps.Select(s => (s.TraceId, s.StepId)).Should().Equal((collaboration, "s1"));
        var context = await Provenance(http, id, count: 2);
        context.Steps.Select(s => s.TraceId).Should().BeEquivalentTo([t, collaboration]);

        using var other = Client(NewTenant());
        (await (await other.GetAsync($"/v1/memories/{id}:diagnosis/provenance")).ReadAsync<MemoryProvenance>()).Steps.Should().BeEmpty();
    }

    [Fact]
    public async Task SharedContextUpdate_WithAnInvalidTraceId_IsRefusedAndChangesNothing()
    {
        using var http = Client(_tenant);
        var id = "case-" + Guid.NewGuid().ToString("N")[..8];
        (await Send(http, HttpMethod.Post, "/v1/shared-contexts", new { id, fields = new { diagnosis = new { value = "", conflict = "last-writer-wins" } } }, trace: null))
            .EnsureSuccessStatusCode();
        var problem = await (await Send(http, HttpMethod.Patch, $"/v1/shared-contexts/{id}",
            new { baseVersion = 1, traceId = "bad trace", changes = new { diagnosis = new { set = "x" } } }, trace: null)).ProblemAsync(400);
        problem.GetProperty("code").GetString().Should().Be("invalid-traceId");
        var view = await (await Send(http, HttpMethod.Get, $"/v1/shared-contexts/{id}", null, trace: null)).JsonAsync();
        view.GetProperty("version").GetInt64().Should().Be(1);
    }

    private static string? Text(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static async Task<MemoryProvenance> Provenance(HttpClient http, string memoryId, int count) =>
        await Eventually(async () =>
        {
            var p = await (await http.GetAsync($"/v1/memories/{memoryId}/provenance")).ReadAsync<MemoryProvenance>();
            return p.Steps.Count >= count ? p : null;
        }, $"shared-context-changed reaches the trace app ({memoryId})");

    // A plan step s0 and a memory step s1 under it.
    private static Task<HttpResponseMessage> Ingest(HttpClient http, string trace) =>
        http.PostAsJsonAsync("/v1/traces/steps", Batch(
            Step(trace, 0, StepTypes.Plan, "plan", startMs: 0, durationMs: 100),
            Step(trace, 1, StepTypes.Memory, "write memory", parent: "s0", startMs: 10)), ContractsJson.Options);

    private static Task<HttpResponseMessage> Turn(HttpClient http, string conversation, string query, string answer, (string Trace, string Step)? trace) =>
        Send(http, HttpMethod.Post, $"/v1/sessions/{conversation}/turns", new WriteTurnRequest("u1", "triage", query, answer), trace);

    private static async Task<HttpResponseMessage> Send(HttpClient http, HttpMethod method, string url, object? body, (string Trace, string Step)? trace)
    {
        using var request = new HttpRequestMessage(method, url);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body, body.GetType(), options: ContractsJson.Options);
        }
        request.Headers.Add(Tenant.AgentHeaderName, "triage_agent");
        if (trace is { } link)
        {
            request.Headers.Add(TraceLink.TraceIdHeader, link.Trace);
            request.Headers.Add(TraceLink.StepIdHeader, link.Step);
        }
        return await http.SendAsync(request);
    }

    private static async Task<T> Eventually<T>(Func<Task<T?>> probe, string what) where T : class
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            if (await probe() is { } value)
            {
                return value;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"waited 30 s: {what}");
            }
            await Task.Delay(50);
        }
    }
}

/// <summary>The embedded host (all four services in one process) on one store.</summary>
public abstract class EmbeddedLinkedMemoryBehaviour : LinkedMemoryBehaviour, IDisposable
{
    private readonly TraceHost _base;
    private readonly WebApplicationFactory<Host.Program> _host;

    protected EmbeddedLinkedMemoryBehaviour(StoreKind kind)
    {
        _base = new TraceHost(kind, settings: new Dictionary<string, string?>(Settings));
        _host = _base.WithWebHostBuilder(b => b.ConfigureTestServices(s => s.AddTestServerInvoker()));
    }

    protected override HttpClient Client(string tenant)
    {
        var client = _host.CreateClient();
        client.DefaultRequestHeaders.Add(Tenant.HeaderName, tenant);
        return client;
    }

    public void Dispose()
    {
        _host.Dispose();
        _base.Dispose();
        GC.SuppressFinalize(this);
    }
}

public sealed class InMemoryLinkedMemoryTests() : EmbeddedLinkedMemoryBehaviour(StoreKind.InMemory);

public sealed class PostgresLinkedMemoryTests() : EmbeddedLinkedMemoryBehaviour(StoreKind.Postgres);
