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
        services.AddActor<ProbeActor>(o => o.IdleTimeout = TimeSpan.FromMinutes(10));
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
    public async Task StateSave_SendsItemArray_WithEtagOptionsAndTtlAsString()
    {
        var store = _app.Services.GetRequiredService<IStateStore>();
        await store.SaveAsync("s1", Encoding.UTF8.GetBytes("""{"v":1}"""));
        var etag = (await store.GetAsync("s1"))!.ETag;
        await store.SaveAsync("s1", Encoding.UTF8.GetBytes("""{"v":2}"""), etag,
            new StateWriteOptions(StateConcurrency.FirstWrite, StateConsistency.Eventual, TimeSpan.FromSeconds(120)));

        var save = Last("POST", "/v1.0/state/statestore");
        save.Path.Should().Be("/v1.0/state/statestore");
        save.Header("dapr-api-token").Should().Be(DaprTestApp.SidecarToken);
        var item = (JsonObject)save.Json()!.AsArray().Single()!;
        item["key"]!.GetValue<string>().Should().Be("s1");
        item["value"]!["v"]!.GetValue<int>().Should().Be(2);
        item["etag"]!.GetValue<string>().Should().Be(etag);
        item["metadata"]!["ttlInSeconds"]!.GetValue<string>().Should().Be("120", "daprd reads metadata as strings");
        item["options"]!["concurrency"]!.GetValue<string>().Should().Be("first-write");
        item["options"]!["consistency"]!.GetValue<string>().Should().Be("eventual");
    }

    [Fact]
    public async Task StateGetAndDelete_SendConsistencyQueryAndIfMatch()
    {
        var store = _app.Services.GetRequiredService<IStateStore>();
        await store.SaveAsync("g1", Encoding.UTF8.GetBytes("1"));
        var entry = await store.GetAsync("g1", StateConsistency.Eventual);
        Last("GET", "/v1.0/state/statestore/g1").Query.Should().Be("?consistency=eventual");
        await store.DeleteAsync("g1", entry!.ETag);
        var delete = Last("DELETE", "/v1.0/state/statestore/g1");
        delete.Header("If-Match").Should().Be(entry.ETag);
        delete.Query.Should().Contain("concurrency=last-write").And.Contain("consistency=strong");
    }

    [Fact]
    public async Task BulkGetAndTransaction_SendContractBodies()
    {
        var store = _app.Services.GetRequiredService<IStateStore>();
        await store.GetBulkAsync(["a", "b"]);
        var bulk = Last("POST", "/v1.0/state/statestore/bulk").Json()!;
        bulk["keys"]!.AsArray().Select(k => k!.GetValue<string>()).Should().Equal("a", "b");
        bulk["parallelism"]!.GetValue<int>().Should().BePositive();

        await store.ExecuteTransactionAsync([StateOperation.Upsert("a", Encoding.UTF8.GetBytes("1")), StateOperation.Delete("b")]);
        var ops = Last("POST", "/v1.0/state/statestore/transaction").Json()!["operations"]!.AsArray();
        ops[0]!["operation"]!.GetValue<string>().Should().Be("upsert");
        ops[0]!["request"]!["value"]!.GetValue<int>().Should().Be(1);
        ops[1]!["operation"]!.GetValue<string>().Should().Be("delete");
        ops[1]!["request"]!.AsObject().ContainsKey("value").Should().BeFalse();
    }

    [Theory]
    [InlineData(500, "ERR_STATE_TRANSACTION", "error while executing state transaction: possible etag mismatch", true)]
    [InlineData(500, "ERR_STATE_TRANSACTION", "ERR Error running script: conflict", true)]
    [InlineData(500, "ERR_STATE_TRANSACTION", "failed saving state in state store statestore: no item was updated", true)]
    [InlineData(409, "ERR_STATE_TRANSACTION", "anything", true)]
    [InlineData(500, "ERR_STATE_TRANSACTION", "connection refused", false)]
    [InlineData(500, "ERR_STATE_STORE_NOT_SUPPORTED", "etag", false)]
    public void TransactionErrors_AreConcurrencyFailuresOnlyWhenTheyNameAConflict(int status, string code, string message, bool conflict) =>
        DaprStateStore.IsTransactionConflict(new DaprApiException((HttpStatusCode)status, code, message, "tx")).Should().Be(conflict);

    [Fact]
    public async Task Publish_SendsOurEnvelopeAsCloudEventsJson_WithTraceparent()
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
        var publish = Last("POST", "/v1.0/publish/");
        publish.Path.Should().Be("/v1.0/publish/pubsub/orders");
        publish.Header("Content-Type").Should().StartWith("application/cloudevents+json");
        publish.Header("traceparent").Should().Be(activity.Id);
        var envelope = publish.Json()!;
        envelope["id"]!.GetValue<string>().Should().Be(id);
        envelope["source"]!.GetValue<string>().Should().Be("session");
        envelope["specversion"]!.GetValue<string>().Should().Be("1.0");
        envelope["type"]!.GetValue<string>().Should().Be("test.v1");
        await Sidecar.WhenDeliveriesSettledAsync();
        Sidecar.Deliveries.Should().ContainSingle(d => d.EventId == id && d.Outcome == "SUCCESS");
    }

    [Fact]
    public async Task DaprSubscribe_ListsSubscriptionsInDaprShape()
    {
        using var http = AppClient();
        var body = JsonNode.Parse(await http.GetStringAsync("dapr/subscribe"))!.AsArray();
        var orders = body.Single(s => s!["topic"]!.GetValue<string>() == "orders")!.AsObject();
        orders.Select(p => p.Key).Should().BeEquivalentTo("pubsubname", "topic", "route", "deadLetterTopic");
        orders["pubsubname"]!.GetValue<string>().Should().Be("pubsub");
        orders["route"]!.GetValue<string>().Should().Be("/events/orders");
        orders["deadLetterTopic"]!.GetValue<string>().Should().Be("orders-dead");
        body.Single(s => s!["topic"]!.GetValue<string>() == "boom")!.AsObject().ContainsKey("deadLetterTopic").Should().BeFalse();
    }

    [Fact]
    public async Task DaprConfig_ListsActorTypesAndDurations()
    {
        using var http = AppClient();
        var config = JsonNode.Parse(await http.GetStringAsync("dapr/config"))!;
        config["entities"]!.AsArray().Select(e => e!.GetValue<string>()).Should().Equal(nameof(ProbeActor));
        config["actorIdleTimeout"]!.GetValue<string>().Should().Be("1h");
        config["actorScanInterval"]!.GetValue<string>().Should().Be("30s");
        config["drainOngoingCallTimeout"]!.GetValue<string>().Should().Be("1m");
        config["drainRebalancedActors"]!.GetValue<bool>().Should().BeTrue();
        config["entitiesConfig"]![0]!["actorIdleTimeout"]!.GetValue<string>().Should().Be("10m");
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
    public async Task Delivery_AnswersStatusWith200_DropsUnparsable_RetriesFailures_AcksDuplicates()
    {
        using var http = AppClient();
        async Task<(HttpStatusCode, string?)> Post(string route, string body)
        {
            using var response = await http.PostAsync(route, new StringContent(body, Encoding.UTF8, "application/cloudevents+json"));
            return (response.StatusCode, JsonNode.Parse(await response.Content.ReadAsStringAsync())!["status"]!.GetValue<string>());
        }
        const string Event = """{"id":"e-9","source":"x","type":"t","specversion":"1.0","topic":"orders","pubsubname":"pubsub","data":{"n":1}}""";

        (await Post("events/orders", "not json")).Should().Be((HttpStatusCode.OK, "DROP"));
        (await Post("events/boom", Event.Replace("orders", "boom", StringComparison.Ordinal))).Should().Be((HttpStatusCode.OK, "RETRY"));
        (await Post("events/orders", Event)).Should().Be((HttpStatusCode.OK, "SUCCESS"));
        (await Post("events/orders", Event)).Should().Be((HttpStatusCode.OK, "SUCCESS"));
        Volatile.Read(ref _handlerCalls).Should().Be(1, "a redelivered id is acknowledged without running the handler");
    }

    [Fact]
    public async Task ActorCalls_UseActorApi_StateTransaction_AndReminderShape()
    {
        var invoker = _app.Services.GetRequiredService<IActorInvoker>();
        (await invoker.InvokeMethodAsync<object?, int>(nameof(ProbeActor), "c1", nameof(ProbeActor.Increment), null)).Should().Be(1);
        var call = Last("PUT", "/v1.0/actors/");
        call.Path.Should().Be("/v1.0/actors/ProbeActor/c1/method/Increment");

        var state = Last("POST", "/v1.0/actors/ProbeActor/c1/state").Json()!.AsArray().Single()!;
        state["operation"]!.GetValue<string>().Should().Be("upsert");
        state["request"]!["key"]!.GetValue<string>().Should().Be("count");
        state["request"]!["value"]!.GetValue<int>().Should().Be(1);
        Last("GET", "/v1.0/actors/ProbeActor/c1/state/count").Should().NotBeNull();

        await invoker.InvokeMethodAsync<string, object?>(nameof(ProbeActor), "c1", nameof(ProbeActor.Remind), "r1");
        var reminder = Last("PUT", "/v1.0/actors/ProbeActor/c1/reminders/r1").Json()!.AsObject();
        reminder.Select(p => p.Key).Should().BeEquivalentTo("dueTime", "data");
        reminder["dueTime"]!.GetValue<string>().Should().Be("5s");
        reminder["data"]!.GetValue<string>().Should().Be(Convert.ToBase64String(Encoding.UTF8.GetBytes("hello")));
    }

    [Fact]
    public async Task ActorMethodFailure_ComesBackAsActorMethodException()
    {
        var invoker = _app.Services.GetRequiredService<IActorInvoker>();
        var act = () => invoker.InvokeMethodAsync<object?, object?>(nameof(ProbeActor), "bad", nameof(ProbeActor.Fail), null);
        (await act.Should().ThrowAsync<ActorMethodException>()).Which.Message.Should().Contain("boom");
    }

    [Fact]
    public async Task TimerCallback_InvokesTheNamedMethodAsATurn()
    {
        await _app.Services.GetRequiredService<IActorInvoker>().InvokeMethodAsync<object?, int>(nameof(ProbeActor), "tm", nameof(ProbeActor.Increment), null);
        using var http = AppClient();
        using var response = await http.PutAsync("actors/ProbeActor/tm/method/timer/tick",
            new StringContent("""{"callback":"Increment","data":null,"dueTime":"0s","period":"10s"}""", Encoding.UTF8, "application/json"));
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        (await _app.Services.GetRequiredService<IActorInvoker>().InvokeMethodAsync<object?, int>(nameof(ProbeActor), "tm", nameof(ProbeActor.Get), null)).Should().Be(2);
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
        using var client = new DaprSidecarClient(new DaprOptions { HttpEndpoint = Sidecar.BaseAddress, SidecarWaitTimeout = TimeSpan.FromMilliseconds(300) }, TimeProvider.System);
        var waiter = new DaprSidecarWaiter(client, TimeProvider.System, NullLogger<DaprSidecarWaiter>.Instance);
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
}
