using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Events;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Conversations.Log;
using CloudMemory.Conversations.Text;
using CloudMemory.Session.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.Session.Tests.Http;

/// <summary>Seed 002 end to end over HTTP, against the embedded host on each message log.</summary>
public abstract class ShortTermMemoryBehaviour : IDisposable
{
    // A small window so that a handful of turns crosses the 0.75 threshold.
    private static readonly Dictionary<string, string?> SmallWindow = new()
    {
        ["CloudMemory:Memory:ModelContextWindow"] = "1000",
        ["CloudMemory:Memory:RecentTurns"] = "2",
    };

    private readonly CloudMemoryFactory _factory;
    private readonly HttpClient _client;

    protected ShortTermMemoryBehaviour(LogKind kind)
    {
        _factory = new CloudMemoryFactory(kind, SmallWindow);
        _client = _factory.CreateRecordingClient();
    }

    public void Dispose()
    {
        _client.Dispose();
        _factory.Dispose();
        GC.SuppressFinalize(this);
    }

    // What the running counts must equal: every returned message counted anew with the host's
    // tokenizer, joined by the one-unit separator, plus the query.
    private async Task<int> RecountAsync(string id, string fullHistory, string query)
    {
        var tokens = _factory.Services.GetRequiredService<ITokenCounter>();
        var segment = await _factory.Services.GetRequiredService<IConversationLog>().ReadSinceCheckpointAsync(BuildingBlocks.Hosting.Tenant.Default, id);
        ConversationText.RenderHistory(segment.Messages).Should().Be(fullHistory);
        return TokenEstimator.TokensFromUnits(tokens.JoinedUnits(segment.Messages.Select(ConversationText.Render).Append(query)));
    }

    private static string NewId() => "conv-" + Guid.NewGuid().ToString("N")[..12];

    private async Task<SessionValue> CreateAsync(string id, string? tenant = null)
    {
        var response = await _client.PostJsonAsync("/v1/sessions", new CreateSessionRequest(id, "user-" + id), tenant);
        response.StatusCode.Should().Be(HttpStatusCode.Created);
        return await response.ReadAsync<SessionValue>();
    }

    private async Task<WriteTurnResult> TurnAsync(string id, int i, string? turnId = null) =>
        await (await _client.PostJsonAsync($"/v1/sessions/{id}/turns",
            new WriteTurnRequest(null, "triage", $"Turn {i}: I have had a headache for {i} days and a mild fever.", $"Answer {i}: please rest and drink water; see a doctor if it persists.", turnId)))
            .ReadAsync<WriteTurnResult>();

    private async Task<MemoryContext> QueryAsync(string id, string query = "what next?") =>
        await (await _client.PostJsonAsync("/v1/context/query", new MemoryQueryRequest(id, Query: query))).ReadAsync<MemoryContext>();

    private async Task<(SessionValue Session, string ETag)> GetAsync(string id)
    {
        var response = await _client.GetAsync($"/v1/sessions/{id}");
        var session = await response.ReadAsync<SessionValue>();
        return (session, response.Headers.ETag!.Tag);
    }

    [Fact]
    public async Task Create_IsIdempotent_201ThenExisting200()
    {
        var id = NewId();
        await CreateAsync(id);
        var again = await _client.PostJsonAsync("/v1/sessions", new CreateSessionRequest(id, "user-" + id));
        again.StatusCode.Should().Be(HttpStatusCode.OK);
        (await again.ReadAsync<SessionValue>()).Meta.ConversationId.Should().Be(id);
    }

    [Fact]
    public async Task Lifecycle_FullHistory_Threshold_Checkpoint_SummaryN_CumulativeCheckpoint_Finalize()
    {
        var id = NewId();
        await CreateAsync(id);

        var first = await TurnAsync(id, 1);
        first.Mode.Should().Be(MemoryMode.FullHistory);
        first.TurnCount.Should().Be(1);
        var context = await QueryAsync(id);
        context.Mode.Should().Be(MemoryMode.FullHistory);
        context.History.Should().Be(context.FullHistory).And.Contain("Turn 1");
        context.ShouldCheckpointSummary.Should().BeFalse();

        // Turns until the threshold is crossed; the background checkpoint then switches the mode.
        var turn = 1;
        var ratioBeforeCrossing = 0.0;
        while (_factory.EventsOfType(EventTypes.CheckpointCreated).Count == 0 && turn < 100)
        {
            ratioBeforeCrossing = (await QueryAsync(id, "")).TokenRatio;
            await TurnAsync(id, ++turn);
            await _factory.WhenWorkflowsIdleAsync();
        }
        ratioBeforeCrossing.Should().BeLessThan(0.75, "the checkpoint came when a turn crossed the threshold, not before");
        var afterFirst = await QueryAsync(id);
        afterFirst.Mode.Should().Be(MemoryMode.SummaryN);
        var firstSummary = afterFirst.Session.MessageContext.Summary;
        firstSummary.Should().NotBeEmpty();
        afterFirst.History.Should().StartWith("[summary] " + firstSummary);
        afterFirst.History.Should().Contain($"Turn {turn}:", "the window keeps the most recent turns");
        afterFirst.History.Should().NotContain("user: Turn 1:", "turn 1 left the window; only the summary speaks of it");
        afterFirst.FullHistory.Should().StartWith("[summary]");
        _factory.EventsOfType(EventTypes.CheckpointCreated).Should().ContainSingle();

        // More turns: the window slides, and crossing again makes a second, cumulative checkpoint.
        var before = turn;
        while (_factory.EventsOfType(EventTypes.CheckpointCreated).Count < 2 && turn < before + 100)
        {
            await TurnAsync(id, ++turn);
            await _factory.WhenWorkflowsIdleAsync();
        }
        _factory.EventsOfType(EventTypes.CheckpointCreated).Should().HaveCount(2);
        var afterSecond = await QueryAsync(id);
        afterSecond.Session.MessageContext.CheckpointCount.Should().Be(2);
        afterSecond.Session.MessageContext.Summary.Should().Contain(firstSummary.Split('.')[0], "summaries are cumulative");

        var final = await (await _client.PostJsonAsync($"/v1/sessions/{id}/finalize", new CheckpointRequest("Headache with fever for days; advised rest.", 2)))
            .ReadAsync<CheckpointResult>();
        final.Status.Should().Be(SessionStatus.Finalized);
        final.CheckpointCount.Should().Be(3);
        var refused = await (await _client.PostJsonAsync($"/v1/sessions/{id}/turns", new WriteTurnRequest(null, null, "more", "no"))).ProblemAsync(409);
        refused.GetProperty("code").GetString().Should().Be("session-finalized");
        _factory.EventsOfType(EventTypes.SessionFinalized).Should().ContainSingle();
        _factory.EventsOfType(EventTypes.TurnWritten).Should().HaveCount(turn);

        var log = await (await _client.GetAsync($"/v1/conversations/{id}/messages?limit=1000")).ReadAsync<MessagePage>();
        log.Messages.Count(m => m.IsCheckpoint).Should().Be(3);
        log.Messages.Where(m => m.IsCheckpoint).Should().OnlyContain(m => m.Query == LogMessage.CheckpointQuery);
        log.Messages.Count(m => !m.IsCheckpoint).Should().Be(turn);
    }

    [Fact]
    public async Task Query_Messages_AreTheChatFormat_SummaryAsSystemMessageInSummaryN()
    {
        var id = NewId();
        await CreateAsync(id);
        await TurnAsync(id, 1);
        await TurnAsync(id, 2);

        var full = await QueryAsync(id);
        full.Messages!.Select(m => m.Role).Should().Equal("user", "assistant", "user", "assistant");
        full.Messages![0].Content.Should().StartWith("Turn 1:");
        full.Messages![3].Content.Should().StartWith("Answer 2:");

        await (await _client.PostJsonAsync($"/v1/sessions/{id}/checkpoints", new CheckpointRequest("Headache and mild fever for two days.", 1))).ReadAsync<CheckpointResult>();
        await TurnAsync(id, 3);
        var summaryN = await QueryAsync(id);
        summaryN.Mode.Should().Be(MemoryMode.SummaryN);
        summaryN.Messages!.Select(m => m.Role).Should().Equal("system", "user", "assistant");
        summaryN.Messages![0].Content.Should().Contain("Headache and mild fever for two days.");
        summaryN.Messages![1].Content.Should().StartWith("Turn 3:");
        summaryN.History.Should().StartWith("[summary] Headache and mild fever", "history stays for seed-002 clients");

        // The wire shape is OpenAI's: snake_case tool fields, nothing absent written.
        var raw = await (await _client.PostJsonAsync("/v1/context/query", new MemoryQueryRequest(id, Query: "q"))).Content.ReadAsStringAsync();
        var first = JsonDocument.Parse(raw).RootElement.GetProperty("messages")[0];
        first.EnumerateObject().Select(p => p.Name).Should().BeEquivalentTo("role", "content");

        var text = await (await _client.PostJsonAsync("/v1/context/query", new MemoryQueryRequest(id, Query: "q", Format: "text"))).ReadAsync<MemoryContext>();
        text.Messages.Should().BeNull();
        text.History.Should().Be(summaryN.History);
        var bad = await _client.PostJsonAsync("/v1/context/query", new MemoryQueryRequest(id, Query: "q", Format: "xml"));
        (await bad.ProblemAsync(400)).GetProperty("code").GetString().Should().Be("invalid-format");
    }

    [Fact]
    public async Task Query_EstimatedTokens_EqualARecountOfFullHistoryPlusQuery()
    {
        var id = NewId();
        await CreateAsync(id);
        await TurnAsync(id, 1);
        await (await _client.PostJsonAsync($"/v1/sessions/{id}/turns", new WriteTurnRequest(null, null, "我头痛三天了，还有点发烧", "建议多休息，多喝水"))).ReadAsync<WriteTurnResult>();
        await _client.PostJsonAsync($"/v1/sessions/{id}/checkpoints", new CheckpointRequest());
        await TurnAsync(id, 3);

        var context = await QueryAsync(id, "还需要做什么检查？");

        context.EstimatedTokens.Should().Be(await RecountAsync(id, context.FullHistory, "还需要做什么检查？"));
        context.TokenRatio.Should().BeApproximately(context.EstimatedTokens / 1000.0, 1e-9);
    }

    [Fact]
    public async Task Query_PerRequestThresholdAndWindow_DecideShouldCheckpoint()
    {
        var id = NewId();
        await CreateAsync(id);
        await TurnAsync(id, 1);

        var tight = await (await _client.PostJsonAsync("/v1/context/query", new MemoryQueryRequest(id, Query: "q", TokenThresholdRatio: 0.5, ModelContextWindow: 50))).ReadAsync<MemoryContext>();
        var loose = await (await _client.PostJsonAsync("/v1/context/query", new MemoryQueryRequest(id, Query: "q", TokenThresholdRatio: 1, ModelContextWindow: 100000))).ReadAsync<MemoryContext>();

        tight.ShouldCheckpointSummary.Should().BeTrue();
        loose.ShouldCheckpointSummary.Should().BeFalse();
        tight.ModelContextWindow.Should().Be(50);
        loose.ModelContextWindow.Should().Be(100000);
    }

    [Fact]
    public async Task ConcurrentWriters_64OnOneConversation_LoseNoTurn()
    {
        var id = NewId();
        await CreateAsync(id);
        var writes = Enumerable.Range(1, 64).Select(i => _client.PostJsonAsync($"/v1/sessions/{id}/turns",
            new WriteTurnRequest(null, $"agent-{i % 4}", $"q{i}", $"a{i}")));
        var responses = await Task.WhenAll(writes);

        responses.Should().OnlyContain(r => r.StatusCode == HttpStatusCode.OK);
        var counts = new List<int>();
        foreach (var r in responses)
        {
            counts.Add((await r.ReadAsync<WriteTurnResult>()).TurnCount);
        }
        counts.Should().BeEquivalentTo(Enumerable.Range(1, 64), "every write saw its own turn number exactly once");
        await _factory.WhenWorkflowsIdleAsync();
        (await GetAsync(id)).Session.FlowContext.TurnCount.Should().Be(64);
        var log = await (await _client.GetAsync($"/v1/conversations/{id}/messages?limit=1000")).ReadAsync<MessagePage>();
        log.Messages.Where(m => !m.IsCheckpoint).Select(m => m.Query).Should().BeEquivalentTo(Enumerable.Range(1, 64).Select(i => $"q{i}"));
        log.Messages.Select(m => m.Sequence).Should().OnlyHaveUniqueItems();
    }

    [Fact]
    public async Task WriteTurn_RetriedWithSameTurnId_IsRecordedOnce()
    {
        var id = NewId();
        await CreateAsync(id);
        var first = await TurnAsync(id, 1, "turn-1");
        var retry = await TurnAsync(id, 1, "turn-1");

        retry.TurnCount.Should().Be(first.TurnCount).And.Be(1);
        var log = await (await _client.GetAsync($"/v1/conversations/{id}/messages")).ReadAsync<MessagePage>();
        log.Messages.Should().ContainSingle();
    }

    [Fact]
    public async Task Expiry_RebuildsModeSummaryWindowCheckpointAndTurnCount_AndKeepsAllergies()
    {
        var id = NewId();
        await CreateAsync(id);
        var (session, etag) = await GetAsync(id);
        session.UserSnapshot.Allergies = ["penicillin"];
        await PutAsync(id, session, etag);
        for (var i = 1; i <= 3; i++)
        {
            await TurnAsync(id, i);
        }
        await (await _client.PostJsonAsync($"/v1/sessions/{id}/checkpoints", new CheckpointRequest("Headache and fever for 3 days.", 2))).ReadAsync<CheckpointResult>();
        await TurnAsync(id, 4);
        var live = (await GetAsync(id)).Session;

        _factory.Time.Advance(TimeSpan.FromSeconds(1801));
        var rebuilt = (await GetAsync(id)).Session;

        rebuilt.MessageContext.Mode.Should().Be(MemoryMode.SummaryN);
        rebuilt.MessageContext.Summary.Should().Be(live.MessageContext.Summary);
        rebuilt.MessageContext.CheckpointMessageId.Should().Be(live.MessageContext.CheckpointMessageId);
        rebuilt.MessageContext.WindowMessages.Should().Equal(live.MessageContext.WindowMessages);
        rebuilt.FlowContext.TurnCount.Should().Be(4);
        rebuilt.FlowContext.LastBotMessage.Should().Be(live.FlowContext.LastBotMessage);
        rebuilt.UserSnapshot.Allergies.Should().Equal("penicillin");
        (await QueryAsync(id)).History.Should().Be(ConversationText.ComposeSummaryAndRecent(live.MessageContext.Summary, live.MessageContext.WindowMessages));
    }

    [Fact]
    public async Task Set_WithStaleETag_Is409AndChangesNothing()
    {
        var id = NewId();
        await CreateAsync(id);
        var (session, etag) = await GetAsync(id);
        session.GlobalState.CurrentIntent = "book_ticket";
        (await PutAsync(id, session, etag)).StatusCode.Should().Be(HttpStatusCode.OK);

        session.GlobalState.CurrentIntent = "consult";
        var conflict = await PutAsync(id, session, etag);

        (await conflict.ProblemAsync(409)).GetProperty("code").GetString().Should().Be("etag-mismatch");
        (await GetAsync(id)).Session.GlobalState.CurrentIntent.Should().Be("book_ticket");
        (await PutAsync(id, session, null)).StatusCode.Should().Be((HttpStatusCode)428);
    }

    [Fact]
    public async Task Set_SharedAndEntities_StayInSync_AndNullNeverClearsThem()
    {
        var id = NewId();
        await CreateAsync(id);
        var (session, etag) = await GetAsync(id);
        session.GlobalState.Entities = new SharedEntities { SymptomSummary = "头痛、发热", IntentTag = "consult" };
        var afterEntities = await (await PutAsync(id, session, etag)).ReadAsync<SessionValue>();
        afterEntities.GlobalState.Shared!.SymptomSummary.Should().Be("头痛、发热", "old clients reading Shared see the new value");

        var (current, etag2) = await GetAsync(id);
        current.GlobalState.Shared = null;
        current.GlobalState.Entities = null;
        current.GlobalState.CurrentIntent = "triage";
        var afterNull = await (await PutAsync(id, current, etag2)).ReadAsync<SessionValue>();

        afterNull.GlobalState.Shared!.IntentTag.Should().Be("consult");
        afterNull.GlobalState.Entities!.IntentTag.Should().Be("consult");
        afterNull.GlobalState.CurrentIntent.Should().Be("triage");
    }

    [Fact]
    public async Task Set_NeverDropsAllergies_AndSummariesKeepThem()
    {
        var id = NewId();
        await CreateAsync(id);
        var (session, etag) = await GetAsync(id);
        session.UserSnapshot.Allergies = ["penicillin"];
        session.UserSnapshot.ChronicDiseases = ["hypertension"];
        (await PutAsync(id, session, etag)).StatusCode.Should().Be(HttpStatusCode.OK);

        var (current, etag2) = await GetAsync(id);
        current.UserSnapshot.Allergies = ["aspirin"]; // an agent that did not know about penicillin
        var merged = await (await PutAsync(id, current, etag2)).ReadAsync<SessionValue>();
        merged.UserSnapshot.Allergies.Should().Equal("penicillin", "aspirin");

        await TurnAsync(id, 1);
        var checkpoint = await (await _client.PostJsonAsync($"/v1/sessions/{id}/checkpoints", new CheckpointRequest())).ReadAsync<CheckpointResult>();
        checkpoint.Summary.Should().Contain("penicillin").And.Contain("aspirin").And.Contain("hypertension");
        var withCallerSummary = await (await _client.PostJsonAsync($"/v1/sessions/{id}/checkpoints", new CheckpointRequest("Patient has a headache."))).ReadAsync<CheckpointResult>();
        withCallerSummary.Summary.Should().StartWith("Patient has a headache.").And.Contain("penicillin");
    }

    [Fact]
    public async Task AgentSlots_OnlyTheOwningAgentMayWrite()
    {
        var id = NewId();
        await CreateAsync(id);
        var slot = JsonSerializer.SerializeToElement(new { triageLevel = "moderate" });

        var forbidden = new HttpRequestMessage(HttpMethod.Put, $"/v1/sessions/{id}/agent-slots/triage_agent") { Content = JsonContent.Create(slot) };
        forbidden.Headers.Add("X-Agent-Id", "drug_agent");
        (await (await _client.SendAsync(forbidden)).ProblemAsync(403)).GetProperty("code").GetString().Should().Be("agent-slot-forbidden");
        var anonymous = new HttpRequestMessage(HttpMethod.Put, $"/v1/sessions/{id}/agent-slots/triage_agent") { Content = JsonContent.Create(slot) };
        await (await _client.SendAsync(anonymous)).ProblemAsync(403);

        var allowed = new HttpRequestMessage(HttpMethod.Put, $"/v1/sessions/{id}/agent-slots/triage_agent") { Content = JsonContent.Create(slot) };
        allowed.Headers.Add("X-Agent-Id", "triage_agent");
        var session = await (await _client.SendAsync(allowed)).ReadAsync<SessionValue>();
        session.GlobalState.AgentSlots["triage_agent"].GetProperty("triageLevel").GetString().Should().Be("moderate");

        // Through Set, another agent's edit of that slot is ignored.
        var (current, etag) = await GetAsync(id);
        current.GlobalState.AgentSlots["triage_agent"] = JsonSerializer.SerializeToElement(new { triageLevel = "hacked" });
        var put = new HttpRequestMessage(HttpMethod.Put, $"/v1/sessions/{id}") { Content = JsonContent.Create(current, options: ContractsJson.Options) };
        put.Headers.IfMatch.Add(new EntityTagHeaderValue(etag));
        put.Headers.Add("X-Agent-Id", "drug_agent");
        var after = await (await _client.SendAsync(put)).ReadAsync<SessionValue>();
        after.GlobalState.AgentSlots["triage_agent"].GetProperty("triageLevel").GetString().Should().Be("moderate");
        _factory.EventsOfType(EventTypes.SessionUpdated).Should().NotBeEmpty();
    }

    [Fact]
    public async Task Tenants_AreIsolated()
    {
        var id = NewId();
        await CreateAsync(id, tenant: "hospital-a");
        var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/sessions/{id}");
        request.Headers.Add("X-Tenant-Id", "hospital-b");
        await (await _client.SendAsync(request)).ProblemAsync(404);
        await (await _client.GetAsync($"/v1/sessions/{id}")).ProblemAsync(404);
        await (await _client.PostJsonAsync("/v1/context/query", new MemoryQueryRequest(id, Query: "x"), "hospital-b")).ProblemAsync(404);
    }

    [Theory]
    [InlineData("{\"conversationId\":\"c\",\"query\":\"q\",\"tokenThresholdRatio\":0}", "invalid-tokenThresholdRatio")]
    [InlineData("{\"conversationId\":\"c\",\"query\":\"q\",\"tokenThresholdRatio\":1.5}", "invalid-tokenThresholdRatio")]
    [InlineData("{\"conversationId\":\"c\",\"query\":\"q\",\"tokenThresholdRatio\":-0.1}", "invalid-tokenThresholdRatio")]
    [InlineData("{\"conversationId\":\"c\",\"query\":\"q\",\"recentTurns\":0}", "invalid-recentTurns")]
    [InlineData("{\"conversationId\":\"c\",\"query\":\"q\",\"modelContextWindow\":0}", "invalid-modelContextWindow")]
    [InlineData("{\"query\":\"q\"}", "missing-conversationId")]
    [InlineData("{\"conversationId\":\"a/b\",\"query\":\"q\"}", "invalid-conversationId")]
    [InlineData("{\"conversationId\":\"a\\u0001b\",\"query\":\"q\"}", "invalid-conversationId")]
    [InlineData("{\"conversationId\":", "malformed-json")]
    [InlineData("{\"conversationId\":\"c\",\"tokenThresholdRatio\":\"high\"}", "malformed-json")]
    public async Task Query_BadInput_Is400WithStableCode(string body, string code)
    {
        var response = await _client.PostAsync("/v1/context/query", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        (await response.ProblemAsync(400)).GetProperty("code").GetString().Should().Be(code);
    }

    [Fact]
    public async Task WriteTurn_BadInput_ChangesNothing()
    {
        var id = NewId();
        await CreateAsync(id);
        await TurnAsync(id, 1);

        await (await _client.PostAsync($"/v1/sessions/{id}/turns", new StringContent("{\"userQuery\":", System.Text.Encoding.UTF8, "application/json"))).ProblemAsync(400);
        await (await _client.PostJsonAsync($"/v1/sessions/{id}/turns", new WriteTurnRequest(null, null, "", "a"))).ProblemAsync(400);
        await (await _client.PostJsonAsync($"/v1/sessions/{id}/turns", new WriteTurnRequest(null, null, "q", null))).ProblemAsync(400);
        await (await _client.PostJsonAsync($"/v1/sessions/{id}/turns", new WriteTurnRequest("bad user", null, "q", "a"))).ProblemAsync(400);
        var tooLarge = await _client.PostJsonAsync($"/v1/sessions/{id}/turns", new WriteTurnRequest(null, null, new string('x', 300 * 1024), "a"));
        (await tooLarge.ProblemAsync(413)).GetProperty("code").GetString().Should().Be("turn-too-large");
        await (await _client.PostJsonAsync($"/v1/sessions/unknown-{id}/turns", new WriteTurnRequest(null, null, "q", "a"))).ProblemAsync(404);
        await (await _client.PostJsonAsync($"/v1/sessions/{id}/checkpoints", new CheckpointRequest(null, 0))).ProblemAsync(400);

        (await GetAsync(id)).Session.FlowContext.TurnCount.Should().Be(1);
        (await (await _client.GetAsync($"/v1/conversations/{id}/messages")).ReadAsync<MessagePage>()).Messages.Should().ContainSingle();
    }

    [Fact]
    public async Task Events_AreCloudEventsWithVersionedTypes()
    {
        var id = NewId();
        await CreateAsync(id);
        await TurnAsync(id, 1);

        var turnWritten = _factory.EventsOfType(EventTypes.TurnWritten).Single(e => e.Data.GetProperty("conversationId").GetString() == id);
        turnWritten.SpecVersion.Should().Be("1.0");
        turnWritten.Topic.Should().Be(Topics.TurnWritten);
        turnWritten.Type.Should().Be("cloudmemory.turn.written.v1");
        turnWritten.TenantId.Should().Be("default");
        turnWritten.Data.GetProperty("turnCount").GetInt32().Should().Be(1);
    }

    [Fact]
    public async Task Health_Readiness_AndOpenApi_Answer()
    {
        (await _client.GetAsync("/healthz")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await _client.GetAsync("/readyz")).StatusCode.Should().Be(HttpStatusCode.OK);
        var openApi = await _client.GetStringAsync("/openapi/v1.json");
        openApi.Should().Contain("/v1/sessions/{conversationId}/turns").And.Contain("/v1/context/query");
    }

    private Task<HttpResponseMessage> PutAsync(string id, SessionValue session, string? etag)
    {
        var request = new HttpRequestMessage(HttpMethod.Put, $"/v1/sessions/{id}") { Content = JsonContent.Create(session, options: ContractsJson.Options) };
        if (etag is not null)
        {
            request.Headers.IfMatch.Add(new EntityTagHeaderValue(etag));
        }
        return _client.SendAsync(request);
    }
}

public sealed class InMemoryShortTermMemoryTests() : ShortTermMemoryBehaviour(LogKind.InMemory);

public sealed class PostgresShortTermMemoryTests() : ShortTermMemoryBehaviour(LogKind.Postgres);
