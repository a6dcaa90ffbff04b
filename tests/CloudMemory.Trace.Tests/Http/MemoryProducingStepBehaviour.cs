using CloudMemory.Testing;
using System.Net.Http.Json;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.BuildingBlocks.Invocation;
using CloudMemory.Context.Features.Memories;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Events;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Contracts.Traces;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.Trace.Features.Steps;
using CloudMemory.Trace.Features.Read;
using CloudMemory.Trace.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using static CloudMemory.Trace.Tests.Infrastructure.Steps;

namespace CloudMemory.Trace.Tests.Http;

/// <summary>
/// Trace-linked memory without explicit links: a memory written from a traced request records the
/// producing step (X-Trace-Id/X-Step-Id or W3C traceparent), and provenance follows it; both stores.
/// </summary>
public abstract class MemoryProducingStepBehaviour : IDisposable
{
    private readonly TraceHost _base;
    private readonly WebApplicationFactory<Host.Program> _host;
    private readonly string _tenant = NewTenant();

    protected MemoryProducingStepBehaviour(StoreKind kind)
    {
        _base = new TraceHost(kind);
        // The trace app reads the entry from the context app by service invocation: here through the test server.
        _host = _base.WithWebHostBuilder(b => b.ConfigureTestServices(s => s.AddTestServerInvoker()));
    }

    public void Dispose()
    {
        _host.Dispose();
        _base.Dispose();
        GC.SuppressFinalize(this);
    }

    private HttpClient Client(string tenant)
    {
        var client = _host.CreateClient();
        client.DefaultRequestHeaders.Add(Tenant.HeaderName, tenant);
        return client;
    }

    [Fact]
    public async Task Memory_WrittenWithStepHeaders_RecordsTheStep_AndProvenanceReturnsItWithItsAncestors()
    {
        using var http = Client(_tenant);
        var t = NewTrace();
        (await http.PostAsJsonAsync("/v1/traces/steps", Batch(
            Step(t, 0, StepTypes.Plan, "plan", startMs: 0, durationMs: 100),
            Step(t, 1, StepTypes.Memory, "remember", parent: "s0", startMs: 10, inputs: new { text = "likes green tea" })), ContractsJson.Options)).EnsureSuccessStatusCode();

        using var write = new HttpRequestMessage(HttpMethod.Post, "/v1/memories") { Content = JsonContent.Create(new CreateMemoryRequest("likes green tea", Id: "mem-tea"), options: ContractsJson.Options) };
        write.Headers.Add(TraceLink.TraceIdHeader, t);
        write.Headers.Add(TraceLink.StepIdHeader, "s1");
        var entry = await (await http.SendAsync(write)).ReadAsync<MemoryEntry>();
        entry.TraceId.Should().Be(t);
        entry.Metadata.Should().Contain(TraceLink.StepIdMetadataKey, "s1");

        var provenance = await (await http.GetAsync("/v1/memories/mem-tea/provenance")).ReadAsync<MemoryProvenance>();
        provenance.Steps.Should().ContainSingle().Which.StepId.Should().Be("s1");
        provenance.Steps[0].Inputs!.Value.GetProperty("text").GetString().Should().Be("likes green tea");
        provenance.Ancestors.Select(a => a.StepId).Should().Equal("s0");

        using var other = Client(NewTenant());
        (await (await other.GetAsync("/v1/memories/mem-tea/provenance")).ReadAsync<MemoryProvenance>()).Steps.Should().BeEmpty();
    }

    [Fact]
    public async Task Checkpoint_AskedForFromATracedStep_IsLinkedToIt_AndProvenanceReturnsTheStep_OnlyToItsTenant()
    {
        using var http = Client(_tenant);
        var t = NewTrace();
        var conversation = "conv-" + Guid.NewGuid().ToString("N")[..8];
        (await http.PostAsJsonAsync("/v1/sessions", new CreateSessionRequest(conversation, "u1"), ContractsJson.Options)).EnsureSuccessStatusCode();
        (await http.PostAsJsonAsync($"/v1/sessions/{conversation}/turns", new WriteTurnRequest("u1", "triage", "my head hurts", "rest and drink water"), ContractsJson.Options))
            .EnsureSuccessStatusCode();
        // The step may be ingested after the checkpoint (writers are asynchronous): the link resolves once it is there.
        using var checkpoint = new HttpRequestMessage(HttpMethod.Post, $"/v1/sessions/{conversation}/checkpoints")
        {
            Content = JsonContent.Create(new CheckpointRequest("The user has a headache; advised rest."), options: ContractsJson.Options),
        };
        checkpoint.Headers.Add(TraceLink.TraceIdHeader, t);
        checkpoint.Headers.Add(TraceLink.StepIdHeader, "s1");
        var result = await (await http.SendAsync(checkpoint)).ReadAsync<CheckpointResult>();
        (await http.PostAsJsonAsync("/v1/traces/steps", Batch(
            Step(t, 0, StepTypes.Plan, "plan", startMs: 0, durationMs: 100),
            Step(t, 1, StepTypes.Memory, "checkpoint", parent: "s0", startMs: 10, inputs: new { conversation })), ContractsJson.Options)).EnsureSuccessStatusCode();

        MemoryProvenance? provenance = null;
        for (var attempt = 0; attempt < 100 && provenance is not { Steps.Count: > 0 }; attempt++)
        {
            await Task.Delay(50); // checkpoint-created reaches the trace app asynchronously
            provenance = await (await http.GetAsync($"/v1/memories/{result.CheckpointMessageId}/provenance")).ReadAsync<MemoryProvenance>();
        }
        provenance!.Steps.Should().ContainSingle().Which.StepId.Should().Be("s1");
        provenance.Steps[0].Inputs!.Value.GetProperty("conversation").GetString().Should().Be(conversation);
        provenance.Ancestors.Select(a => a.StepId).Should().Equal("s0");

        using var other = Client(NewTenant());
        (await (await other.GetAsync($"/v1/memories/{result.CheckpointMessageId}/provenance")).ReadAsync<MemoryProvenance>()).Steps.Should().BeEmpty();
    }

    [Fact]
    public async Task Finalize_FromATracedStep_ConsolidatedMemoriesRecordTheStep_AndProvenanceFollowsIt()
    {
        using var http = Client(_tenant);
        var t = NewTrace();
        var conversation = "conv-" + Guid.NewGuid().ToString("N")[..8];
        (await http.PostAsJsonAsync("/v1/traces/steps", Batch(
            Step(t, 0, StepTypes.Plan, "wrap up", startMs: 0, durationMs: 100),
            Step(t, 1, StepTypes.Memory, "finalize", parent: "s0", startMs: 10)), ContractsJson.Options)).EnsureSuccessStatusCode();
        (await http.PostAsJsonAsync("/v1/sessions", new CreateSessionRequest(conversation, "u1"), ContractsJson.Options)).EnsureSuccessStatusCode();
        (await http.PostAsJsonAsync($"/v1/sessions/{conversation}/turns", new WriteTurnRequest("u1", "triage", "I prefer short answers.", "Noted."), ContractsJson.Options))
            .EnsureSuccessStatusCode();
        using var finalize = new HttpRequestMessage(HttpMethod.Post, $"/v1/sessions/{conversation}/finalize")
        {
            Content = JsonContent.Create(new CheckpointRequest("The user prefers short answers."), options: ContractsJson.Options),
        };
        finalize.Headers.Add(TraceLink.TraceIdHeader, t);
        finalize.Headers.Add(TraceLink.StepIdHeader, "s1");
        (await http.SendAsync(finalize)).EnsureSuccessStatusCode();

        var episode = LongTermMemoryService.DeterministicId("episode", conversation);
        MemoryEntry? entry = null;
        for (var attempt = 0; attempt < 200 && entry is null; attempt++)
        {
            await Task.Delay(50); // consolidation runs in the background after finalize
            using var response = await http.GetAsync($"/v1/memories/{episode}");
            entry = response.IsSuccessStatusCode ? await response.ReadAsync<MemoryEntry>() : null;
        }
        entry.Should().NotBeNull("finalize consolidates the conversation into an episodic memory");
        entry!.TraceId.Should().Be(t);
        entry.Metadata.Should().Contain(TraceLink.StepIdMetadataKey, "s1");

        var provenance = await (await http.GetAsync($"/v1/memories/{episode}/provenance")).ReadAsync<MemoryProvenance>();
        provenance.Steps.Select(s => s.StepId).Should().Equal("s1");
        provenance.Ancestors.Select(a => a.StepId).Should().Equal("s0");
    }

    [Fact]
    public async Task Checkpoint_LinkEvent_WithoutATracedStep_LinksNothing_AndAMalformedOneIsDropped()
    {
        var store = _host.Services.GetRequiredService<ITraceStore>();
        var untraced = new CheckpointCreated(_tenant, "conv-x", "cp-untraced", 1, "summary", Automatic: true, OccurredAt: 0);
        (await ProducedMemoryLinks.LinkCheckpointAsync(store, Event(untraced), CancellationToken.None)).Should().Be(DeliveryStatus.Success);
        (await store.GetMemoryProvenanceAsync(_tenant, "cp-untraced")).Should().BeEmpty();

        var malformed = Event(new { tenantId = 42 });
        (await ProducedMemoryLinks.LinkCheckpointAsync(store, malformed, CancellationToken.None)).Should().Be(DeliveryStatus.Drop);
    }

    private static CloudEvent Event<T>(T data) => new()
    {
        Id = Guid.NewGuid().ToString("N"),
        Source = "session",
        Type = EventTypes.CheckpointCreated,
        Topic = Topics.CheckpointCreated,
        Data = System.Text.Json.JsonSerializer.SerializeToElement(data, ContractsJson.Options),
    };

    [Fact]
    public async Task Memory_WrittenUnderW3CTraceParent_RecordsTraceAndParentSpan_ButNotABodyThatNamesAnotherTrace()
    {
        using var http = Client(_tenant);
        const string traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
        const string spanId = "00f067aa0ba902b7";
        using var write = new HttpRequestMessage(HttpMethod.Post, "/v1/memories") { Content = JsonContent.Create(new CreateMemoryRequest("prefers window seats"), options: ContractsJson.Options) };
        write.Headers.Add("traceparent", $"00-{traceId}-{spanId}-01");
        var entry = await (await http.SendAsync(write)).ReadAsync<MemoryEntry>();
        entry.TraceId.Should().Be(traceId);
        entry.Metadata.Should().Contain(TraceLink.StepIdMetadataKey, spanId);

        using var explicitTrace = new HttpRequestMessage(HttpMethod.Post, "/v1/memories") { Content = JsonContent.Create(new CreateMemoryRequest("prefers aisle seats", TraceId: "tr-own"), options: ContractsJson.Options) };
        explicitTrace.Headers.Add("traceparent", $"00-{traceId}-{spanId}-01");
        var own = await (await http.SendAsync(explicitTrace)).ReadAsync<MemoryEntry>();
        own.TraceId.Should().Be("tr-own");
        own.Metadata.Should().NotContainKey(TraceLink.StepIdMetadataKey);

        TraceLink.FromTraceParent($"00-{new string('0', 32)}-{spanId}-01").Should().BeNull();
        TraceLink.FromTraceParent("garbage").Should().BeNull();
    }
}

public sealed class InMemoryMemoryProducingStepTests() : MemoryProducingStepBehaviour(StoreKind.InMemory);

public sealed class PostgresMemoryProducingStepTests() : MemoryProducingStepBehaviour(StoreKind.Postgres);
