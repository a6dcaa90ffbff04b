using System.Net;
using System.Net.Http.Json;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Session.Features.SharedContexts;
using CloudMemory.Session.Tests.Infrastructure;

namespace CloudMemory.Session.Tests.Http;

/// <summary>The tenant-wide listings the dashboard reads: <c>GET /v1/sessions</c> and <c>GET /v1/shared-contexts</c>, on each message log.</summary>
public abstract class ListingBehaviour : IDisposable
{
    private readonly CloudMemoryFactory _factory;
    private readonly HttpClient _client;
    private readonly string _tenant = "t-" + Guid.NewGuid().ToString("N")[..8];
    private readonly string _otherTenant = "o-" + Guid.NewGuid().ToString("N")[..8];

    protected ListingBehaviour(LogKind kind)
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

    private async Task ConversationAsync(string id, string user, int turns = 1, string? tenant = null)
    {
        (await _client.PostJsonAsync("/v1/sessions", new CreateSessionRequest(id, user), tenant ?? _tenant)).EnsureSuccessStatusCode();
        for (var i = 1; i <= turns; i++)
        {
            _factory.Time.Advance(TimeSpan.FromSeconds(1));
            (await _client.PostJsonAsync($"/v1/sessions/{id}/turns", new WriteTurnRequest(null, "triage", $"question {i} of {id}", $"answer {i}"), tenant ?? _tenant))
                .EnsureSuccessStatusCode();
        }
    }

    private Task<HttpResponseMessage> GetAsync(string url, string? tenant = null, string? agent = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Add("X-Tenant-Id", tenant ?? _tenant);
        if (agent is not null)
        {
            request.Headers.Add("X-Agent-Id", agent);
        }
        return _client.SendAsync(request);
    }

    private async Task<string[]> ConversationIdsAsync(string query, string? tenant = null) =>
        (await (await GetAsync("/v1/sessions" + query, tenant)).ReadAsync<ConversationListPage>()).Items.Select(i => i.ConversationId).ToArray();

    private async Task SharedContextAsync(string id, string agent, string[]? members = null, string? fromConversation = null, string? tenant = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/shared-contexts")
        {
            Content = JsonContent.Create(new
            {
                id,
                fromConversation,
                members = (members ?? []).Select(m => new { agentId = m, role = "write" }).ToArray(),
            }),
        };
        request.Headers.Add("X-Tenant-Id", tenant ?? _tenant);
        request.Headers.Add("X-Agent-Id", agent);
        using var response = await _client.SendAsync(request);
        response.StatusCode.Should().Be(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
    }

    private async Task<SharedContextListPage> SharedPageAsync(string query, string? tenant = null) =>
        await (await GetAsync("/v1/shared-contexts" + query, tenant)).ReadAsync<SharedContextListPage>();

    [Fact]
    public async Task ListSessions_TheWholeTenant_NewestFirst_WithModeAndTokens_PagedByCursor()
    {
        await ConversationAsync("c-old", "alice", turns: 2);
        await ConversationAsync("c-bob", "bob");
        await ConversationAsync("c-new", "alice", turns: 3);
        (await _client.PostJsonAsync("/v1/sessions/c-bob/checkpoints", new CheckpointRequest("Bob asked one question.", 1), _tenant)).EnsureSuccessStatusCode();
        await _factory.WhenWorkflowsIdleAsync();

        var page = await (await GetAsync("/v1/sessions")).ReadAsync<ConversationListPage>();

        page.Items.Select(i => i.ConversationId).Should().Equal("c-bob", "c-new", "c-old");
        page.NextCursor.Should().BeNull();
        var bob = page.Items[0];
        (bob.UserId, bob.Mode, bob.TurnCount, bob.CheckpointCount).Should().Be(("bob", MemoryMode.SummaryN, 1, 1));
        var newest = page.Items[1];
        (newest.UserId, newest.Mode, newest.TurnCount, newest.LastAgentCode).Should().Be(("alice", MemoryMode.FullHistory, 3, "triage"));
        newest.Tokens.Should().BeGreaterThan(page.Items[2].Tokens, "three turns hold more tokens than two of the same shape");
        newest.CreatedAt.Should().BeBefore(newest.UpdatedAt);

        var first = await (await GetAsync("/v1/sessions?limit=2")).ReadAsync<ConversationListPage>();
        first.Items.Select(i => i.ConversationId).Should().Equal("c-bob", "c-new");
        var second = await (await GetAsync($"/v1/sessions?limit=2&cursor={first.NextCursor}")).ReadAsync<ConversationListPage>();
        second.Items.Select(i => i.ConversationId).Should().Equal("c-old");
        second.NextCursor.Should().BeNull();
    }

    [Fact]
    public async Task ListSessions_FiltersByUserModeAndLastActivity()
    {
        await ConversationAsync("c-1", "alice");
        var boundary = _factory.Time.GetUtcNow().AddMilliseconds(500);
        await ConversationAsync("c-2", "alice");
        await ConversationAsync("c-3", "bob");
        (await _client.PostJsonAsync("/v1/sessions/c-2/checkpoints", new CheckpointRequest("Alice again.", 1), _tenant)).EnsureSuccessStatusCode();
        await _factory.WhenWorkflowsIdleAsync();
        var at = Uri.EscapeDataString(boundary.ToString("O"));

        (await ConversationIdsAsync("?userId=alice")).Should().Equal("c-2", "c-1");
        (await ConversationIdsAsync("?mode=SUMMARY_N")).Should().Equal("c-2");
        (await ConversationIdsAsync("?mode=FULL_HISTORY")).Should().Equal("c-3", "c-1");
        (await ConversationIdsAsync($"?activeSince={at}")).Should().Equal("c-2", "c-3");
        (await ConversationIdsAsync($"?activeBefore={at}")).Should().Equal("c-1");
        (await ConversationIdsAsync($"?userId=alice&mode=FULL_HISTORY&activeBefore={at}")).Should().Equal("c-1");
        (await ConversationIdsAsync("?userId=nobody")).Should().BeEmpty();
    }

    [Fact]
    public async Task ListSessions_OnlyTheCallersTenant_AndNotErasedConversations()
    {
        await ConversationAsync("c-mine", "alice");
        await ConversationAsync("c-gone", "alice");
        await ConversationAsync("c-theirs", "alice", tenant: _otherTenant);

        (await _client.SendAsync(new HttpRequestMessage(HttpMethod.Delete, "/v1/sessions/c-gone") { Headers = { { "X-Tenant-Id", _tenant } } }))
            .StatusCode.Should().Be(HttpStatusCode.NoContent);

        (await ConversationIdsAsync("")).Should().Equal("c-mine");
        (await ConversationIdsAsync("", _otherTenant)).Should().Equal("c-theirs");
        (await ConversationIdsAsync("?userId=alice", "t-" + Guid.NewGuid().ToString("N")[..8])).Should().BeEmpty();
    }

    [Theory]
    [InlineData("?limit=0", "invalid-limit")]
    [InlineData("?limit=201", "invalid-limit")]
    [InlineData("?mode=summary", "invalid-mode")]
    [InlineData("?activeSince=yesterday", "invalid-activeSince")]
    [InlineData("?activeBefore=2026-01-31T12:00:00", "invalid-activeBefore")]
    [InlineData("?cursor=garbage!", "invalid-cursor")]
    [InlineData("?userId=a%20b", "invalid-userId")]
    public async Task ListSessions_BadParameters_AreProblemDetailsWithAStableCode(string query, string code)
    {
        (await (await GetAsync("/v1/sessions" + query)).ProblemAsync(400)).GetProperty("code").GetString().Should().Be(code);
    }

    [Fact]
    public async Task ListSharedContexts_TheTenantsContexts_FilteredByMemberAndConversation_PagedByCursor()
    {
        await ConversationAsync("c-1", "alice");
        await SharedContextAsync("sc-a", "triage", ["pharmacy"]);
        _factory.Time.Advance(TimeSpan.FromSeconds(2));
        await SharedContextAsync("sc-b", "triage", fromConversation: "c-1");
        _factory.Time.Advance(TimeSpan.FromSeconds(2));
        await SharedContextAsync("sc-c", "billing");
        await SharedContextAsync("sc-other", "triage", tenant: _otherTenant);

        var all = await SharedPageAsync("");
        all.Items.Select(i => i.Id).Should().Equal("sc-c", "sc-b", "sc-a");
        var a = all.Items[2];
        (a.Owner, a.Mode, a.Status, a.Members, a.Version).Should().Be(("triage", "open", "open", 2, 1L));
        all.Items[1].ConversationId.Should().Be("c-1");

        (await SharedPageAsync("?member=pharmacy")).Items.Select(i => i.Id).Should().Equal("sc-a");
        (await SharedPageAsync("?member=triage")).Items.Select(i => i.Id).Should().Equal("sc-b", "sc-a");
        (await SharedPageAsync("?fromConversation=c-1")).Items.Select(i => i.Id).Should().Equal("sc-b");
        (await SharedPageAsync("?member=nobody")).Items.Should().BeEmpty();
        (await SharedPageAsync("", _otherTenant)).Items.Select(i => i.Id).Should().Equal("sc-other");

        var first = await SharedPageAsync("?limit=2");
        first.Items.Select(i => i.Id).Should().Equal("sc-c", "sc-b");
        var rest = await SharedPageAsync($"?limit=2&cursor={first.NextCursor}");
        rest.Items.Select(i => i.Id).Should().Equal("sc-a");
        rest.NextCursor.Should().BeNull();
    }

    [Fact]
    public async Task ListSharedContexts_AContextErasedWithItsConversationIsGone()
    {
        await ConversationAsync("c-1", "alice");
        await SharedContextAsync("sc-linked", "triage", fromConversation: "c-1");
        await SharedContextAsync("sc-kept", "triage");

        (await _client.SendAsync(new HttpRequestMessage(HttpMethod.Delete, "/v1/sessions/c-1") { Headers = { { "X-Tenant-Id", _tenant } } }))
            .StatusCode.Should().Be(HttpStatusCode.NoContent);

        (await SharedPageAsync("")).Items.Select(i => i.Id).Should().Equal("sc-kept");
        (await SharedPageAsync("?fromConversation=c-1")).Items.Should().BeEmpty();
    }

    [Theory]
    [InlineData("?limit=0", "invalid-limit")]
    [InlineData("?cursor=garbage!", "invalid-cursor")]
    [InlineData("?member=a%20b", "invalid-member")]
    public async Task ListSharedContexts_BadParameters_AreProblemDetailsWithAStableCode(string query, string code)
    {
        (await (await GetAsync("/v1/shared-contexts" + query)).ProblemAsync(400)).GetProperty("code").GetString().Should().Be(code);
    }
}

public sealed class InMemoryListingTests() : ListingBehaviour(LogKind.InMemory);

public sealed class PostgresListingTests() : ListingBehaviour(LogKind.Postgres);
