using CloudMemory.Testing;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CloudMemory.BuildingBlocks.EventStream;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Erasure;
using CloudMemory.Contracts.Feedback;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Contracts.Traces;
using CloudMemory.Session.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.Session.Tests.Http;

/// <summary>Listing a user's sessions, deleting a conversation and erasing a user (issue 8, point 8), on each message log.</summary>
public abstract class ErasureBehaviour : IDisposable
{
    private readonly PostgresScratchDatabase? _database;
    private readonly CloudMemoryFactory _factory;
    private readonly HttpClient _client;
    private readonly string _tenant = "t-" + Guid.NewGuid().ToString("N")[..8];

    protected ErasureBehaviour(LogKind kind)
    {
        _database = ErasureDatabase.For(kind);
        _factory = new CloudMemoryFactory(kind, ErasureDatabase.Settings(_database));
        _client = _factory.CreateRecordingClient();
        _client.DefaultRequestHeaders.Add("X-Tenant-Id", _tenant);
    }

    public void Dispose()
    {
        _client.Dispose();
        _factory.Dispose();
        _database?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        GC.SuppressFinalize(this);
    }

    private async Task ConversationAsync(string id, string user, int turns = 1)
    {
        (await _client.PostJsonAsync("/v1/sessions", new CreateSessionRequest(id, user))).EnsureSuccessStatusCode();
        for (var i = 1; i <= turns; i++)
        {
            _factory.Time.Advance(TimeSpan.FromSeconds(1));
            (await _client.PostJsonAsync($"/v1/sessions/{id}/turns", new WriteTurnRequest(null, null, $"question {i} of {id}", $"answer {i}"))).EnsureSuccessStatusCode();
        }
    }

    private async Task<string> MemoryAsync(string content, string? user = null, string? context = null)
    {
        var body = await (await _client.PostAsJsonAsync("/v1/memories", new { content, userId = user, contextId = context }, ContractsJson.Options)).ReadAsync<JsonElement>();
        return body.GetProperty("id").GetString()!;
    }

    private async Task SharedContextAsync(string id, string conversationId)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/shared-contexts") { Content = JsonContent.Create(new { id, fromConversation = conversationId }) };
        request.Headers.Add("X-Agent-Id", "triage");
        using var response = await _client.SendAsync(request);
        response.StatusCode.Should().Be(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
    }

    private async Task<HttpStatusCode> SharedContextStatusAsync(string id)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/shared-contexts/{id}");
        request.Headers.Add("X-Agent-Id", "triage");
        using var response = await _client.SendAsync(request);
        return response.StatusCode;
    }

    private async Task<HttpStatusCode> MemoryStatusAsync(string id) => (await _client.GetAsync($"/v1/memories/{id}")).StatusCode;

    private async Task<SessionPage> ListAsync(string user, string query = "") =>
        await (await _client.GetAsync($"/v1/users/{user}/sessions{query}")).ReadAsync<SessionPage>();

    private async Task StepAsync(string traceId, string context) =>
        (await _client.PostJsonAsync("/v1/traces/steps", new IngestStepsRequest([new TraceStepInput { TraceId = traceId, StepIndex = 0, ContextId = context, AgentId = "triage" }])))
            .EnsureSuccessStatusCode();

    private async Task FeedbackAsync(string id, string conversation) =>
        (await _client.PostJsonAsync("/v1/feedback", new RecordFeedbackRequest(id, new FeedbackTarget("conversation", conversation), "triage", "user", "rating",
            JsonSerializer.SerializeToElement(4), ConversationId: conversation))).EnsureSuccessStatusCode();

    private static readonly TaskContext BookFlight = new(Intent: "book_flight", Tools: ["search_flights"]);

    private async Task ExperienceAsync(string id, bool success, string? conversation = null, string? user = null, string? traceId = null) =>
        (await _client.PostJsonAsync("/v1/experiences", new RecordExperienceRequest(id, "travel", BookFlight, new ExecutionResult(success, TraceId: traceId),
            ConversationId: conversation, UserId: user))).StatusCode.Should().Be(HttpStatusCode.Created);

    /// <summary>The book_flight pattern's totals (attempts, successes), or null when no experience of it is left.</summary>
    private async Task<(int Attempts, int Successes)?> FlightTotalsAsync()
    {
        var found = await (await _client.PostJsonAsync("/v1/experiences/search", new SearchExperiencesRequest(BookFlight))).ReadAsync<SimilarExperiences>();
        return found.Items.Count == 0 ? null : (found.Items.Single().Attempts, found.Items.Single().Successes);
    }

    [Fact]
    public async Task ListUserSessions_NewestActivityFirst_PagedWithACursor_OnlyThatUserInThisTenant()
    {
        await ConversationAsync("a", "u1");
        await ConversationAsync("b", "u1");
        await ConversationAsync("c", "u1");
        await ConversationAsync("x", "u2");
        _factory.Time.Advance(TimeSpan.FromSeconds(1));
        (await _client.PostJsonAsync("/v1/sessions/a/turns", new WriteTurnRequest(null, null, "again", "ok"))).EnsureSuccessStatusCode();
        using (var other = _factory.CreateClient())
        {
            (await other.PostJsonAsync("/v1/sessions", new CreateSessionRequest("other-tenant", "u1"), tenant: _tenant + "-b")).EnsureSuccessStatusCode();
        }

        var first = await ListAsync("u1", "?limit=2");
        first.Items.Select(s => s.ConversationId).Should().Equal("a", "c");
        first.Items[0].TurnCount.Should().Be(2);
        first.NextCursor.Should().NotBeNull();
        var second = await ListAsync("u1", $"?limit=2&continuationToken={first.NextCursor}");
        second.Items.Select(s => s.ConversationId).Should().Equal("b");
        second.NextCursor.Should().BeNull();
        (await ListAsync("nobody")).Items.Should().BeEmpty();

        (await (await _client.GetAsync("/v1/users/u1/sessions?limit=0")).ProblemAsync(400)).GetProperty("code").GetString().Should().Be("invalid-limit");
        (await (await _client.GetAsync("/v1/users/u1/sessions?cursor=garbage!")).ProblemAsync(400)).GetProperty("code").GetString().Should().Be("invalid-cursor");
    }

    [Fact]
    public async Task DeleteSession_RemovesLogSessionDerivedMemoriesAndStoredEvents_IsAudited_AndASecondDeleteIs404()
    {
        await ConversationAsync("gone", "u1", turns: 3);
        (await _client.PostJsonAsync("/v1/sessions/gone/checkpoints", new CheckpointRequest("a summary", 1))).EnsureSuccessStatusCode();
        await ConversationAsync("kept", "u1");
        var derived = await MemoryAsync("allergic to penicillin", "u1", "gone");
        var unrelated = await MemoryAsync("likes tea", "u1", "kept");
        await SharedContextAsync("sc-gone", "gone");
        await SharedContextAsync("sc-kept", "kept");
        await ExperienceAsync("exp-gone", success: true, conversation: "gone");
        await ExperienceAsync("exp-kept", success: false, conversation: "kept");
        (await FlightTotalsAsync()).Should().Be((2, 1));

        var replay = _factory.Services.GetRequiredService<EventReplayBuffer>();
        replay.After(_tenant, "").Events.Should().Contain(e => EventReplayBuffer.DataProperty(e, "conversationId") == "gone");

        (await _client.DeleteAsync("/v1/sessions/gone")).StatusCode.Should().Be(HttpStatusCode.NoContent);

        replay.After(_tenant, "").Events.Should().NotContain(e => EventReplayBuffer.DataProperty(e, "conversationId") == "gone", "a follower's replay must not bring it back");
        replay.After(_tenant, "").Events.Should().Contain(e => EventReplayBuffer.DataProperty(e, "conversationId") == "kept");

        (await (await _client.GetAsync("/v1/sessions/gone")).ProblemAsync(404)).GetProperty("code").GetString().Should().Be("session-not-found");
        (await (await _client.GetAsync("/v1/conversations/gone/messages?limit=100")).ProblemAsync(404)).GetProperty("code").GetString().Should().Be("conversation-not-found");
        (await MemoryStatusAsync(derived)).Should().Be(HttpStatusCode.NotFound);
        (await MemoryStatusAsync(unrelated)).Should().Be(HttpStatusCode.OK);
        (await ListAsync("u1")).Items.Select(s => s.ConversationId).Should().Equal("kept");
        (await SharedContextStatusAsync("sc-gone")).Should().Be(HttpStatusCode.NotFound, "a shared context created from the conversation holds its fields");
        (await SharedContextStatusAsync("sc-kept")).Should().Be(HttpStatusCode.OK);
        (await FlightTotalsAsync()).Should().Be((1, 0), "the experience recorded in the conversation is gone and its pattern's success rate recounted without it");
        (await (await _client.DeleteAsync("/v1/sessions/gone")).ProblemAsync(404)).GetProperty("code").GetString().Should().Be("session-not-found");

        var audit = await (await _client.GetAsync("/v1/agents/cloudmemory-erasure/actions")).ReadAsync<JsonElement>();
        var step = audit.GetProperty("actions").EnumerateArray().Single(a => a.GetProperty("name").GetString() == "delete-conversation");
        var trace = await (await _client.GetAsync($"/v1/traces/{step.GetProperty("traceId").GetString()}")).Content.ReadAsStringAsync();
        trace.Should().Contain("\"conversationId\":\"gone\"", "the audit names what was deleted").And.Contain("\"messages\":4", "and how much (3 turns + 1 checkpoint)")
            .And.Contain("\"experiences\":1");
    }

    [Fact]
    public async Task EraseUser_RemovesConversationsMemoriesTracesAndFeedbackOfThatUserOnly_WithAReport()
    {
        await ConversationAsync("u1-a", "u1", turns: 2);
        await ConversationAsync("u1-b", "u1");
        await ConversationAsync("u2-a", "u2");
        var byUser = await MemoryAsync("u1 is allergic to penicillin", user: "u1");
        var byConversation = await MemoryAsync("from the chat", context: "u1-a");
        var otherUser = await MemoryAsync("u2 likes tea", user: "u2", context: "u2-a");
        await StepAsync("tr-1", "u1-a");
        await StepAsync("tr-2", "u2-a");
        await FeedbackAsync("fb-1", "u1-b");
        await FeedbackAsync("fb-2", "u2-a");
        await SharedContextAsync("sc-u1", "u1-a");
        await SharedContextAsync("sc-u2", "u2-a");
        await ExperienceAsync("exp-user", success: true, user: "u1");
        await ExperienceAsync("exp-trace", success: true, traceId: "tr-1"); // its conversation (u1-a) is taken from the trace
        await ExperienceAsync("exp-u2", success: false, conversation: "u2-a");
        var report = await (await _client.DeleteAsync("/v1/users/u1")).ReadAsync<ErasureReport>();

        report.UserId.Should().Be("u1");
        report.Counts[ErasureCountKeys.Conversations].Should().Be(2);
        report.Counts[ErasureCountKeys.Messages].Should().Be(3);
        report.Counts[ErasureCountKeys.Memories].Should().BeGreaterThanOrEqualTo(2, "the user's memory, the conversation's memory (and indexed messages, if any)");
        report.Counts[ErasureCountKeys.Traces].Should().Be(1);
        report.Counts[ErasureCountKeys.Feedback].Should().Be(1);
        report.Counts[ErasureCountKeys.SharedContexts].Should().Be(1);
        report.Counts[ErasureCountKeys.Experiences].Should().Be(2, "the one recorded for the user and the one whose trace belongs to the user's conversation");
        report.Services["feedback"][ErasureCountKeys.Experiences].Should().Be(2);
        report.Counts[ErasureCountKeys.Events].Should().BeGreaterThan(0, "the replay buffer held the user's turn events");
        report.Services.Keys.Should().BeEquivalentTo(["session", "context", "trace", "feedback"]);

        (await ListAsync("u1")).Items.Should().BeEmpty();
        (await _client.GetAsync("/v1/sessions/u1-a")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await MemoryStatusAsync(byUser)).Should().Be(HttpStatusCode.NotFound);
        (await MemoryStatusAsync(byConversation)).Should().Be(HttpStatusCode.NotFound);
        (await MemoryStatusAsync(otherUser)).Should().Be(HttpStatusCode.OK);
        (await _client.GetAsync("/v1/traces/tr-1")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await _client.GetAsync("/v1/traces/tr-2")).StatusCode.Should().Be(HttpStatusCode.OK);
        var feedback = await (await _client.GetAsync("/v1/feedback")).ReadAsync<FeedbackPage>();
        feedback.Items.Select(f => f.Id).Should().Equal("fb-2");
        (await ListAsync("u2")).Items.Select(s => s.ConversationId).Should().Equal("u2-a");
        (await SharedContextStatusAsync("sc-u1")).Should().Be(HttpStatusCode.NotFound);
        (await SharedContextStatusAsync("sc-u2")).Should().Be(HttpStatusCode.OK);
        (await FlightTotalsAsync()).Should().Be((1, 0), "only u2's experience is left");

        var again = await (await _client.DeleteAsync("/v1/users/u1")).ReadAsync<ErasureReport>();
        again.Counts.Values.Should().AllSatisfy(v => v.Should().Be(0), "a repeated erasure finds nothing left");
        var audit = await (await _client.GetAsync("/v1/agents/cloudmemory-erasure/actions")).ReadAsync<JsonElement>();
        audit.GetRawText().Should().Contain("erase-user");
    }

    [Fact]
    public async Task DeleteSessionOrEraseUser_WithABadAgentId_Is400_AndDeletesNothing()
    {
        await ConversationAsync("kept", "u1");
        var memory = await MemoryAsync("fact", user: "u1", context: "kept");

        foreach (var path in new[] { "/v1/sessions/kept", "/v1/users/u1" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Delete, path);
            request.Headers.Add("X-Agent-Id", "../etc/passwd");
            using var response = await _client.SendAsync(request);
            (await response.ProblemAsync(400)).GetProperty("code").GetString().Should().Be("invalid-agentId");
        }

        (await _client.GetAsync("/v1/sessions/kept")).StatusCode.Should().Be(HttpStatusCode.OK, "a refused erasure deletes nothing");
        (await ListAsync("u1")).Items.Should().ContainSingle();
        (await MemoryStatusAsync(memory)).Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task EraseUser_InAnotherTenant_LeavesThisTenantsUserAlone()
    {
        await ConversationAsync("mine", "u1");
        var memory = await MemoryAsync("fact", user: "u1");

        var request = new HttpRequestMessage(HttpMethod.Delete, "/v1/users/u1");
        request.Headers.Add("X-Tenant-Id", _tenant + "-other");
        using var other = _factory.CreateClient();
        var report = await (await other.SendAsync(request)).ReadAsync<ErasureReport>();

        report.Counts.Values.Should().AllSatisfy(v => v.Should().Be(0));
        (await ListAsync("u1")).Items.Should().ContainSingle();
        (await MemoryStatusAsync(memory)).Should().Be(HttpStatusCode.OK);
    }
}

/// <summary>
/// An erasure that overtakes the background turn indexer: the turns still queued must not become
/// memories after the erasure (the indexer holds each batch for 1.5 s here, so the erasure runs first).
/// </summary>
public abstract class ErasureDuringIndexingBehaviour : IDisposable
{
    private readonly PostgresScratchDatabase? _database;
    private readonly CloudMemoryFactory _factory;
    private readonly string _tenant = "t-" + Guid.NewGuid().ToString("N")[..8];

    protected ErasureDuringIndexingBehaviour(LogKind kind)
    {
        _database = ErasureDatabase.For(kind);
        _factory = new(kind, new Dictionary<string, string?>(ErasureDatabase.Settings(_database))
        {
            ["CloudMemory:LongTermMemory:TurnIndexing:BatchDelayMilliseconds"] = "1500",
        });
    }

    public void Dispose()
    {
        _factory.Dispose();
        _database?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        GC.SuppressFinalize(this);
    }

    private Task<IReadOnlyList<CloudMemory.Context.Features.Memories.MemoryEntry>> IndexedAsync(string conversationId) =>
        _factory.Services.GetRequiredService<CloudMemory.Context.Features.Memories.ILongTermMemory>()
            .ListAsync(_tenant, new CloudMemory.Context.Features.Memories.MemoryListQuery(ContextId: conversationId));

    [Fact]
    public async Task EraseUser_WhileItsTurnsWaitToBeIndexed_NoneOfThemIsIndexedAfterwards_LaterTurnsAre()
    {
        using var client = _factory.CreateClient();
        client.DefaultRequestHeaders.Add("X-Tenant-Id", _tenant);
        (await client.PostJsonAsync("/v1/sessions", new CreateSessionRequest("queued", "u1"))).EnsureSuccessStatusCode();
        for (var i = 1; i <= 3; i++)
        {
            (await client.PostJsonAsync("/v1/sessions/queued/turns", new WriteTurnRequest(null, null, $"my passport number is P-{i}", "noted"))).EnsureSuccessStatusCode();
        }

        var report = await (await client.DeleteAsync("/v1/users/u1")).ReadAsync<ErasureReport>();
        report.Counts[ErasureCountKeys.Messages].Should().Be(3);
        await _factory.WhenQuietAsync();

        (await IndexedAsync("queued")).Should().BeEmpty("turns queued for indexing when the user was erased must not come back as memories");

        // The erasure forgets what was written until then, not the user for ever.
        _factory.Time.Advance(TimeSpan.FromSeconds(1));
        (await client.PostJsonAsync("/v1/sessions", new CreateSessionRequest("after", "u1"))).EnsureSuccessStatusCode();
        (await client.PostJsonAsync("/v1/sessions/after/turns", new WriteTurnRequest(null, null, "a new question", "a new answer"))).EnsureSuccessStatusCode();
        await _factory.WhenQuietAsync();
        (await IndexedAsync("after")).Should().NotBeEmpty("a turn written after the erasure is indexed as usual");
    }
}

public sealed class InMemoryErasureDuringIndexingTests() : ErasureDuringIndexingBehaviour(LogKind.InMemory);

public sealed class PostgresErasureDuringIndexingTests() : ErasureDuringIndexingBehaviour(LogKind.Postgres);

public sealed class InMemoryErasureTests() : ErasureBehaviour(LogKind.InMemory);

public sealed class PostgresErasureTests() : ErasureBehaviour(LogKind.Postgres);

/// <summary>With API keys on, erasing a user takes the tenant's admin key; the internal calls carry the caller's credential.</summary>
public sealed class ErasureWithApiKeysTests : IDisposable
{
    private const string AdminKey = "admin-key-for-erasure-tests-0123456789";
    private readonly CloudMemoryFactory _factory = new(LogKind.InMemory, new Dictionary<string, string?>
    {
        ["CloudMemory:Auth:Mode"] = "apikey",
        ["CloudMemory:Auth:AdminKeys:0:Tenant"] = "acme",
        ["CloudMemory:Auth:AdminKeys:0:Key"] = AdminKey,
    });

    public void Dispose() => _factory.Dispose();

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string url, string key, object? body = null)
    {
        using var client = _factory.CreateClient();
        var request = new HttpRequestMessage(method, url);
        request.Headers.Add("X-Api-Key", key);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body, body.GetType(), options: ContractsJson.Options);
        }
        return await client.SendAsync(request);
    }

    [Fact]
    public async Task EraseUser_WithAnAgentKey_Is403AndChangesNothing_WithTheAdminKeyErasesEverywhere()
    {
        var issued = await (await SendAsync(HttpMethod.Post, "/v1/auth/keys", AdminKey, new CloudMemory.Contracts.Auth.CreateApiKeyRequest("triage", "agent", false))).ReadAsync<JsonElement>();
        var agentKey = issued.GetProperty("key").GetString()!;
        (await SendAsync(HttpMethod.Post, "/v1/sessions", agentKey, new CreateSessionRequest("c1", "u1"))).EnsureSuccessStatusCode();
        (await SendAsync(HttpMethod.Post, "/v1/sessions/c1/turns", agentKey, new WriteTurnRequest(null, null, "q", "a"))).EnsureSuccessStatusCode();
        (await SendAsync(HttpMethod.Post, "/v1/memories", agentKey, new { content = "u1 fact", userId = "u1" })).EnsureSuccessStatusCode();

        var refused = await (await SendAsync(HttpMethod.Delete, "/v1/users/u1", agentKey)).ProblemAsync(403);
        refused.GetProperty("code").GetString().Should().Be("admin-required");
        (await (await SendAsync(HttpMethod.Get, "/v1/users/u1/sessions", agentKey)).ReadAsync<SessionPage>()).Items.Should().ContainSingle();

        var report = await (await SendAsync(HttpMethod.Delete, "/v1/users/u1", AdminKey)).ReadAsync<ErasureReport>();
        report.Counts[ErasureCountKeys.Conversations].Should().Be(1);
        report.Counts[ErasureCountKeys.Memories].Should().BeGreaterThanOrEqualTo(1);
        (await (await SendAsync(HttpMethod.Get, "/v1/users/u1/sessions", agentKey)).ReadAsync<SessionPage>()).Items.Should().BeEmpty();
    }

    [Fact]
    public async Task DeleteSession_IsOpenToAnyCallerOfTheTenant_AndUnauthenticatedIs401()
    {
        var issued = await (await SendAsync(HttpMethod.Post, "/v1/auth/keys", AdminKey, new CloudMemory.Contracts.Auth.CreateApiKeyRequest("triage", "agent", false))).ReadAsync<JsonElement>();
        var agentKey = issued.GetProperty("key").GetString()!;
        (await SendAsync(HttpMethod.Post, "/v1/sessions", agentKey, new CreateSessionRequest("c2", "u1"))).EnsureSuccessStatusCode();

        using var anonymous = _factory.CreateClient();
        (await anonymous.DeleteAsync("/v1/sessions/c2")).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        (await SendAsync(HttpMethod.Delete, "/v1/sessions/c2", agentKey)).StatusCode.Should().Be(HttpStatusCode.NoContent);
    }
}

/// <summary>
/// On PostgreSQL each erasure test gets a database of its own: a host started by any other test on
/// the shared database catches up every marked conversation there at its start, an erased one's
/// too, and can write its turns back after the erasure (a known limit between replicas, docs/memory.md).
/// </summary>
internal static class ErasureDatabase
{
    public static PostgresScratchDatabase? For(LogKind kind) =>
        kind == LogKind.Postgres ? PostgresScratchDatabase.CreateAsync("cm_erasure").GetAwaiter().GetResult() : null;

    public static Dictionary<string, string?> Settings(PostgresScratchDatabase? database) =>
        database is null ? [] : new() { ["ConnectionStrings:CloudMemory"] = database.ConnectionString };
}
