using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
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

/// <summary>Tool turns, turn-id retries, idempotent finalize and durable session state, on each message log.</summary>
public abstract class ShortTermMemoryV2Behaviour : IDisposable
{
    private readonly CloudMemoryFactory _factory;
    private readonly HttpClient _client;

    protected ShortTermMemoryV2Behaviour(LogKind kind)
    {
        _factory = new CloudMemoryFactory(kind);
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

    private async Task CreateAsync(string id) =>
        (await _client.PostJsonAsync("/v1/sessions", new CreateSessionRequest(id, "user-" + id))).StatusCode.Should().Be(HttpStatusCode.Created);

    private Task<HttpResponseMessage> PostRawAsync(string url, string json) =>
        _client.PostAsync(url, new StringContent(json, Encoding.UTF8, "application/json"));

    private async Task<MemoryContext> QueryAsync(string id, string query = "next?") =>
        await (await _client.PostJsonAsync("/v1/context/query", new MemoryQueryRequest(id, Query: query))).ReadAsync<MemoryContext>();

    private async Task<MessagePage> LogAsync(string id) =>
        await (await _client.GetAsync($"/v1/conversations/{id}/messages?limit=1000")).ReadAsync<MessagePage>();

    private const string ToolTurn = """
        {"messages":[
          {"role":"user","content":"How has my blood pressure been this week?"},
          {"role":"assistant","content":"","tool_calls":[{"id":"call_bp","type":"function","function":{"name":"get_blood_pressure","arguments":"{\"days\":7}"}}],
           "agentCode":"triage","id":"m-2","createdAt":"2026-11-28T08:00:00Z","metadata":{"latencyMs":120}},
          {"role":"tool","tool_call_id":"call_bp","name":"get_blood_pressure","content":"120/80, stable"},
          {"role":"assistant","content":"Your blood pressure was stable at 120/80.","agentCode":"triage"}
        ]}
        """;

    [Fact]
    public async Task WriteTurn_MessageArrayWithToolCalls_IsStoredCountedAndReturnedInTheChatFormat()
    {
        var id = NewId();
        await CreateAsync(id);
        (await PostRawAsync($"/v1/sessions/{id}/turns", ToolTurn)).StatusCode.Should().Be(HttpStatusCode.OK);

        var context = await QueryAsync(id, "and my pulse?");
        context.Messages!.Select(m => m.Role).Should().Equal("user", "assistant", "tool", "assistant");
        context.Messages![1].ToolCalls!.Single().Should().Be(new ToolCall("call_bp", new ToolFunction("get_blood_pressure", "{\"days\":7}")));
        context.Messages![2].ToolCallId.Should().Be("call_bp");
        context.FullHistory.Should().Contain("[call get_blood_pressure {\"days\":7}]").And.Contain("tool: 120/80, stable");
        context.EstimatedTokens.Should().Be(await RecountAsync(id, context.FullHistory, "and my pulse?"), "tool calls and results are counted");
        var raw = await (await _client.PostJsonAsync("/v1/context/query", new MemoryQueryRequest(id, Query: "q"))).Content.ReadAsStringAsync();
        var wire = JsonDocument.Parse(raw).RootElement.GetProperty("messages");
        wire[1].GetProperty("tool_calls")[0].GetProperty("function").GetProperty("name").GetString().Should().Be("get_blood_pressure");
        wire[2].GetProperty("tool_call_id").GetString().Should().Be("call_bp");
        wire[1].TryGetProperty("agentCode", out _).Should().BeFalse("metadata is stored, never sent to a model");

        var stored = (await LogAsync(id)).Messages.Single();
        stored.Messages!.Should().HaveCount(4);
        stored.Messages![1].AgentCode.Should().Be("triage");
        stored.Messages![1].Id.Should().Be("m-2");
        stored.Messages![1].CreatedAt.Should().Be(DateTimeOffset.Parse("2026-11-28T08:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        stored.Messages![1].Metadata!["latencyMs"].GetInt32().Should().Be(120);
        stored.Query.Should().Be("How has my blood pressure been this week?");
        stored.Answer.Should().Be("Your blood pressure was stable at 120/80.");
        var session = await (await _client.GetAsync($"/v1/sessions/{id}")).ReadAsync<SessionValue>();
        session.FlowContext.LastBotMessage.Should().Be("Your blood pressure was stable at 120/80.");

        // Checkpoints cover tool turns: the summary opens messages, the kept turn follows whole.
        await (await _client.PostJsonAsync($"/v1/sessions/{id}/checkpoints", new CheckpointRequest(null, 1))).ReadAsync<CheckpointResult>();
        var after = await QueryAsync(id);
        after.Messages!.Select(m => m.Role).Should().Equal("system", "user", "assistant", "tool", "assistant");
    }

    [Fact]
    public async Task WriteTurn_ToolResult_MayAnswerACallOfAnEarlierTurn_ButNotAnUnknownOne()
    {
        var id = NewId();
        await CreateAsync(id);
        (await PostRawAsync($"/v1/sessions/{id}/turns", """
            {"messages":[{"role":"user","content":"Book me with Dr. Li"},
              {"role":"assistant","content":"Checking the schedule.","tool_calls":[{"id":"call_book","type":"function","function":{"name":"book","arguments":"{}"}}]}]}
            """)).StatusCode.Should().Be(HttpStatusCode.OK);

        (await PostRawAsync($"/v1/sessions/{id}/turns", """
            {"messages":[{"role":"tool","tool_call_id":"call_book","content":"booked 10:00"},{"role":"assistant","content":"Booked for 10:00."}]}
            """)).StatusCode.Should().Be(HttpStatusCode.OK);

        var unknown = await PostRawAsync($"/v1/sessions/{id}/turns", """
            {"messages":[{"role":"tool","tool_call_id":"call_nobody_made","content":"?"}]}
            """);
        (await unknown.ProblemAsync(400)).GetProperty("code").GetString().Should().Be("unknown-tool-call");
        (await LogAsync(id)).Messages.Should().HaveCount(2);
    }

    [Theory]
    [InlineData("""{"messages":[{"role":"robot","content":"x"}]}""", "invalid-message-role")]
    [InlineData("""{"messages":[{"role":"tool","content":"x"}]}""", "missing-tool_call_id")]
    [InlineData("""{"messages":[{"role":"user","content":"x","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}]}""", "invalid-tool-calls")]
    [InlineData("""{"messages":[{"role":"assistant","content":"","tool_calls":[{"id":"","type":"function","function":{"name":"f","arguments":"{}"}}]}]}""", "invalid-tool-calls")]
    [InlineData("""{"messages":[{"role":"user","content":""}]}""", "missing-content")]
    [InlineData("""{"messages":[]}""", "invalid-messages")]
    [InlineData("""{"userQuery":"q","agentResponse":"a","messages":[{"role":"user","content":"x"}]}""", "conflicting-turn-shape")]
    public async Task WriteTurn_MalformedMessages_Are400AndChangeNothing(string body, string code)
    {
        var id = NewId();
        await CreateAsync(id);
        (await (await PostRawAsync($"/v1/sessions/{id}/turns", body)).ProblemAsync(400)).GetProperty("code").GetString().Should().Be(code);
        (await LogAsync(id)).Messages.Should().BeEmpty();
    }

    [Fact]
    public async Task Checkpoint_15TurnsKeeping12_SummaryCoversTheTurnsThatLeftTheWindow()
    {
        var id = NewId();
        await CreateAsync(id);
        for (var i = 1; i <= 15; i++)
        {
            await (await _client.PostJsonAsync($"/v1/sessions/{id}/turns", new WriteTurnRequest(null, null, $"q{i}", $"a{i}"))).ReadAsync<WriteTurnResult>();
        }
        var checkpoint = await (await _client.PostJsonAsync($"/v1/sessions/{id}/checkpoints", new CheckpointRequest(null, 12))).ReadAsync<CheckpointResult>();

        var context = await QueryAsync(id);
        foreach (var i in Enumerable.Range(1, 15))
        {
            context.History.Should().MatchRegex($@"\b[qa]{i}\b", $"turn {i} is in the summary or the window");
        }
        checkpoint.Summary.Should().MatchRegex(@"\b[qa]2\b").And.MatchRegex(@"\b[qa]3\b");
    }

    [Fact]
    public async Task WriteTurn_RetriedTurnId_ReturnsTheOriginalAnswer_AndDifferentContentIs409()
    {
        var id = NewId();
        await CreateAsync(id);
        var first = await (await _client.PostJsonAsync($"/v1/sessions/{id}/turns", new WriteTurnRequest(null, null, "q1", "a1", "turn-1"))).ReadAsync<WriteTurnResult>();
        await (await _client.PostJsonAsync($"/v1/sessions/{id}/turns", new WriteTurnRequest(null, null, "q2", "a2", "turn-2"))).ReadAsync<WriteTurnResult>();
        await (await _client.PostJsonAsync($"/v1/sessions/{id}/checkpoints", new CheckpointRequest("q1 and q2.", 1))).ReadAsync<CheckpointResult>();
        _factory.Time.Advance(TimeSpan.FromSeconds(5));

        var retry = await (await _client.PostJsonAsync($"/v1/sessions/{id}/turns", new WriteTurnRequest(null, null, "q1", "a1", "turn-1"))).ReadAsync<WriteTurnResult>();
        retry.Should().Be(first, "a retry answers as the first time");
        retry.TurnCount.Should().Be(1);
        retry.Mode.Should().Be(MemoryMode.FullHistory);

        var reused = await _client.PostJsonAsync($"/v1/sessions/{id}/turns", new WriteTurnRequest(null, null, "something else", "a1", "turn-1"));
        (await reused.ProblemAsync(409)).GetProperty("code").GetString().Should().Be("turn-id-reused");
        (await LogAsync(id)).Messages.Count(m => !m.IsCheckpoint).Should().Be(2);
    }

    [Fact]
    public async Task Finalize_IsIdempotent_AndWritesAfterItAre409()
    {
        var id = NewId();
        await CreateAsync(id);
        await (await _client.PostJsonAsync($"/v1/sessions/{id}/turns", new WriteTurnRequest(null, null, "q", "a"))).ReadAsync<WriteTurnResult>();
        var (session, etag) = await GetAsync(id);

        var first = await (await _client.PostJsonAsync($"/v1/sessions/{id}/finalize", new CheckpointRequest())).ReadAsync<CheckpointResult>();
        var second = await (await _client.PostJsonAsync($"/v1/sessions/{id}/finalize", new CheckpointRequest("another summary"))).ReadAsync<CheckpointResult>();

        second.Should().Be(first);
        (await LogAsync(id)).Messages.Count(m => m.IsCheckpoint).Should().Be(1);
        await _factory.WhenQuietAsync();
        _factory.EventsOfType(EventTypes.SessionFinalized).Count(e => e.Data.GetProperty("conversationId").GetString() == id).Should().Be(1);

        var (_, finalEtag) = await GetAsync(id);
        session.GlobalState.CurrentIntent = "late";
        (await (await PutAsync(id, session, finalEtag)).ProblemAsync(409)).GetProperty("code").GetString().Should().Be("session-finalized");
        var slot = new HttpRequestMessage(HttpMethod.Put, $"/v1/sessions/{id}/agent-slots/triage") { Content = JsonContent.Create(new { x = 1 }) };
        slot.Headers.Add("X-Agent-Id", "triage");
        (await (await _client.SendAsync(slot)).ProblemAsync(409)).GetProperty("code").GetString().Should().Be("session-finalized");
        (await (await _client.PostJsonAsync($"/v1/sessions/{id}/checkpoints", new CheckpointRequest())).ProblemAsync(409)).GetProperty("code").GetString().Should().Be("session-finalized");
        (await GetAsync(id)).Session.GlobalState.CurrentIntent.Should().BeEmpty();
        etag.Should().NotBe(finalEtag);
    }

    [Fact]
    public async Task Expiry_KeepsGlobalStateAgentSlotsPendingActionAndCreatedAt_AndTheVersionKeepsRising()
    {
        var id = NewId();
        await CreateAsync(id);
        var staleEtag = await WriteStateAsync(id);
        var live = await GetAsync(id);

        _factory.Time.Advance(TimeSpan.FromSeconds(1801));
        var rebuilt = await GetAsync(id);

        AssertSameState(rebuilt.Session, live.Session);
        long.Parse(rebuilt.ETag.Trim('"'), System.Globalization.CultureInfo.InvariantCulture)
            .Should().BeGreaterThan(long.Parse(live.ETag.Trim('"'), System.Globalization.CultureInfo.InvariantCulture));
        live.Session.GlobalState.CurrentIntent = "overwrite";
        (await (await PutAsync(id, live.Session, live.ETag)).ProblemAsync(409)).GetProperty("code").GetString().Should().Be("etag-mismatch", "an ETag read before the expiry is stale");
        (await (await PutAsync(id, live.Session, staleEtag)).ProblemAsync(409)).GetProperty("code").GetString().Should().Be("etag-mismatch");
    }

    internal static void AssertSameState(SessionValue rebuilt, SessionValue live)
    {
        rebuilt.Meta.CreatedAt.Should().Be(live.Meta.CreatedAt);
        rebuilt.GlobalState.CurrentIntent.Should().Be("book_ticket");
        rebuilt.GlobalState.Entities!.TargetDept.Should().Be("cardiology");
        rebuilt.GlobalState.Shared!.TargetDept.Should().Be("cardiology");
        rebuilt.GlobalState.PendingAction!.ToolName.Should().Be("book_ticket");
        rebuilt.GlobalState.PendingAction!.ToolParams["doctor"].GetString().Should().Be("Dr. Li");
        rebuilt.GlobalState.AgentSlots["triage"].GetProperty("level").GetString().Should().Be("moderate");
        rebuilt.UserSnapshot.Allergies.Should().Equal("penicillin");
        rebuilt.FlowContext.TurnCount.Should().Be(1);
    }

    internal static async Task<string> WriteStateAsync(HttpClient client, string id)
    {
        var get = await client.GetAsync($"/v1/sessions/{id}");
        var session = await get.ReadAsync<SessionValue>();
        var staleEtag = get.Headers.ETag!.Tag;
        session.GlobalState.CurrentIntent = "book_ticket";
        session.GlobalState.Entities = new SharedEntities { TargetDept = "cardiology" };
        session.GlobalState.PendingAction = new PendingAction { ToolName = "book_ticket", ToolParams = new() { ["doctor"] = JsonSerializer.SerializeToElement("Dr. Li") }, Reason = "confirm" };
        session.UserSnapshot.Allergies = ["penicillin"];
        var put = new HttpRequestMessage(HttpMethod.Put, $"/v1/sessions/{id}") { Content = JsonContent.Create(session, options: ContractsJson.Options) };
        put.Headers.IfMatch.Add(new EntityTagHeaderValue(staleEtag));
        (await client.SendAsync(put)).StatusCode.Should().Be(HttpStatusCode.OK);
        var slot = new HttpRequestMessage(HttpMethod.Put, $"/v1/sessions/{id}/agent-slots/triage") { Content = JsonContent.Create(new { level = "moderate" }) };
        slot.Headers.Add("X-Agent-Id", "triage");
        (await client.SendAsync(slot)).StatusCode.Should().Be(HttpStatusCode.OK);
        (await client.PostJsonAsync($"/v1/sessions/{id}/turns", new WriteTurnRequest(null, "triage", "q", "a"))).StatusCode.Should().Be(HttpStatusCode.OK);
        return staleEtag;
    }

    private Task<string> WriteStateAsync(string id) => WriteStateAsync(_client, id);

    private async Task<(SessionValue Session, string ETag)> GetAsync(string id)
    {
        var response = await _client.GetAsync($"/v1/sessions/{id}");
        return (await response.ReadAsync<SessionValue>(), response.Headers.ETag!.Tag);
    }

    private Task<HttpResponseMessage> PutAsync(string id, SessionValue session, string etag)
    {
        var request = new HttpRequestMessage(HttpMethod.Put, $"/v1/sessions/{id}") { Content = JsonContent.Create(session, options: ContractsJson.Options) };
        request.Headers.IfMatch.Add(new EntityTagHeaderValue(etag));
        return _client.SendAsync(request);
    }
}

public sealed class InMemoryShortTermMemoryV2Tests() : ShortTermMemoryV2Behaviour(LogKind.InMemory);

public sealed class PostgresShortTermMemoryV2Tests() : ShortTermMemoryV2Behaviour(LogKind.Postgres);

/// <summary>The embedded host restarted on the same PostgreSQL database: the session comes back whole.</summary>
public sealed class PostgresRestartTests
{
    [Fact]
    public async Task Restart_KeepsTheSessionState_AndAStaleIfMatchIsRefused()
    {
        var id = "conv-" + Guid.NewGuid().ToString("N")[..12];
        SessionValue before;
        string beforeEtag;
        using (var first = new CloudMemoryFactory(LogKind.Postgres))
        {
            var client = first.CreateRecordingClient();
            (await client.PostJsonAsync("/v1/sessions", new CreateSessionRequest(id, "user-" + id))).EnsureSuccessStatusCode();
            await ShortTermMemoryV2Behaviour.WriteStateAsync(client, id);
            var get = await client.GetAsync($"/v1/sessions/{id}");
            before = await get.ReadAsync<SessionValue>();
            beforeEtag = get.Headers.ETag!.Tag;
        }

        using var second = new CloudMemoryFactory(LogKind.Postgres);
        var restarted = second.CreateRecordingClient();
        var after = await (await restarted.GetAsync($"/v1/sessions/{id}")).ReadAsync<SessionValue>();

        ShortTermMemoryV2Behaviour.AssertSameState(after, before);
        after.Meta.Version.Should().BeGreaterThan(before.Meta.Version);
        before.GlobalState.CurrentIntent = "lost update";
        var put = new HttpRequestMessage(HttpMethod.Put, $"/v1/sessions/{id}") { Content = JsonContent.Create(before, options: ContractsJson.Options) };
        put.Headers.IfMatch.Add(new EntityTagHeaderValue(beforeEtag));
        (await (await restarted.SendAsync(put)).ProblemAsync(409)).GetProperty("code").GetString().Should().Be("etag-mismatch");
    }
}
