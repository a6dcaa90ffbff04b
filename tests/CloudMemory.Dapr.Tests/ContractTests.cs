using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using CloudMemory.BuildingBlocks.Actors;
using CloudMemory.BuildingBlocks.Invocation;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.BuildingBlocks.State;
using CloudMemory.Dapr.Tests.FakeSidecar;
using CloudMemory.Dapr.Tests.Suites;
using Dapr.Actors;
using Dapr.Actors.Client;
using Dapr.Client.Autogen.Grpc.v1;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudMemory.Dapr.Tests;

/// <summary>Every wire shape CloudMemory sends to or serves for daprd, checked against the contract document.</summary>
public sealed class ContractTests : IAsyncLifetime
{
    private readonly ActorProbe _probe = new();
    private int _handlerCalls;
    private DaprTestApp _app = null!;

    private FakeDaprSidecar Sidecar => _app.Sidecar;

    public async Task InitializeAsync() => _app = await DaprTestApp.StartAsync(new ManualTimeProvider(), services =>
    {
        services.AddSingleton(_probe);
        services.AddActor<ProbeActor>(o => o.ActorIdleTimeout = TimeSpan.FromMinutes(10));
        services.AddSingleton(new Subscription("orders", "events/orders", (_, _) =>
        {
            Interlocked.Increment(ref _handlerCalls);
            return Task.FromResult(DeliveryStatus.Success);
        }, "orders-dead"));
        services.AddSingleton(new Subscription("boom", "/events/boom", (_, _) => throw new InvalidOperationException("handler failed")));
    }, app => app.MapGet("/v1/echo", (HttpRequest r) => Results.Text($"echo {r.Query["x"]}")));

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        Sidecar.AssertNoViolations();
    }

    private RecordedRequest Last(string method, string pathPrefix) =>
        Sidecar.Requests.Last(r => r.Method == method && r.Path.StartsWith(pathPrefix, StringComparison.Ordinal));

    private HttpClient AppClient(string? token = DaprTestApp.AppToken)
    {
        var http = new HttpClient { BaseAddress = _app.AppBase };
        if (token is not null)
        {
            http.DefaultRequestHeaders.Add("dapr-api-token", token);
        }
        return http;
    }

    [Fact]
    public async Task StateSave_SendsStateItem_WithEtagOptionsAndTtlAsString()
    {
        var store = _app.Services.GetRequiredService<IStateStore>();
        await store.SaveAsync("s1", Encoding.UTF8.GetBytes("""{"v":1}"""));
        var etag = (await store.GetAsync("s1"))!.ETag;
        await store.SaveAsync("s1", Encoding.UTF8.GetBytes("""{"v":2}"""), etag,
            new StateWriteOptions(StateConcurrency.FirstWrite, StateConsistency.Eventual, TimeSpan.FromSeconds(120)));

        var save = Sidecar.LastGrpc<SaveStateRequest>("SaveState");
        save.StoreName.Should().Be("statestore");
        Sidecar.GrpcCalls.Last().ApiToken.Should().Be(DaprTestApp.SidecarToken);
        var item = save.States.Single();
        item.Key.Should().Be("s1");
        JsonNode.Parse(item.Value.ToStringUtf8())!["v"]!.GetValue<int>().Should().Be(2, "the value is the caller's JSON, unchanged");
        item.Etag.Value.Should().Be(etag);
        item.Metadata["ttlInSeconds"].Should().Be("120", "daprd reads metadata as strings");
        item.Options.Concurrency.Should().Be(StateOptions.Types.StateConcurrency.ConcurrencyFirstWrite);
        item.Options.Consistency.Should().Be(StateOptions.Types.StateConsistency.ConsistencyEventual);
    }

    [Fact]
    public async Task StateGetAndDelete_SendConsistencyAndEtag()
    {
        var store = _app.Services.GetRequiredService<IStateStore>();
        await store.SaveAsync("g1", Encoding.UTF8.GetBytes("1"));
        var entry = await store.GetAsync("g1", StateConsistency.Eventual);
        Sidecar.LastGrpc<GetStateRequest>("GetState").Consistency.Should().Be(StateOptions.Types.StateConsistency.ConsistencyEventual);
        await store.DeleteAsync("g1", entry!.ETag);
        var delete = Sidecar.LastGrpc<DeleteStateRequest>("DeleteState");
        delete.Key.Should().Be("g1");
        delete.Etag.Value.Should().Be(entry.ETag);
        delete.Options.Concurrency.Should().Be(StateOptions.Types.StateConcurrency.ConcurrencyLastWrite);
        (await store.GetAsync("g1")).Should().BeNull();
    }

    [Fact]
    public async Task BulkGetAndTransaction_SendContractMessages()
    {
        var store = _app.Services.GetRequiredService<IStateStore>();
        await store.GetBulkAsync(["a", "b"]);
        var bulk = Sidecar.LastGrpc<GetBulkStateRequest>("GetBulkState");
        bulk.Keys.Should().Equal("a", "b");
        bulk.Parallelism.Should().BePositive();

        await store.ExecuteTransactionAsync([StateOperation.Upsert("a", Encoding.UTF8.GetBytes("1")), StateOperation.Delete("b")]);
        var ops = Sidecar.LastGrpc<ExecuteStateTransactionRequest>("ExecuteStateTransaction").Operations;
        ops[0].OperationType.Should().Be("upsert");
        ops[0].Request.Value.ToStringUtf8().Should().Be("1");
        ops[1].OperationType.Should().Be("delete");
        ops[1].Request.Value.IsEmpty.Should().BeTrue();
    }

    [Theory]
    [InlineData(StatusCode.Internal, "error while executing state transaction: possible etag mismatch", true)]
    [InlineData(StatusCode.Internal, "error while executing state transaction: ERR Error running script: conflict", true)]
    [InlineData(StatusCode.Internal, "failed saving state in state store statestore: no item was updated", true)]
    [InlineData(StatusCode.Aborted, "anything", true)]
    [InlineData(StatusCode.Internal, "error while executing state transaction: connection refused", false)]
    [InlineData(StatusCode.InvalidArgument, "etag", false)]
    public void TransactionErrors_AreConcurrencyFailuresOnlyWhenTheyNameAConflict(StatusCode status, string message, bool conflict) =>
        DaprStateStore.IsTransactionConflict(new RpcException(new Status(status, message))).Should().Be(conflict);

    [Fact]
    public async Task Publish_SendsOurEnvelopeAsCloudEventsJson_WithTraceContext()
    {
        using var source = new ActivitySource("CloudMemory.Tests");
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == "CloudMemory.Tests",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
        };
        ActivitySource.AddActivityListener(listener);
        using var activity = source.StartActivity("publish-test")!;

        var id = await _app.Services.GetRequiredService<IEventPublisher>().PublishAsync("orders", "test.v1", new { n = 1 });
        var publish = Sidecar.LastGrpc<PublishEventRequest>("PublishEvent");
        publish.PubsubName.Should().Be("pubsub");
        publish.Topic.Should().Be("orders");
        publish.DataContentType.Should().Be("application/cloudevents+json");
        Sidecar.GrpcCalls.Last(c => c.Method == "PublishEvent").TraceParent.Should().Contain(activity.TraceId.ToHexString(), "the caller's trace continues through the sidecar");
        var envelope = JsonNode.Parse(publish.Data.ToStringUtf8())!;
        envelope["id"]!.GetValue<string>().Should().Be(id);
        envelope["source"]!.GetValue<string>().Should().Be("session");
        envelope["specversion"]!.GetValue<string>().Should().Be("1.0");
        envelope["type"]!.GetValue<string>().Should().Be("test.v1");
        envelope["data"]!["n"]!.GetValue<int>().Should().Be(1);
        await Sidecar.WhenDeliveriesSettledAsync();
        Sidecar.Deliveries.Should().ContainSingle(d => d.EventId == id && d.Outcome == "SUCCESS");
    }

    [Fact]
    public async Task DaprSubscribe_ListsSubscriptionsInDaprShape()
    {
        // Served by the SDK's MapSubscribeHandler; daprd reads it with Go's case-insensitive JSON decoding.
        using var http = AppClient();
        var text = await http.GetStringAsync("dapr/subscribe");
        var body = JsonNode.Parse(text, new JsonNodeOptions { PropertyNameCaseInsensitive = true })!.AsArray();
        var orders = body.Single(s => s!["topic"]!.GetValue<string>() == "orders")!.AsObject();
        orders["pubsubname"]!.GetValue<string>().Should().Be("pubsub", text);
        orders["route"]!.GetValue<string>().TrimStart('/').Should().Be("events/orders", text);
        orders["deadLetterTopic"]!.GetValue<string>().Should().Be("orders-dead", text);
        body.Single(s => s!["topic"]!.GetValue<string>() == "boom")!["deadLetterTopic"].Should().BeNull(text);
    }

    [Fact]
    public async Task DaprConfig_ListsActorTypesAndDurations()
    {
        using var http = AppClient();
        var config = JsonNode.Parse(await http.GetStringAsync("dapr/config"))!;
        config["entities"]!.AsArray().Select(e => e!.GetValue<string>()).Should().Equal(nameof(ProbeActor));
        var typeConfig = config["entitiesConfig"]!.AsArray().Single()!;
        typeConfig["entities"]!.AsArray().Select(e => e!.GetValue<string>()).Should().Equal(nameof(ProbeActor));
        FakeDaprSidecar.TryParseDuration(typeConfig["actorIdleTimeout"]!.GetValue<string>(), out var idle).Should().BeTrue();
        idle.Should().Be(TimeSpan.FromMinutes(10), "the type's own idle timeout given to AddActor");
    }

    [Theory]
    [InlineData("GET", "dapr/subscribe")]
    [InlineData("GET", "dapr/config")]
    [InlineData("POST", "events/orders")]
    [InlineData("PUT", "actors/ProbeActor/t/method/Get")]
    [InlineData("PUT", "actors/ProbeActor/t/method/remind/r")]
    [InlineData("PUT", "actors/ProbeActor/t/method/timer/t")]
    [InlineData("DELETE", "actors/ProbeActor/t")]
    public async Task AppCallbacks_WithoutOrWithWrongToken_Are401(string method, string path)
    {
        foreach (var token in new[] { null, "wrong" })
        {
            using var http = AppClient(token);
            using var response = await http.SendAsync(new HttpRequestMessage(new HttpMethod(method), path) { Content = new StringContent("{}") });
            response.StatusCode.Should().Be(HttpStatusCode.Unauthorized, $"{method} {path} with token '{token}'");
        }
        Interlocked.CompareExchange(ref _handlerCalls, 0, 0).Should().Be(0);
    }

    [Fact]
    public async Task Delivery_AnswersStatusWith200_RetriesFailures_AcksDuplicates_RefusesUnparsable()
    {
        using var http = AppClient();
        using (var unparsable = await http.PostAsync("events/orders", new StringContent("not json", Encoding.UTF8, "application/cloudevents+json")))
        {
            // The SDK's CloudEvents middleware cannot unwrap it; a non-2xx answer makes daprd retry and then dead-letter.
            unparsable.IsSuccessStatusCode.Should().BeFalse();
        }
        async Task<(HttpStatusCode, string?)> Post(string route, string body)
        {
            using var response = await http.PostAsync(route, new StringContent(body, Encoding.UTF8, "application/cloudevents+json"));
            return (response.StatusCode, JsonNode.Parse(await response.Content.ReadAsStringAsync())!["status"]!.GetValue<string>());
        }
        const string Event = """{"id":"e-9","source":"x","type":"t","specversion":"1.0","topic":"orders","pubsubname":"pubsub","data":{"n":1}}""";

        (await Post("events/orders", """{"source":"x","type":"t","specversion":"1.0","data":{}}""")).Should().Be((HttpStatusCode.OK, "DROP"), "an event without an id is never processable");
        (await Post("events/boom", Event.Replace("orders", "boom", StringComparison.Ordinal))).Should().Be((HttpStatusCode.OK, "RETRY"));
        (await Post("events/orders", Event)).Should().Be((HttpStatusCode.OK, "SUCCESS"));
        (await Post("events/orders", Event)).Should().Be((HttpStatusCode.OK, "SUCCESS"));
        Volatile.Read(ref _handlerCalls).Should().Be(1, "a redelivered id is acknowledged without running the handler");
    }

    private IProbeActor Probe(string id) =>
        _app.Services.GetRequiredService<IActorProxyFactory>().CreateActorProxy<IProbeActor>(new ActorId(id), nameof(ProbeActor));

    [Fact]
    public async Task ActorCalls_UseActorApi_StateTransaction_AndReminderShape()
    {
        (await Probe("c1").Increment()).Should().Be(1);
        var call = Last("PUT", "/v1.0/actors/ProbeActor/c1/method/");
        call.Path.Should().Be("/v1.0/actors/ProbeActor/c1/method/Increment");
        call.Header("X-DaprRequestHeader").Should().NotBeNull("a typed proxy call goes through the SDK's remoting");

        var state = Sidecar.Requests.Last(r => r.Path == "/v1.0/actors/ProbeActor/c1/state" && r.Method is "PUT" or "POST").Json()!.AsArray().Single()!;
        state["operation"]!.GetValue<string>().Should().Be("upsert");
        state["request"]!["key"]!.GetValue<string>().Should().Be("count");
        state["request"]!["value"]!.GetValue<int>().Should().Be(1);
        Last("GET", "/v1.0/actors/ProbeActor/c1/state/count").Should().NotBeNull();

        await Probe("c1").Remind("r1");
        var reminder = Last("PUT", "/v1.0/actors/ProbeActor/c1/reminders/r1").Json()!.AsObject();
        FakeDaprSidecar.TryParseDuration(reminder["dueTime"]!.GetValue<string>(), out var due).Should().BeTrue();
        due.Should().Be(TimeSpan.FromSeconds(5));
        reminder["data"]!.GetValue<string>().Should().Be(Convert.ToBase64String(Encoding.UTF8.GetBytes("hello")));
    }

    [Fact]
    public async Task ActorMethodFailure_ComesBackToTheProxyAsActorMethodInvocationException()
    {
        var failure = await Probe("bad").Invoking(p => p.Fail()).Should().ThrowAsync<ActorMethodInvocationException>();
        failure.Which.ToString().Should().Contain("boom");
    }

    [Fact]
    public async Task TimerCallback_InvokesTheNamedMethodAsATurn()
    {
        await Probe("tm").Increment();
        using var http = AppClient();
        using var response = await http.PutAsync("actors/ProbeActor/tm/method/timer/tick",
            new StringContent("""{"callback":"Increment","dueTime":"0h0m0s0ms","period":"0h0m10s0ms"}""", Encoding.UTF8, "application/json"));
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        (await Probe("tm").Get()).Should().Be(2);
    }

    [Fact]
    public async Task ServiceInvocation_GoesThroughInvokeApi_WithPathAndQuery()
    {
        var invoker = _app.Services.GetRequiredService<IServiceInvoker>();
        using var response = await invoker.InvokeAsync("session", new HttpRequestMessage(HttpMethod.Get, new Uri("v1/echo?x=42", UriKind.Relative)));
        (await response.Content.ReadAsStringAsync()).Should().Be("echo 42");
        var call = Last("GET", "/v1.0/invoke/");
        call.Path.Should().Be("/v1.0/invoke/session/method/v1/echo");
        call.Query.Should().Be("?x=42");
        call.Header("dapr-api-token").Should().Be(DaprTestApp.SidecarToken);
    }

    [Fact]
    public async Task SidecarWaiter_FailsClearly_WhenOutboundNeverReady()
    {
        Sidecar.OutboundReady = false;
        using var client = Sidecar.CreateClient();
        var waiter = new DaprSidecarWaiter(client, new DaprOptions { HttpEndpoint = Sidecar.BaseAddress, SidecarWaitTimeout = TimeSpan.FromMilliseconds(300) },
            NullLogger<DaprSidecarWaiter>.Instance);
        (await waiter.Invoking(w => w.WaitAsync(CancellationToken.None)).Should().ThrowAsync<InvalidOperationException>())
            .Which.Message.Should().Contain("was not ready").And.Contain("CloudMemory:Runtime=Embedded");
        Sidecar.OutboundReady = true;
        await waiter.WaitAsync(CancellationToken.None);
    }

    [Fact]
    public async Task FakeSidecar_RecordsAnyRequestOutsideTheContract()
    {
        using var http = new HttpClient { BaseAddress = Sidecar.BaseAddress };
        http.DefaultRequestHeaders.Add("dapr-api-token", DaprTestApp.SidecarToken);
        using var response = await http.GetAsync("v1.0/metadata");
        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        Sidecar.Violations.Should().ContainSingle(v => v.Contains("unrecognised request GET /v1.0/metadata", StringComparison.Ordinal));
        Sidecar.Violations.Clear(); // the self-test's own violation, expected
    }

    [Fact]
    public async Task FakeSidecar_RecordsAnyRpcItDoesNotImplement()
    {
        using var client = Sidecar.CreateClient();
        await client.Invoking(c => c.GetSecretAsync("vault", "k")).Should().ThrowAsync<global::Dapr.DaprException>();
        Sidecar.Violations.Should().ContainSingle(v => v.Contains("GetSecret", StringComparison.Ordinal) && v.Contains("not implemented", StringComparison.Ordinal));
        Sidecar.Violations.Clear(); // the self-test's own violation, expected
    }
}
