using System.Net;
using System.Text.Json.Nodes;
using Dapr.Client.Autogen.Grpc.v1;
using System.Net.Http.Json;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Traces;
using CloudMemory.Dapr;
using CloudMemory.Dapr.Tests;
using CloudMemory.Dapr.Tests.FakeSidecar;
using CloudMemory.Trace.Features.Read;
using CloudMemory.Trace.Tests.Infrastructure;
using static CloudMemory.Trace.Tests.Infrastructure.Steps;

namespace CloudMemory.Trace.Tests.Dapr;

/// <summary>
/// The trace app alone on the Dapr runtime, composed as services/CloudMemory.Trace/Program.cs
/// composes it, against the fake sidecar (tokens on): ingest, read and the compliance alert going
/// out through the sidecar's publish API, on both stores.
/// </summary>
public abstract class TraceServiceOnDaprBehaviour(StoreKind kind) : IAsyncLifetime
{
    private DaprTestApp _app = null!;
    private HttpClient _client = null!;

    public async Task InitializeAsync()
    {
        var settings = new Dictionary<string, string?>();
        if (kind == StoreKind.Postgres)
        {
            settings["ConnectionStrings:CloudMemory"] = CloudMemory.Testing.PostgresTestServer.ConnectionString;
        }
        _app = await DaprTestApp.StartServiceAsync(new ManualTimeProvider(), TraceServiceCollectionExtensions.AppId,
            builder => builder.AddTraceServices(), app => app.MapTraceEndpoints(), settings);
        _client = new HttpClient { BaseAddress = _app.AppBase, Timeout = Wait.Timeout };
        _client.DefaultRequestHeaders.Add(Tenant.HeaderName, NewTenant());
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _app.DisposeAsync();
    }

    [Fact]
    public async Task Ingest_SensitiveStepOnDapr_StoredAndAlertPublishedThroughTheSidecar()
    {
        var trace = NewTrace();
        var response = await _client.PostAsJsonAsync("/v1/traces/steps", Batch(
            Step(trace, 0, StepTypes.Plan), Step(trace, 1, inputs: new { note = "patient with epilepsy takes gabapentin" }, parent: "s0")), ContractsJson.Options);

        response.StatusCode.Should().Be(HttpStatusCode.Accepted);
        var view = await (await _client.GetAsync($"/v1/traces/{trace}")).ReadAsync<TraceView>();
        view.Tree.Nodes.Single(n => n.StepId == "s0").Children.Should().Equal("s1");
        var step = await (await _client.GetAsync($"/v1/traces/{trace}/steps/s1")).ReadAsync<TraceStep>();
        step.Audit.Kinds.Should().Equal("condition", "drug");
        (await _client.GetAsync($"/v1/traces/{trace}/steps/s2")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        var publish = _app.Sidecar.GrpcRequests<PublishEventRequest>("PublishEvent").Should()
            .ContainSingle(r => r.PubsubName == FakeDaprSidecar.PubSubName && r.Topic == TraceEvents.ComplianceAlertTopic).Subject;
        var envelope = JsonNode.Parse(publish.Data.ToStringUtf8())!;
        envelope["type"]!.GetValue<string>().Should().Be(TraceEvents.ComplianceAlertType);
        envelope["data"]!["traceId"]!.GetValue<string>().Should().Be(trace);
        envelope["data"]!["kinds"]!.AsArray().Select(k => k!.GetValue<string>()).Should().Equal("condition", "drug");
        _app.Sidecar.AssertNoViolations();
    }
}

public sealed class TraceServiceOnDaprInMemory() : TraceServiceOnDaprBehaviour(StoreKind.InMemory);

public sealed class TraceServiceOnDaprPostgres() : TraceServiceOnDaprBehaviour(StoreKind.Postgres);
