using System.Text.Json.Nodes;
using CloudMemory.Context.Features.Memories;
using Microsoft.Extensions.DependencyInjection;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;

namespace CloudMemory.Context.Tests.Memories;

/// <summary>The OpenAI-compatible embedder against an embeddings endpoint stubbed with WireMock.Net.</summary>
public sealed class OpenAIEmbedderTests : IDisposable
{
    private readonly WireMockServer _server = WireMockServer.Start();
    private readonly string _endpoint;

    public OpenAIEmbedderTests()
    {
        // Each input's vector is (its length, 0, 3), answered out of order: the client must place
        // vectors by their index.
        _server.Given(Request.Create().WithPath("/v1/embeddings").UsingPost()).RespondWith(Response.Create()
            .WithStatusCode(200)
            .WithBodyAsJson(request =>
            {
                var body = JsonNode.Parse(request.Body!)!.AsObject();
                var data = body["input"]!.AsArray()
                    .Select((input, i) => new { @object = "embedding", index = i, embedding = new[] { (float)input!.GetValue<string>().Length, 0f, 3f } })
                    .Reverse()
                    .ToArray();
                return new { @object = "list", data, model = body["model"]!.GetValue<string>(), usage = new { prompt_tokens = 1, total_tokens = 1 } };
            }));
        _endpoint = _server.Url + "/v1";
    }

    private List<JsonObject> Requests => _server.LogEntries.Select(e => e.RequestMessage).OrderBy(r => r.DateTime)
        .Select(r => JsonNode.Parse(r.Body!)!.AsObject()).ToList();

    private List<string> Authorizations => _server.LogEntries.Select(e => e.RequestMessage).OrderBy(r => r.DateTime)
        .Select(r => r.Headers!["Authorization"].ToString()).ToList();

    public void Dispose() => _server.Stop();

    [Fact]
    public async Task EmbedAsync_Batch_SendsModelAndKeyAndReturnsNormalizedVectorsInOrder()
    {
        var embedder = new OpenAIEmbedder(new EmbeddingOptions { Provider = "openai", Endpoint = _endpoint, ApiKey = "test-key", Model = "text-embedding-3-small" });

        var vectors = await embedder.EmbedAsync(["four", "sixsix"]);

        vectors.Should().HaveCount(2);
        vectors[0].Should().Equal(4f / 5f, 0f, 3f / 5f);
        vectors[1][0].Should().BeApproximately(6f / MathF.Sqrt(45), 1e-6f);
        embedder.Dimensions.Should().Be(3);
        var request = Requests.Should().ContainSingle().Subject;
        request["model"]!.GetValue<string>().Should().Be("text-embedding-3-small");
        request["input"]!.AsArray().Select(i => i!.GetValue<string>()).Should().Equal("four", "sixsix");
        Authorizations.Should().Equal("Bearer test-key");
    }

    [Fact]
    public async Task Pipeline_WithOpenAIProvider_EmbedsWrittenEntries()
    {
        await using var app = await MemoryApp.StartAsync(configure: services => services.AddSingleton<IEmbedder>(
            new OpenAIEmbedder(new EmbeddingOptions { Provider = "openai", Endpoint = _endpoint, ApiKey = "k" })));
        var memory = app.Services.GetRequiredService<ILongTermMemory>();

        await memory.CreateAsync("t", new CreateMemoryRequest("hello world"));
        await memory.CreateAsync("t", new CreateMemoryRequest("hi"));
        await app.EmbeddedAsync();

        var result = await memory.SearchAsync("t", new MemorySearchRequest("hello", Mode: SearchModes.Semantic));
        result.Hits.Should().HaveCount(2).And.OnlyContain(h => h.SemanticScore > 0);
        Requests.Sum(r => r["input"]!.AsArray().Count).Should().Be(3); // two documents, one query
    }

    [Fact]
    public void Create_WithoutKey_FailsClearly()
    {
        var create = () => new OpenAIEmbedder(new EmbeddingOptions { Provider = "openai" });

        create.Should().Throw<InvalidOperationException>().WithMessage("*ApiKey*");
    }
}
