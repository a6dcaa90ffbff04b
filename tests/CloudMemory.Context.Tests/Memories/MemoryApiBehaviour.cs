using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CloudMemory.Contracts;
using CloudMemory.Context.Features.Memories;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.Context.Tests.Memories;

/// <summary>The HTTP API of long-term memory; run against in-memory and PostgreSQL storage.</summary>
public abstract class MemoryApiBehaviour : IAsyncLifetime
{
    private readonly GatedEmbedder _gated = new();

    private protected MemoryApp App { get; private set; } = null!;

    private HttpClient Client => App.Client;

    protected abstract string? ConnectionString { get; }

    public async Task InitializeAsync()
    {
        App = await MemoryApp.StartAsync(ConnectionString, configure: s => s.AddSingleton<IEmbedder>(_gated));
    }

    public async Task DisposeAsync()
    {
        _gated.Release();
        await App.DisposeAsync();
    }

    private static async Task<T> ReadAsync<T>(HttpResponseMessage response) =>
        (await response.Content.ReadFromJsonAsync<T>(ContractsJson.Options))!;

    private Task<HttpResponseMessage> PostAsync(string url, object body, string? tenant = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = JsonContent.Create(body, options: ContractsJson.Options) };
        if (tenant is not null)
        {
            request.Headers.Add("X-Tenant-Id", tenant);
        }
        return Client.SendAsync(request);
    }

    private Task<HttpResponseMessage> PostRawAsync(string url, string json) =>
        Client.PostAsync(url, new StringContent(json, Encoding.UTF8, "application/json"));

    private async Task<MemoryEntry> CreateAsync(string content, string? contextId = "conv-1", string type = MemoryTypes.Semantic, string? id = null, string? userId = null)
    {
        var response = await PostAsync("/v1/memories", new CreateMemoryRequest(content, type, id, userId, contextId, Tags: ["t"], Metadata: new Dictionary<string, string> { ["source"] = "test" }));
        response.StatusCode.Should().Be(HttpStatusCode.Created);
        return await ReadAsync<MemoryEntry>(response);
    }

    private async Task<MemorySearchResponse> SearchAsync(object request, string? tenant = null)
    {
        var response = await PostAsync("/v1/memories/search", request, tenant);
        response.StatusCode.Should().Be(HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        return await ReadAsync<MemorySearchResponse>(response);
    }

    [Fact]
    public async Task Post_ThenGet_ReturnsEntryInCamelCase()
    {
        var created = await CreateAsync("The user's laptop is a ThinkPad X1", userId: "u-1");

        var response = await Client.GetAsync($"/v1/memories/{created.Id}");

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        var json = await response.Content.ReadAsStringAsync();
        json.Should().Contain("\"contextId\":\"conv-1\"").And.Contain("\"accessCount\":0").And.Contain("\"type\":\"semantic\"");
        (await ReadAsync<MemoryEntry>(response)).Should().BeEquivalentTo(created);
    }

    [Fact]
    public async Task Post_RepeatedId_Returns200WithStoredEntry()
    {
        var first = await CreateAsync("first", id: "fixed-id");

        var again = await PostAsync("/v1/memories", new CreateMemoryRequest("second", Id: "fixed-id"));

        again.StatusCode.Should().Be(HttpStatusCode.OK);
        (await ReadAsync<MemoryEntry>(again)).Content.Should().Be(first.Content);
    }

    [Fact]
    public async Task Get_UnknownId_Returns404Problem()
    {
        var response = await Client.GetAsync("/v1/memories/nope");

        response.StatusCode.Should().Be(HttpStatusCode.NotFound);
        response.Content.Headers.ContentType!.MediaType.Should().Be("application/problem+json");
        (await response.Content.ReadAsStringAsync()).Should().Contain("memory-not-found");
    }

    [Fact]
    public async Task Put_ChangesContent_AndSearchSeesNewContent()
    {
        var created = await CreateAsync("meeting moved to tuesday");

        var response = await Client.PutAsJsonAsync($"/v1/memories/{created.Id}", new UpdateMemoryRequest(Content: "meeting moved to thursday", Tags: ["calendar"]), ContractsJson.Options);

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        var updated = await ReadAsync<MemoryEntry>(response);
        updated.Content.Should().Be("meeting moved to thursday");
        updated.Tags.Should().Equal("calendar");
        updated.CreatedAt.Should().Be(created.CreatedAt);
        var hits = await SearchAsync(new MemorySearchRequest("thursday", Mode: SearchModes.Lexical));
        hits.Hits.Select(h => h.Entry.Id).Should().Equal(created.Id);
        (await Client.PutAsJsonAsync("/v1/memories/unknown", new UpdateMemoryRequest(Content: "x"), ContractsJson.Options)).StatusCode.Should().Be(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Delete_Entry_Returns204ThenGoneEverywhere()
    {
        _gated.Release();
        var created = await CreateAsync("the wifi password rotates monthly");
        await App.EmbeddedAsync();

        (await Client.DeleteAsync($"/v1/memories/{created.Id}")).StatusCode.Should().Be(HttpStatusCode.NoContent);

        (await Client.GetAsync($"/v1/memories/{created.Id}")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await Client.DeleteAsync($"/v1/memories/{created.Id}")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await SearchAsync(new MemorySearchRequest("wifi password rotates monthly"))).Hits.Should().BeEmpty();
        (await ReadAsync<MemoryList>(await Client.GetAsync("/v1/memories?contextId=conv-1"))).Items.Should().BeEmpty();
    }

    [Fact]
    public async Task List_ByContextAndType_ReturnsMatches()
    {
        var a = await CreateAsync("alpha", contextId: "conv-a");
        await CreateAsync("beta", contextId: "conv-b");
        var c = await CreateAsync("gamma", contextId: "conv-a", type: MemoryTypes.Episodic);

        var all = await ReadAsync<MemoryList>(await Client.GetAsync("/v1/memories?contextId=conv-a"));
        var episodic = await ReadAsync<MemoryList>(await Client.GetAsync("/v1/memories?contextId=conv-a&type=episodic"));

        all.Items.Select(e => e.Id).Should().BeEquivalentTo([a.Id, c.Id]);
        episodic.Items.Select(e => e.Id).Should().Equal(c.Id);
        (await Client.GetAsync("/v1/memories?type=bogus")).StatusCode.Should().Be(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task Search_PendingEmbedding_IsFoundLexically()
    {
        var created = await CreateAsync("invoice 4711 was paid by bank transfer");

        var result = await SearchAsync(new MemorySearchRequest("invoice paid", Mode: SearchModes.Hybrid));

        var hit = result.Hits.Should().ContainSingle().Subject;
        hit.Entry.Id.Should().Be(created.Id);
        hit.SemanticScore.Should().Be(0);
        hit.LexicalScore.Should().BeGreaterThan(0);
        hit.Why.Should().Contain("embedding pending");
    }

    [Fact]
    public async Task Search_Hybrid_ReturnsScoredHitsWithExplanation()
    {
        _gated.Release();
        var target = await CreateAsync("Alice prefers vegetarian restaurants near the office");
        await CreateAsync("The quarterly report is due on Friday");
        await CreateAsync("Bob drives an electric car", contextId: "conv-2");
        await App.EmbeddedAsync();

        var result = await SearchAsync(new MemorySearchRequest("vegetarian restaurant", TopK: 2, Filters: new MemorySearchFilters(ContextId: "conv-1")));

        result.Mode.Should().Be("hybrid");
        result.Fusion.Should().Be("weighted");
        var top = result.Hits[0];
        top.Entry.Id.Should().Be(target.Id);
        top.SemanticScore.Should().BeGreaterThan(0);
        top.LexicalScore.Should().BeGreaterThan(0);
        top.Score.Should().BeGreaterThan(0);
        top.MatchedTerms.Should().Contain(["vegetarian", "restaurant"]);
        top.Why.Should().Contain("matched terms: vegetarian, restaurant").And.Contain("semantic similarity");
        result.Hits.Should().OnlyContain(h => h.Entry.ContextId == "conv-1");

        var rrf = await SearchAsync(new MemorySearchRequest("vegetarian restaurant", Fusion: "rrf", SemanticWeight: 0.5));
        rrf.Hits[0].Entry.Id.Should().Be(target.Id);
        var semantic = await SearchAsync(new MemorySearchRequest("vegetarian restaurants", Mode: "semantic", Filters: new MemorySearchFilters(Types: ["semantic"])));
        semantic.Hits[0].Entry.Id.Should().Be(target.Id);
        semantic.Hits[0].LexicalScore.Should().Be(0);
    }

    [Fact]
    public async Task Search_ReturnedHits_CountAsAccesses()
    {
        var created = await CreateAsync("the staging database lives in westeurope");

        await SearchAsync(new MemorySearchRequest("staging database", Mode: SearchModes.Lexical));

        // Accesses are recorded off the request path; poll until the background write lands.
        MemoryEntry? entry = null;
        for (var i = 0; i < 500 && entry?.AccessCount != 1; i++)
        {
            await Task.Delay(10);
            entry = await ReadAsync<MemoryEntry>(await Client.GetAsync($"/v1/memories/{created.Id}"));
        }
        entry!.AccessCount.Should().Be(1);
    }

    [Fact]
    public async Task Tenants_AreIsolated()
    {
        var created = await CreateAsync("tenant one's confidential roadmap");

        var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/memories/{created.Id}");
        request.Headers.Add("X-Tenant-Id", "other");
        (await Client.SendAsync(request)).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await SearchAsync(new MemorySearchRequest("confidential roadmap"), tenant: "other")).Hits.Should().BeEmpty();
        (await SearchAsync(new MemorySearchRequest("confidential roadmap"))).Hits.Should().ContainSingle();
    }

    [Theory]
    [InlineData("""{"query":""}""", "invalid-query")]
    [InlineData("""{"query":"x","topK":0}""", "invalid-topk")]
    [InlineData("""{"query":"x","topK":101}""", "invalid-topk")]
    [InlineData("""{"query":"x","mode":"fuzzy"}""", "invalid-mode")]
    [InlineData("""{"query":"x","fusion":"max"}""", "invalid-fusion")]
    [InlineData("""{"query":"x","semanticWeight":1.5}""", "invalid-semantic-weight")]
    [InlineData("""{"query":"x","filters":{"types":["bogus"]}}""", "invalid-type")]
    [InlineData("""{"query":"x","filters":{"conversation":"c1"}}""", "malformed-json")]
    [InlineData("""{"query":"x","filters":{"contextId":"a/b"}}""", "invalid-contextId")]
    [InlineData("""{"query":"x","filters":{"createdAfter":"2026-02-01T00:00:00Z","createdBefore":"2026-01-01T00:00:00Z"}}""", "invalid-time-range")]
    public async Task Search_BadInput_Returns400Problem(string body, string code)
    {
        var response = await PostRawAsync("/v1/memories/search", body);

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        problem.RootElement.GetProperty("code").GetString().Should().Be(code);
    }

    [Theory]
    [InlineData("""{"content":""}""", "invalid-content")]
    [InlineData("""{"content":"x","type":"diary"}""", "invalid-type")]
    [InlineData("""{"content":"x","id":"../etc"}""", "invalid-id")]
    [InlineData("""{"content":"x","ttlSeconds":0}""", "invalid-ttl")]
    public async Task Post_BadInput_Returns400Problem(string body, string code)
    {
        var response = await PostRawAsync("/v1/memories", body);

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await response.Content.ReadAsStringAsync()).Should().Contain(code);
    }
}

public sealed class InMemoryMemoryApiTests : MemoryApiBehaviour
{
    protected override string? ConnectionString => null;
}

public sealed class PostgresMemoryApiTests : MemoryApiBehaviour
{
    protected override string? ConnectionString => TestPostgres.ConnectionString;
}
