using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.Context;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Events;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Conversations.Log;
using CloudMemory.Dapr.Tests.FakeSidecar;
using Dapr.Client.Autogen.Grpc.v1;
using CloudMemory.Session;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.Dapr.Tests.Services;

/// <summary>
/// Issue 3 "done when": the real session and context service code, composed as their Program.cs
/// composes it, runs unmodified with <c>CloudMemory:Runtime=Dapr</c> against the fake sidecar
/// (tokens on in both directions). Every actor call, state write and event goes over the wire.
/// </summary>
public sealed partial class SessionServiceOnDaprTests : IAsyncLifetime
{
    private const string ActorType = ConversationActorContract.ActorType;
    private const string TestRoute = "/test/events";

    // A small window so that a handful of turns crosses the 0.75 threshold (automatic checkpoints).
    private static readonly Dictionary<string, string?> SmallWindow = new()
    {
        ["CloudMemory:Memory:ModelContextWindow"] = "1000",
        ["CloudMemory:Memory:RecentTurns"] = "2",
    };

    private readonly ConcurrentQueue<CloudEvent> _received = new();
    private readonly ManualTimeProvider _sidecarClock = new();
    private DaprTestApp _app = null!;
    private HttpClient _client = null!;

    private FakeDaprSidecar Sidecar => _app.Sidecar;

    public Task InitializeAsync() => StartAsync(settings: null);

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _app.DisposeAsync();
    }

    private async Task StartAsync(IDictionary<string, string?>? settings)
    {
        _app = await StartAppAsync(session: true, context: true, settings);
        _client = new HttpClient { BaseAddress = _app.AppBase, Timeout = Wait.Timeout };
    }

    /// <summary>
    /// The session and/or context service composed as services/CloudMemory.Session/Program.cs and
    /// services/CloudMemory.Context/Program.cs compose them, plus a test subscriber of the events.
    /// </summary>
    private Task<DaprTestApp> StartAppAsync(bool session, bool context, IDictionary<string, string?>? settings,
        FakeDaprSidecar? sharedSidecar = null, IConversationLog? sharedLog = null)
    {
        var all = new Dictionary<string, string?> { ["CloudMemory:Llm:Endpoint"] = "" };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            all[key] = value;
        }
        var appId = session ? CloudMemory.Session.SessionServiceCollectionExtensions.AppId : ContextServiceCollectionExtensions.AppId;
        return DaprTestApp.StartServiceAsync(_sidecarClock, appId, builder =>
        {
            if (sharedLog is not null)
            {
                // Stands in for the PostgreSQL database the deployed apps share.
                builder.Services.AddSingleton(sharedLog);
            }
            if (session)
            {
                builder.AddSessionServices();
                // A subscriber of the integration events, as another app would register one.
                builder.Services.AddSingleton(new Subscription(Topics.TurnWritten, TestRoute, Receive));
                builder.Services.AddSingleton(new Subscription(Topics.CheckpointCreated, TestRoute, Receive));
            }
            if (context)
            {
                builder.AddContextServices();
            }
        }, app =>
        {
            if (session)
            {
                app.MapSessionEndpoints();
            }
            if (context)
            {
                app.MapContextEndpoints();
            }
        }, all, sharedSidecar);
    }

    private async Task RestartAsync(IDictionary<string, string?> settings)
    {
        await DisposeAsync();
        _received.Clear();
        await StartAsync(settings);
    }

    private Task<DeliveryStatus> Receive(CloudEvent cloudEvent, CancellationToken cancellationToken)
    {
        _received.Enqueue(cloudEvent);
        return Task.FromResult(DeliveryStatus.Success);
    }

    private static string NewId() => "conv-" + Guid.NewGuid().ToString("N")[..12];

    private static string ActorId(string conversationId) => ConversationActorContract.ActorId(Tenant.Default, conversationId);

    private Task<HttpResponseMessage> PostAsync<T>(string url, T body) =>
        _client.PostAsJsonAsync(url, body, ContractsJson.Options);

    private static async Task<T> ReadAsync<T>(HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStringAsync();
        response.IsSuccessStatusCode.Should().BeTrue($"{(int)response.StatusCode} {body}");
        return JsonSerializer.Deserialize<T>(body, ContractsJson.Options)!;
    }

    private async Task<WriteTurnResult> TurnAsync(string id, int i) =>
        await ReadAsync<WriteTurnResult>(await PostAsync($"v1/sessions/{id}/turns",
            new WriteTurnRequest(null, "triage", $"Turn {i}: I have had a headache for {i} days and a mild fever.",
                $"Answer {i}: please rest and drink water; see a doctor if it persists.")));

    private List<CloudEvent> ReceivedOfType(string type) => _received.Where(e => e.Type == type).ToList();

    private List<ActorCallRecord> ForwardedCalls(string conversationId, string method) =>
        Sidecar.ActorCalls.Where(c => c.Type == ActorType && c.Id == ActorId(conversationId) && c.Method == method).ToList();

    [Fact]
    public async Task DotNetClient_OverDaprServiceInvocation_RunsTheSeedOperations()
    {
        // Both services are one app ("session") in this test, so the client's context app id points there too.
        using var http = new HttpClient { Timeout = Wait.Timeout };
        var client = new CloudMemory.Client.CloudMemoryClient(http, new CloudMemory.Client.CloudMemoryClientOptions
        {
            DaprHttpPort = Sidecar.BaseAddress.Port,
            DaprApiToken = DaprTestApp.SidecarToken,
            ContextAppId = CloudMemory.Session.SessionServiceCollectionExtensions.AppId,
            AgentId = "triage",
        });
        var id = "client-" + Guid.NewGuid().ToString("N")[..8];

        await client.CreateShortMemoryAsync(id, "u-client");
        var turn = await client.WriteTurnAsync(id, "Turn 1: my head hurts.", "Please rest.", "triage", turnId: "t1");
        await client.WriteAgentSlotAsync(id, "triage", new { level = "low" });
        var context = await client.QueryMemoryContextAsync(new MemoryQueryRequest(id, Query: "and now?"));
        var stale = await client.GetShortMemoryAsync(id);
        await client.WriteTurnAsync(id, "Turn 2", "ok");
        var conflict = () => client.SetShortMemoryAsync(id, stale.Session, stale.ETag);

        turn.TurnCount.Should().Be(1);
        context.FullHistory.Should().Contain("Turn 1: my head hurts.");
        context.Session.GlobalState.AgentSlots.Should().ContainKey("triage");
        (await conflict.Should().ThrowAsync<CloudMemory.Client.CloudMemoryException>()).Which.Code.Should().Be("etag-mismatch");
        Sidecar.Requests.Should().Contain(r => r.Path.StartsWith("/v1.0/invoke/session/method/v1/sessions", StringComparison.Ordinal));
        Sidecar.AssertNoViolations();
    }

    [Fact]
    public async Task Lifecycle_OnDaprRuntime_GoesThroughTheSidecarInBothDirections()
    {
        var id = NewId();

        // CreateShortMemory → actor Create through the sidecar.
        var created = await PostAsync("v1/sessions", new CreateSessionRequest(id, "user-1"));
        created.StatusCode.Should().Be(HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
        ForwardedCalls(id, "Create").Should().ContainSingle().Which.Status.Should().Be(200);

        // WriteTurn: app → PUT /v1.0/actors/ConversationActor/{id}/method/WriteTurn → the app's callback.
        var turn = await TurnAsync(id, 1);
        turn.TurnCount.Should().Be(1);
        turn.Mode.Should().Be(MemoryMode.FullHistory);
        Sidecar.Requests.Should().Contain(r => r.Method == "PUT" && r.Path == $"/v1.0/actors/{ActorType}/{ActorId(id)}/method/WriteTurn"
            && r.Header("dapr-api-token") == DaprTestApp.SidecarToken);
        ForwardedCalls(id, "WriteTurn").Should().ContainSingle().Which.Status.Should().Be(200);

        // GetShortMemory reads back what the actor stored — and it is stored in the sidecar's state store.
        var get = await _client.GetAsync($"v1/sessions/{id}");
        var session = await ReadAsync<SessionValue>(get);
        session.FlowContext.TurnCount.Should().Be(1);
        session.Meta.UserId.Should().Be("user-1");
        get.Headers.ETag.Should().NotBeNull();
        var key = $"short_term_memory:session:{id}";
        var stored = Sidecar.StoredState(key);
        stored.Should().NotBeNull("the session lives in the sidecar's state store under the seed's key");
        stored!["flowContext"]!["turnCount"]!.GetValue<int>().Should().Be(1);
        stored["meta"]!["conversationId"]!.GetValue<string>().Should().Be(id);
        var saves = SavesOf(key);
        saves.Should().NotBeEmpty();
        saves.Should().OnlyContain(item => item.Metadata["ttlInSeconds"] == "1800",
            "every write slides the session TTL (seed: 1800 s)");

        // Where the actor is hosted in the same app, reads skip its mailbox and read the state through the sidecar.
        var context = await ReadAsync<MemoryContext>(await PostAsync("v1/context/query", new MemoryQueryRequest(id, Query: "what next?")));
        context.Mode.Should().Be(MemoryMode.FullHistory);
        context.History.Should().Contain("Turn 1");
        context.Session.FlowContext.TurnCount.Should().Be(1);
        Sidecar.GrpcRequests<GetStateRequest>("GetState").Count(r => r.StoreName == "statestore" && r.Key == $"short_term_memory:session:{id}")
            .Should().BeGreaterThanOrEqualTo(2, "GetShortMemory and QueryMemoryContext both read the session state through the sidecar");

        // Explicit checkpoint: the coordinator summarizes outside the actor, then applies through it.
        var checkpoint = await ReadAsync<CheckpointResult>(await PostAsync($"v1/sessions/{id}/checkpoints", new CheckpointRequest("Headache and mild fever for a day.", 2)));
        checkpoint.Mode.Should().Be(MemoryMode.SummaryN);
        checkpoint.CheckpointCount.Should().Be(1);
        ForwardedCalls(id, "ApplyCheckpoint").Should().ContainSingle().Which.Status.Should().Be(200);
        var afterCheckpoint = await ReadAsync<MemoryContext>(await PostAsync("v1/context/query", new MemoryQueryRequest(id)));
        afterCheckpoint.Mode.Should().Be(MemoryMode.SummaryN);
        afterCheckpoint.History.Should().StartWith("[summary] Headache and mild fever for a day.");

        // Finalize; later turns are refused with the actor's 409 carried back through the sidecar.
        var final = await ReadAsync<CheckpointResult>(await PostAsync($"v1/sessions/{id}/finalize", new CheckpointRequest("Finished: rest advised.", 2)));
        final.Status.Should().Be(SessionStatus.Finalized);
        Sidecar.StoredState(key)!["meta"]!["status"]!.GetValue<string>().Should().Be("FINALIZED");
        var refused = await PostAsync($"v1/sessions/{id}/turns", new WriteTurnRequest(null, "triage", "one more?", "no"));
        refused.StatusCode.Should().Be(HttpStatusCode.Conflict);
        (await refused.Content.ReadAsStringAsync()).Should().Contain("session-finalized");

        // Events: published to the sidecar, delivered by it to the subscription's route as CloudEvents.
        await Wait.UntilAsync(() => ReceivedOfType(EventTypes.CheckpointCreated).Count == 2, "two checkpoint-created deliveries");
        await Sidecar.WhenDeliveriesSettledAsync();
        var turnWritten = ReceivedOfType(EventTypes.TurnWritten).Should().ContainSingle().Subject;
        turnWritten.Source.Should().Be("session");
        turnWritten.Topic.Should().Be(Topics.TurnWritten);
        turnWritten.PubSubName.Should().Be(Topics.PubSubName);
        turnWritten.TenantId.Should().Be(Tenant.Default);
        turnWritten.Data.GetProperty("conversationId").GetString().Should().Be(id);
        turnWritten.Data.GetProperty("turnCount").GetInt32().Should().Be(1);
        ReceivedOfType(EventTypes.CheckpointCreated).Select(e => e.Data.GetProperty("checkpointCount").GetInt32()).Should().BeEquivalentTo([1, 2]);
        Sidecar.GrpcRequests<PublishEventRequest>("PublishEvent").Should().Contain(r => r.PubsubName == "pubsub" && r.Topic == Topics.TurnWritten);
        Sidecar.Deliveries.Should().Contain(d => d.Topic == Topics.TurnWritten && d.Route == TestRoute && d.EventId == turnWritten.Id && d.Outcome == "SUCCESS");
        _received.Should().OnlyHaveUniqueItems(e => e.Id);

        // Every actor callback came from the sidecar with the app token (the filter answers 401 otherwise).
        Sidecar.ActorCalls.Should().NotContain(c => c.Status == 401);
        Sidecar.AssertNoViolations();
    }

    [Fact]
    public async Task WriteTurn_16ConcurrentOnOneConversation_LoseNothing()
    {
        var id = NewId();
        (await PostAsync("v1/sessions", new CreateSessionRequest(id, "user-1"))).StatusCode.Should().Be(HttpStatusCode.Created);

        var results = await Task.WhenAll(Enumerable.Range(1, 16).Select(i => TurnAsync(id, i)));

        results.Select(r => r.TurnCount).Should().BeEquivalentTo(Enumerable.Range(1, 16), "each turn ran alone in the actor and saw the ones before it");
        var session = await ReadAsync<SessionValue>(await _client.GetAsync($"v1/sessions/{id}"));
        session.FlowContext.TurnCount.Should().Be(16);
        Sidecar.StoredState($"short_term_memory:session:{id}")!["flowContext"]!["turnCount"]!.GetValue<int>().Should().Be(16);
        var page = await ReadAsync<MessagePage>(await _client.GetAsync($"v1/conversations/{id}/messages"));
        page.Messages.Where(m => !m.IsCheckpoint).Should().HaveCount(16);
        page.Messages.Select(m => m.Query).Should().OnlyHaveUniqueItems();
        ForwardedCalls(id, "WriteTurn").Should().HaveCount(16).And.OnlyContain(c => c.Status == 200);
        await Wait.UntilAsync(() => ReceivedOfType(EventTypes.TurnWritten).Count == 16, "16 turn-written deliveries");
        await Sidecar.WhenDeliveriesSettledAsync();
        Sidecar.AssertNoViolations();
    }

    [Fact]
    public async Task Checkpoints_AutomaticAndExplicit_WhileTurnsRun_CallTheActorFromOutsideItsTurns_NoDeadlock()
    {
        // The automatic checkpoint is a workflow started from inside WriteTurn; it and the explicit
        // checkpoint call the actor (Get, ApplyCheckpoint) from outside any actor turn, so the
        // fake's one-call-per-id forwarding (no reentrancy, as daprd's default) must never block them.
        await RestartAsync(SmallWindow);
        var id = NewId();
        (await PostAsync("v1/sessions", new CreateSessionRequest(id, "user-1"))).StatusCode.Should().Be(HttpStatusCode.Created);

        // Enough turns to cross the threshold of a 1000-token window several times, the explicit
        // checkpoint started while they are still arriving.
        var turns = Enumerable.Range(1, 5).Select(i => TurnAsync(id, i)).ToList();
        await Task.WhenAll(turns).WaitAsync(Wait.Timeout);
        turns.AddRange(Enumerable.Range(6, 60).Select(i => TurnAsync(id, i)));
        var explicitCheckpoint = PostAsync($"v1/sessions/{id}/checkpoints", new CheckpointRequest());
        // Bounded waits: a deadlock fails here instead of hanging the run.
        await Task.WhenAll(turns).WaitAsync(Wait.Timeout);
        using var checkpointResponse = await explicitCheckpoint.WaitAsync(Wait.Timeout);
        var body = await checkpointResponse.Content.ReadAsStringAsync();
        // A background checkpoint may land between plan and apply twice in a row: that is a clean 409, never a failure.
        (checkpointResponse.StatusCode == HttpStatusCode.OK || (checkpointResponse.StatusCode == HttpStatusCode.Conflict && body.Contains("checkpoint-conflict", StringComparison.Ordinal)))
            .Should().BeTrue($"{(int)checkpointResponse.StatusCode} {body}");
        // The checkpoint workflows run on the real Dapr.Workflow worker against the fake's engine.
        await Sidecar.WhenWorkflowsIdleAsync();
        // If the explicit checkpoint landed last, the automatic one of that segment lost the race
        // (checkpoint-conflict) and no later turn crossed again: the next turn, still above the
        // threshold, starts the next automatic checkpoint.
        await TurnAsync(id, 66);
        await Sidecar.WhenWorkflowsIdleAsync();

        var session = await ReadAsync<SessionValue>(await _client.GetAsync($"v1/sessions/{id}"));
        session.FlowContext.TurnCount.Should().Be(66);
        session.MessageContext.Mode.Should().Be(MemoryMode.SummaryN);
        ForwardedCalls(id, "ApplyCheckpoint").Should().NotBeEmpty().And.OnlyContain(c => c.Status == 200);
        await Wait.UntilAsync(() => ReceivedOfType(EventTypes.CheckpointCreated).Count == session.MessageContext.CheckpointCount,
            "a checkpoint-created delivery per checkpoint");
        ReceivedOfType(EventTypes.CheckpointCreated).Should().Contain(e => e.Data.GetProperty("automatic").GetBoolean(),
            "the threshold crossing started the checkpoint workflow");
        await Sidecar.WhenDeliveriesSettledAsync();
        Sidecar.AssertNoViolations();
    }

    [Fact]
    public async Task ContextApp_WithoutPostgreSql_ReadsTheTurnsTheSessionAppWrote_ThroughTheStateStore()
    {
        // Two apps as `dapr run -f dapr.yaml` starts them with only the default components: no
        // connection string, so both keep the message log in the Dapr state store and share it.
        await DisposeAsync();
        _app = await StartAppAsync(session: true, context: false, settings: null);
        _client = new HttpClient { BaseAddress = _app.AppBase, Timeout = Wait.Timeout };
        await using var contextApp = await StartAppAsync(session: false, context: true, settings: null, _app.Sidecar);
        using var contextClient = new HttpClient { BaseAddress = contextApp.AppBase, Timeout = Wait.Timeout };
        contextApp.Services.GetRequiredService<IConversationLog>().Should().NotBeOfType<InMemoryConversationLog>();
        var id = NewId();
        (await PostAsync("v1/sessions", new CreateSessionRequest(id, "user-1"))).StatusCode.Should().Be(HttpStatusCode.Created);
        await TurnAsync(id, 1);
        await TurnAsync(id, 2);

        var context = await ReadAsync<MemoryContext>(await contextClient.PostAsJsonAsync("v1/context/query", new MemoryQueryRequest(id, Query: "next?"), ContractsJson.Options));

        context.History.Should().Contain("Turn 1").And.Contain("Turn 2");
        var page = await ReadAsync<MessagePage>(await contextClient.GetAsync($"v1/conversations/{id}/messages"));
        page.Messages.Select(m => m.Query).Should().HaveCount(2).And.OnlyContain(q => q.StartsWith("Turn ", StringComparison.Ordinal));
        Sidecar.StoredState($"cmlog:{Tenant.Default}:{id}")!["stats"]!["turnCount"]!.GetValue<int>().Should().Be(2, "the log header lives in the sidecar's state store");
        Sidecar.AssertNoViolations();
    }

    [Fact]
    public async Task WriteTurn_64ConcurrentOnOneConversation_OverTheStateStoreLog_LoseNothing()
    {
        var id = NewId();
        (await PostAsync("v1/sessions", new CreateSessionRequest(id, "user-1"))).StatusCode.Should().Be(HttpStatusCode.Created);

        var results = await Task.WhenAll(Enumerable.Range(1, 64).Select(i => TurnAsync(id, i)));

        results.Select(r => r.TurnCount).Should().BeEquivalentTo(Enumerable.Range(1, 64));
        var messages = new List<LogMessage>();
        for (long after = 0; ;)
        {
            var page = await ReadAsync<MessagePage>(await _client.GetAsync($"v1/conversations/{id}/messages?after={after}&limit=50"));
            messages.AddRange(page.Messages);
            if (page.NextAfterSequence is not { } next)
            {
                break;
            }
            after = next;
        }
        messages.Where(m => !m.IsCheckpoint).Select(m => m.Query).Should().HaveCount(64).And.OnlyHaveUniqueItems();
        messages.Select(m => m.Sequence).Should().BeInAscendingOrder().And.OnlyHaveUniqueItems();
        Sidecar.StoredState($"cmlog:{Tenant.Default}:{id}")!["stats"]!["turnCount"]!.GetValue<int>().Should().Be(64);
        await Sidecar.WhenDeliveriesSettledAsync();
        Sidecar.AssertNoViolations();
    }

    [Fact]
    public async Task ContextApp_AsItsOwnDaprApp_ReadsTheSessionThroughTheSessionAppsActor()
    {
        // Two apps as deployed: `session` hosts ConversationActor; `context` hosts no actor and
        // reaches it through the sidecar (the fake plays both sidecars and routes by actor type).
        await DisposeAsync();
        var log = new InMemoryConversationLog(TimeProvider.System);
        _app = await StartAppAsync(session: true, context: false, settings: null, sharedLog: log);
        _client = new HttpClient { BaseAddress = _app.AppBase, Timeout = Wait.Timeout };
        await using var contextApp = await StartAppAsync(session: false, context: true, settings: null, _app.Sidecar, log);
        using var contextClient = new HttpClient { BaseAddress = contextApp.AppBase, Timeout = Wait.Timeout };
        var id = NewId();
        (await PostAsync("v1/sessions", new CreateSessionRequest(id, "user-1"))).StatusCode.Should().Be(HttpStatusCode.Created);
        await TurnAsync(id, 1);

        var query = await contextClient.PostAsJsonAsync("v1/context/query", new MemoryQueryRequest(id, Query: "next?"), ContractsJson.Options);
        var context = await ReadAsync<MemoryContext>(query);

        context.Session.FlowContext.TurnCount.Should().Be(1);
        context.History.Should().Contain("Turn 1");
        ForwardedCalls(id, "Get").Should().ContainSingle("the context app's read went through the sidecar to the session app's actor")
            .Which.Status.Should().Be(200);
        (await contextClient.GetAsync($"v1/sessions/{id}")).StatusCode.Should().Be(HttpStatusCode.NotFound, "the session API is the session app's");
        (await contextClient.GetAsync("dapr/config")).StatusCode.Should().Be(HttpStatusCode.Unauthorized, "sidecar callbacks need the app token");
        Sidecar.AssertNoViolations();
    }

    [Fact]
    public async Task SetAndAgentSlot_ForAnotherTenant_UseTheTenantsKeyAndETags_OverTheSidecar()
    {
        var id = NewId();
        HttpRequestMessage Request(HttpMethod method, string url, object? body)
        {
            var request = new HttpRequestMessage(method, url) { Content = body is null ? null : JsonContent.Create(body, options: ContractsJson.Options) };
            request.Headers.Add(Tenant.HeaderName, "acme");
            return request;
        }
        (await _client.SendAsync(Request(HttpMethod.Post, "v1/sessions", new CreateSessionRequest(id, "user-1")))).StatusCode.Should().Be(HttpStatusCode.Created);
        var read = await _client.SendAsync(Request(HttpMethod.Get, $"v1/sessions/{id}", null));
        var session = await ReadAsync<SessionValue>(read);
        var etag = read.Headers.ETag!.Tag;

        session.GlobalState.CurrentIntent = "book_ticket";
        var set = Request(HttpMethod.Put, $"v1/sessions/{id}", session);
        set.Headers.IfMatch.Add(new System.Net.Http.Headers.EntityTagHeaderValue(etag));
        var updated = await _client.SendAsync(set);
        (await ReadAsync<SessionValue>(updated)).GlobalState.CurrentIntent.Should().Be("book_ticket");
        var stale = Request(HttpMethod.Put, $"v1/sessions/{id}", session);
        stale.Headers.IfMatch.Add(new System.Net.Http.Headers.EntityTagHeaderValue(etag));
        (await _client.SendAsync(stale)).StatusCode.Should().Be(HttpStatusCode.Conflict, "the actor's 409 etag-mismatch comes back through the sidecar");

        var slot = Request(HttpMethod.Put, $"v1/sessions/{id}/agent-slots/triage_agent", new { triageLevel = "moderate" });
        slot.Headers.Add(Tenant.AgentHeaderName, "triage_agent");
        (await _client.SendAsync(slot)).StatusCode.Should().Be(HttpStatusCode.OK);

        var stored = Sidecar.StoredState($"short_term_memory:acme:session:{id}");
        stored.Should().NotBeNull("another tenant's session has its own key");
        stored!["globalState"]!["currentIntent"]!.GetValue<string>().Should().Be("book_ticket");
        stored["globalState"]!["agentSlots"]!["triage_agent"]!["triageLevel"]!.GetValue<string>().Should().Be("moderate");
        Sidecar.StoredState($"short_term_memory:session:{id}").Should().BeNull("the default tenant's key is untouched");
        Sidecar.ActorCalls.Should().Contain(c => c.Id == ConversationActorContract.ActorId("acme", id) && c.Method == "Set");
        SavesOf($"short_term_memory:acme:session:{id}").Should().NotBeEmpty().And.OnlyContain(item => item.Metadata["ttlInSeconds"] == "1800");
        Sidecar.GrpcRequests<PublishEventRequest>("PublishEvent").Should().Contain(r => r.Topic == Topics.SessionUpdated);
        Sidecar.AssertNoViolations();
    }

    [Fact]
    public async Task Session_ExpiredInTheSidecarsStore_IsRebuiltFromTheLog()
    {
        var id = NewId();
        (await PostAsync("v1/sessions", new CreateSessionRequest(id, "user-1"))).StatusCode.Should().Be(HttpStatusCode.Created);
        await TurnAsync(id, 1);
        await TurnAsync(id, 2);
        var key = $"short_term_memory:session:{id}";

        _sidecarClock.Advance(TimeSpan.FromSeconds(1801)); // the store's TTL (Redis would expire the key)
        Sidecar.StoredState(key).Should().BeNull("the key outlived its ttlInSeconds");

        var session = await ReadAsync<SessionValue>(await _client.GetAsync($"v1/sessions/{id}"));
        session.FlowContext.TurnCount.Should().Be(2, "the durable log holds the turns");
        session.Meta.UserId.Should().Be("user-1");
        Sidecar.StoredState(key).Should().NotBeNull("the rebuilt session is saved again, with a fresh TTL");
        (await TurnAsync(id, 3)).TurnCount.Should().Be(3);
        Sidecar.AssertNoViolations();
    }

    private List<StateItem> SavesOf(string key) =>
        Sidecar.GrpcRequests<SaveStateRequest>("SaveState")
            .SelectMany(r => r.States)
            .Where(item => item.Key == key)
            .ToList();
}
