using System.Text.Json;
using System.Text.Json.Nodes;
using CloudMemory.Context.Features.Memories;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CloudMemory.Context.Tests.Memories;

/// <summary>The OpenAI-compatible embedder against a fake embeddings endpoint on loopback Kestrel.</summary>
public sealed class OpenAIEmbedderTests : IAsyncLifetime
{
    private readonly List<JsonObject> _requests = [];
    private readonly List<string?> _authorizations = [];
    private WebApplication _server = null!;
    private string _endpoint = null!;

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel().UseUrls("http://127.0.0.1:0");
        _server = builder.Build();
        _server.MapPost("/v1/embeddings", async (HttpContext http) =>
        {
            var body = (await JsonNode.ParseAsync(http.Request.Body))!.AsObject();
            lock (_requests)
            {
                _requests.Add(body);
                _authorizations.Add(http.Request.Headers.Authorization.ToString());
            }
            var inputs = body["input"]!.AsArray();
            // Answer out of order: the client must place vectors by their index.
            var data = inputs.Select((input, i) => new
            {
                @object = "embedding",
                index = i,
                embedding = new[] { (float)input!.GetValue<string>().Length, 0f, 3f },
            }).Reverse();
            return Results.Json(new { @object = "list", data, model = body["model"]!.GetValue<string>(), usage = new { prompt_tokens = 1, total_tokens = 1 } });
        });
        await _server.StartAsync();
        var address = _server.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        _endpoint = address + "/v1";
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task EmbedAsync_Batch_SendsModelAndKeyAndReturnsNormalizedVectorsInOrder()
    {
        var embedder = new OpenAIEmbedder(new EmbeddingOptions { Provider = "openai", Endpoint = _endpoint, ApiKey = "test-key", Model = "text-embedding-3-small" });

        var vectors = await embedder.EmbedAsync(["four", "sixsix"]);

        vectors.Should().HaveCount(2);
        vectors[0].Should().Equal(4f / 5f, 0f, 3f / 5f);
        vectors[1][0].Should().BeApproximately(6f / MathF.Sqrt(45), 1e-6f);
        embedder.Dimensions.Should().Be(3);
        _requests.Should().ContainSingle();
        _requests[0]["model"]!.GetValue<string>().Should().Be("text-embedding-3-small");
        _requests[0]["input"]!.AsArray().Select(i => i!.GetValue<string>()).Should().Equal("four", "sixsix");
        _authorizations[0].Should().Be("Bearer test-key");
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
        _requests.Sum(r => r["input"]!.AsArray().Count).Should().Be(3); // two documents, one query
    }

    [Fact]
    public void Create_WithoutKey_FailsClearly()
    {
        var create = () => new OpenAIEmbedder(new EmbeddingOptions { Provider = "openai" });

        create.Should().Throw<InvalidOperationException>().WithMessage("*ApiKey*");
    }
}
