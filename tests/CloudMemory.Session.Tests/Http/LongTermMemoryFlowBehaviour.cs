using System.Net.Http.Json;
using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Session.Tests.Infrastructure;

namespace CloudMemory.Session.Tests.Http;

/// <summary>Short-term into long-term memory, end to end over HTTP, on each message log.</summary>
public abstract class LongTermMemoryFlowBehaviour(LogKind kind) : IDisposable
{
    private readonly CloudMemoryFactory _factory = new(kind);

    public void Dispose()
    {
        _factory.Dispose();
        GC.SuppressFinalize(this);
    }

    [Fact]
    public async Task Finalize_ConsolidatesIntoLongTermMemory_FoundByTheSameUsersNextConversation()
    {
        var client = _factory.CreateRecordingClient();
        var user = "patient-" + Guid.NewGuid().ToString("N")[..8];
        var first = "visit-a-" + Guid.NewGuid().ToString("N")[..8];
        await (await client.PostJsonAsync("/v1/sessions", new CreateSessionRequest(first, user))).ReadAsync<SessionValue>();
        await (await client.PostJsonAsync($"/v1/sessions/{first}/turns", new WriteTurnRequest(null, "triage", "I get migraines whenever I drink red wine.", "Then avoid red wine; keep a headache diary."))).ReadAsync<WriteTurnResult>();
        await (await client.PostJsonAsync($"/v1/sessions/{first}/finalize", new CheckpointRequest("Migraines triggered by red wine; advised to avoid red wine and keep a headache diary."))).ReadAsync<CheckpointResult>();
        await _factory.WhenQuietAsync();

        var second = "visit-b-" + Guid.NewGuid().ToString("N")[..8];
        await (await client.PostJsonAsync("/v1/sessions", new CreateSessionRequest(second, user))).ReadAsync<SessionValue>();
        var context = await (await client.PostJsonAsync("/v1/context/query",
            new MemoryQueryRequest(second, Query: "Can I have a glass of red wine at dinner?", IncludeRelevantMemories: true, TopK: 3))).ReadAsync<MemoryContext>();

        context.RelevantMemories.Should().NotBeNullOrEmpty();
        var best = context.RelevantMemories![0];
        best.ContextId.Should().Be(first, "the memory comes from the user's earlier conversation");
        best.Content.Should().Contain("red wine");
        best.Why.Should().NotBeNullOrWhiteSpace();
        context.History.Should().BeEmpty("the new conversation has no turns of its own yet");
    }

    [Fact]
    public async Task WrittenTurns_BecomeSearchableMessages_AndOtherUsersNeverSeeThem()
    {
        var client = _factory.CreateRecordingClient();
        var conversation = "search-" + Guid.NewGuid().ToString("N")[..8];
        var user = "u-" + Guid.NewGuid().ToString("N")[..8];
        await (await client.PostJsonAsync("/v1/sessions", new CreateSessionRequest(conversation, user))).ReadAsync<SessionValue>();
        await (await client.PostJsonAsync($"/v1/sessions/{conversation}/turns", new WriteTurnRequest(null, null, "My daughter is allergic to peanuts.", "Noted: peanut allergy."))).ReadAsync<WriteTurnResult>();
        await (await client.PostJsonAsync($"/v1/sessions/{conversation}/turns", new WriteTurnRequest(null, null, "What time is the appointment?", "Tuesday at 10."))).ReadAsync<WriteTurnResult>();
        await _factory.WhenQuietAsync();

        var search = await client.PostAsJsonAsync("/v1/memories/search", new { query = "peanut allergy", topK = 5, filters = new { contextId = conversation, types = new[] { "message" } } });
        var text = await search.Content.ReadAsStringAsync();
        search.IsSuccessStatusCode.Should().BeTrue(text);
        text.Should().Contain("allergic to peanuts");

        var otherTenant = new HttpRequestMessage(HttpMethod.Post, "/v1/memories/search")
        {
            Content = JsonContent.Create(new { query = "peanut allergy", topK = 5, filters = new { contextId = conversation } }),
        };
        otherTenant.Headers.Add("X-Tenant-Id", "someone-else");
        var foreignResponse = await client.SendAsync(otherTenant);
        var foreign = await foreignResponse.Content.ReadAsStringAsync();
        foreignResponse.IsSuccessStatusCode.Should().BeTrue(foreign);
        foreign.Should().NotContain("peanuts", "another tenant searching the same context id finds nothing of it");
    }

    [Fact]
    public async Task Query_TopKOutOfRange_Is400()
    {
        var client = _factory.CreateRecordingClient();
        var response = await client.PostJsonAsync("/v1/context/query", new MemoryQueryRequest("any", Query: "q", IncludeRelevantMemories: true, TopK: 0));
        (await response.ProblemAsync(400)).GetProperty("code").GetString().Should().Be("invalid-topK");
    }
}

public sealed class InMemoryLongTermMemoryFlowTests() : LongTermMemoryFlowBehaviour(LogKind.InMemory);

public sealed class PostgresLongTermMemoryFlowTests() : LongTermMemoryFlowBehaviour(LogKind.Postgres);
