using System.Net;
using CloudMemory.Context.Features.Memories;
using CloudMemory.Security.Tests.Infrastructure;

namespace CloudMemory.Security.Tests.CrossTenant;

/// <summary>
/// Corpus statistics are per tenant: another tenant writing many memories with the query word
/// moves neither the semantic nor the lexical score a tenant sees for its own memory.
/// </summary>
public abstract class RankingSideChannelBehaviour(RuntimeKind runtime, StoreKind kind) : IAsyncLifetime
{
    private ISuiteHost _host = null!;

    public async Task InitializeAsync() => _host = await SuiteHosts.StartAsync(runtime, kind, new Dictionary<string, string?>());

    public Task DisposeAsync() => _host.DisposeAsync().AsTask();

    private async Task<MemorySearchResponse> SearchAsync(HttpClient http, string tenant, string mode, int topK = 10) =>
        await (await http.SendAsync(Http.Request(HttpMethod.Post, "/v1/memories/search", new MemorySearchRequest("vitamin supplements", TopK: topK, Mode: mode), tenant))).ReadAsync<MemorySearchResponse>();

    private static async Task WriteAsync(HttpClient http, string tenant, string content)
    {
        var response = await http.SendAsync(Http.Request(HttpMethod.Post, "/v1/memories", new CreateMemoryRequest(content), tenant));
        response.StatusCode.Should().Be(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
    }

    // Embeddings are computed in the background: wait until they are all written.
    private async Task<MemorySearchResponse> SettledAsync(HttpClient http, string tenant)
    {
        await _host.WhenQuietAsync();
        return await SearchAsync(http, tenant, SearchModes.Semantic, 100);
    }

    [Fact]
    public async Task Scores_OfOneTenant_DoNotMove_WhenAnotherTenantWritesTheQueryWord()
    {
        using var http = _host.CreateClient();
        var a = SecureHost.NewId("a");
        var b = SecureHost.NewId("b");
        await WriteAsync(http, a, "Takes vitamin D supplements every morning.");
        await WriteAsync(http, a, "Allergic to penicillin.");
        await WriteAsync(http, a, "Prefers appointments after lunch.");
        var before = await SettledAsync(http, a);
        var beforeHybrid = await SearchAsync(http, a, SearchModes.Hybrid);
        var hit = before.Hits.Single(h => h.Entry.Content.Contains("vitamin", StringComparison.Ordinal));
        hit.SemanticScore.Should().BeGreaterThan(0);

        for (var i = 0; i < 150; i++)
        {
            await WriteAsync(http, b, $"Note {i}: vitamin levels checked, vitamin C and vitamin supplements discussed.");
        }
        (await SettledAsync(http, b)).Hits.Should().HaveCount(100).And.OnlyContain(h => h.SemanticScore > 0);

        var after = await SearchAsync(http, a, SearchModes.Semantic);
        var afterHybrid = await SearchAsync(http, a, SearchModes.Hybrid);
        after.Hits.Single(h => h.Entry.Id == hit.Entry.Id).SemanticScore.Should().BeApproximately(hit.SemanticScore, 1e-9);
        // The fused score also weighs recency and access counts (which A's own searches move), so
        // the corpus-dependent parts are compared: the semantic and the lexical (BM25) score of each hit.
        afterHybrid.Hits.Select(h => (h.Entry.Id, Math.Round(h.SemanticScore, 9), Math.Round(h.LexicalScore, 9)))
            .Should().Equal(beforeHybrid.Hits.Select(h => (h.Entry.Id, Math.Round(h.SemanticScore, 9), Math.Round(h.LexicalScore, 9))));
        after.Hits.Should().OnlyContain(h => !h.Entry.Content.StartsWith("Note ", StringComparison.Ordinal));
    }
}

public sealed class RankingSideChannelInMemoryTests() : RankingSideChannelBehaviour(RuntimeKind.Embedded, StoreKind.InMemory);

public sealed class RankingSideChannelPostgresTests() : RankingSideChannelBehaviour(RuntimeKind.Embedded, StoreKind.Postgres);

/// <summary>The four Dapr apps over the fake sidecar (memories and their statistics live in the context app).</summary>
public sealed class RankingSideChannelDaprTests() : RankingSideChannelBehaviour(RuntimeKind.Dapr, StoreKind.InMemory);
