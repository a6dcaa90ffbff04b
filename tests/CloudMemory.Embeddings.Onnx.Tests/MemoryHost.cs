using CloudMemory.Context.Features.Memories;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CloudMemory.Embeddings.Onnx.Tests;

/// <summary>Long-term memory wired as the embedded host wires it, with the chosen embeddings provider and store.</summary>
internal sealed class MemoryHost : IAsyncDisposable
{
    private readonly IHost _host;

    private MemoryHost(IHost host) => _host = host;

    public ILongTermMemory Memory => _host.Services.GetRequiredService<ILongTermMemory>();

    public IEmbedder Embedder => _host.Services.GetRequiredService<IEmbedder>();

    public static async Task<MemoryHost> StartAsync(string provider, string? connectionString = null)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        var settings = new Dictionary<string, string?>
        {
            [$"{EmbeddingOptions.SectionName}:Provider"] = provider,
            [$"{LongTermMemoryOptions.SectionName}:TrackAccess"] = "false",
        };
        if (connectionString is not null)
        {
            settings[$"ConnectionStrings:{MemoryServiceCollectionExtensions.ConnectionStringName}"] = connectionString;
            settings[$"{LongTermMemoryOptions.SectionName}:Schema"] = "t_" + Guid.NewGuid().ToString("N")[..16];
        }
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddOnnxEmbeddings(builder.Configuration);
        builder.Services.AddLongTermMemory(builder.Configuration);
        var host = builder.Build();
        await host.StartAsync();
        return new MemoryHost(host);
    }

    public async Task<string> WriteAsync(string tenant, string content, string? contextId = null) =>
        (await Memory.CreateAsync(tenant, new CreateMemoryRequest(content, MemoryTypes.Semantic, ContextId: contextId))).Entry.Id;

    public Task EmbeddedAsync() => _host.Services.GetRequiredService<EmbeddingPipeline>().WaitForIdleAsync();

    public async Task<List<string>> SearchAsync(string tenant, string query, string mode = SearchModes.Hybrid, int topK = 5) =>
        (await Memory.SearchAsync(tenant, new MemorySearchRequest(query, topK, mode))).Hits.Select(h => h.Entry.Id).ToList();

    public async Task<IReadOnlyList<MemoryHit>> HitsAsync(string tenant, string query, string mode = SearchModes.Hybrid, int topK = 5) =>
        (await Memory.SearchAsync(tenant, new MemorySearchRequest(query, topK, mode))).Hits;

    public async ValueTask DisposeAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
    }
}
