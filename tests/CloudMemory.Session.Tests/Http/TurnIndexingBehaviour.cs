using CloudMemory.Testing;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CloudMemory.BuildingBlocks.Embedded;
using CloudMemory.Context.Features.TurnIndexing;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Session.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.Session.Tests.Http;

/// <summary>The per-tenant indexing policy of conversation turns (issue 16), on each message log.</summary>
public abstract class TurnIndexingBehaviour(LogKind kind) : IDisposable
{
    private const string Quiet = "quiet-tenant";
    private const string Deep = "deep-tenant";

    private readonly CloudMemoryFactory _factory = new(kind, new Dictionary<string, string?>
    {
        [$"CloudMemory:LongTermMemory:TurnIndexing:Tenants:{Quiet}"] = "none",
        [$"CloudMemory:LongTermMemory:TurnIndexing:Tenants:{Deep}"] = "semantic",
    });

    public void Dispose()
    {
        _factory.Dispose();
        GC.SuppressFinalize(this);
    }

    [Fact]
    public async Task NoneTenant_TurnsAreNotSearchable_ButItsExplicitMemoriesAre()
    {
        var client = _factory.CreateRecordingClient();
        var word = "zeolite" + Guid.NewGuid().ToString("N")[..6];
        var conversation = "idx-" + Guid.NewGuid().ToString("N")[..8];
        foreach (var tenant in new[] { Quiet, "default" })
        {
            await WriteTurnAsync(client, tenant, conversation, $"My {word} filter is broken.", "Replace the cartridge.");
        }
        (await Send(client, Quiet, HttpMethod.Post, "/v1/memories", new { content = $"Owns a {word} water softener", userId = "u-1" })).StatusCode.Should().Be(HttpStatusCode.Created);
        await _factory.WhenQuietAsync();

        var quiet = await SearchAsync(client, Quiet, word, "lexical");
        quiet.Should().ContainSingle("only the explicit memory of the 'none' tenant is indexed");
        quiet[0].GetProperty("entry").GetProperty("type").GetString().Should().NotBe("message");
        var lexical = await SearchAsync(client, "default", word, "lexical");
        lexical.Should().ContainSingle().Which.GetProperty("entry").GetProperty("content").GetString().Should().Contain($"My {word} filter is broken.",
            "the default (lexical) tenant's same turn is searchable");
    }

    [Fact]
    public async Task LexicalTurns_AreFoundByKeyword_WithoutEmbedding_SemanticTenantsTurnsAreEmbedded()
    {
        var client = _factory.CreateRecordingClient();
        var word = "basalt" + Guid.NewGuid().ToString("N")[..6];
        var conversation = "idx-" + Guid.NewGuid().ToString("N")[..8];
        foreach (var tenant in new[] { "default", Deep })
        {
            await WriteTurnAsync(client, tenant, conversation, $"The {word} countertop has a crack.", "Use an epoxy kit.");
        }
        await _factory.WhenQuietAsync();
        await _factory.Services.GetRequiredService<CloudMemory.Context.Features.Memories.EmbeddingPipeline>().WaitForIdleAsync().WaitAsync(TimeSpan.FromSeconds(30));

        (await SearchAsync(client, "default", word, "lexical", conversation)).Should().ContainSingle();
        (await SearchAsync(client, "default", word, "semantic", conversation)).Should().BeEmpty("a lexical tenant's turns have no embedding");
        (await SearchAsync(client, Deep, word, "semantic", conversation)).Should().ContainSingle("a semantic tenant's turns are embedded");
        var pending = await _factory.Services.GetRequiredService<CloudMemory.Context.Features.Memories.IMemoryStore>().ListPendingEmbeddingsAsync(1_000_000);
        pending.Where(p => p.Content.Contains(word, StringComparison.Ordinal)).Should().BeEmpty(
            "a keyword-only turn is not waiting for an embedding (the start-up recovery and anyone draining the store rely on it)");
    }

    [Fact]
    public async Task Readyz_ReportsTheTurnIndexingBacklog()
    {
        var client = _factory.CreateRecordingClient();
        var response = await client.GetAsync("/readyz");
        var body = await response.Content.ReadAsStringAsync();
        response.StatusCode.Should().Be(HttpStatusCode.OK, body);
        var check = JsonDocument.Parse(body).RootElement.GetProperty("checks").GetProperty("turn-indexing");
        check.GetProperty("status").GetString().Should().Be("Healthy");
        check.GetProperty("data").GetProperty("capacity").GetInt32().Should().BeGreaterThan(0);
        check.GetProperty("data").TryGetProperty("backlog", out _).Should().BeTrue();
    }

    internal static async Task WriteTurnAsync(HttpClient client, string tenant, string conversation, string query, string answer)
    {
        var created = await Send(client, tenant, HttpMethod.Post, "/v1/sessions", new CreateSessionRequest(conversation, "user-" + tenant));
        created.IsSuccessStatusCode.Should().BeTrue(await created.Content.ReadAsStringAsync());
        var turn = await Send(client, tenant, HttpMethod.Post, $"/v1/sessions/{conversation}/turns", new WriteTurnRequest(null, "triage", query, answer));
        turn.IsSuccessStatusCode.Should().BeTrue(await turn.Content.ReadAsStringAsync());
    }

    internal static async Task<List<JsonElement>> SearchAsync(HttpClient client, string tenant, string query, string mode, string? conversation = null)
    {
        var response = await Send(client, tenant, HttpMethod.Post, "/v1/memories/search",
            new { query, topK = 10, mode, filters = conversation is null ? null : new { contextId = conversation } });
        var body = await response.Content.ReadAsStringAsync();
        response.IsSuccessStatusCode.Should().BeTrue(body);
        return JsonDocument.Parse(body).RootElement.GetProperty("hits").EnumerateArray().Select(h => h.Clone()).ToList();
    }

    internal static Task<HttpResponseMessage> Send(HttpClient client, string tenant, HttpMethod method, string url, object body)
    {
        var request = new HttpRequestMessage(method, url) { Content = JsonContent.Create(body, options: CloudMemory.Contracts.ContractsJson.Options) };
        request.Headers.Add("X-Tenant-Id", tenant);
        return client.SendAsync(request);
    }
}

public sealed class InMemoryTurnIndexingTests() : TurnIndexingBehaviour(LogKind.InMemory);

public sealed class PostgresTurnIndexingTests() : TurnIndexingBehaviour(LogKind.Postgres);

/// <summary>Turns queued for indexing when the host stops are indexed after the restart (PostgreSQL: the log and the marks are durable).</summary>
public sealed class TurnIndexingRestartTests
{
    [Fact]
    public async Task QueuedTurns_AreCaughtUp_AfterARestart()
    {
        var word = "feldspar" + Guid.NewGuid().ToString("N")[..6];
        var conversation = "restart-" + Guid.NewGuid().ToString("N")[..8];
        // A database of its own: any host started on the shared one catches up every marked conversation, this one's too.
        await using var database = await PostgresScratchDatabase.CreateAsync("cm_turnidx");
        var own = new Dictionary<string, string?> { ["ConnectionStrings:CloudMemory"] = database.ConnectionString };
        using (var stalled = new CloudMemoryFactory(LogKind.Postgres, new Dictionary<string, string?>(own)
        {
            ["CloudMemory:LongTermMemory:TurnIndexing:BatchDelayMilliseconds"] = "600000", // the indexer waits: the turns stay in the backlog
        }))
        {
            var client = stalled.CreateRecordingClient();
            for (var i = 0; i < 3; i++)
            {
                await TurnIndexingBehaviour.WriteTurnAsync(client, "default", conversation, $"Turn {i}: the {word} sample weighs {i + 2} grams.", "Noted.");
            }
            var bus = stalled.Services.GetRequiredService<InMemoryEventBus>();
            while (bus.InFlight > 0)
            {
                await Task.Delay(10);
            }
            stalled.Services.GetRequiredService<TurnIndexer>().Backlog.Should().Be(3);
            (await TurnIndexingBehaviour.SearchAsync(client, "default", word, "lexical", conversation)).Should().BeEmpty("nothing is indexed yet");
        }

        using var restarted = new CloudMemoryFactory(LogKind.Postgres, own);
        var again = restarted.CreateRecordingClient();
        await restarted.Services.GetRequiredService<TurnIndexer>().WaitForIdleAsync().WaitAsync(TimeSpan.FromSeconds(60));
        var hits = await TurnIndexingBehaviour.SearchAsync(again, "default", word, "lexical", conversation);
        hits.Select(h => h.GetProperty("entry").GetProperty("content").GetString()).Should().HaveCount(3).And.OnlyContain(c => c!.Contains(word));
    }
}
