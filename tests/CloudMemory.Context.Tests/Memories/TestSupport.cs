using CloudMemory.BuildingBlocks.Embedded;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Context.Features.Memories;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CloudMemory.Context.Tests.Memories;

/// <summary>The PostgreSQL server of the tests (CI's, or one the run starts itself).</summary>
internal static class TestPostgres
{
    public static string ConnectionString => CloudMemory.Testing.PostgresTestServer.ConnectionString;

    /// <summary>A fresh schema name, so test classes do not see each other's rows.</summary>
    public static string NewSchema() => "t_" + Guid.NewGuid().ToString("N")[..16];
}

/// <summary>A clock the test moves by hand.</summary>
internal sealed class ManualTime(DateTimeOffset start) : TimeProvider
{
    private DateTimeOffset _now = start;

    public override DateTimeOffset GetUtcNow() => _now;

    public void Advance(TimeSpan by) => _now += by;
}

/// <summary>An embedder that holds every batch until released: models a slow embedding provider.</summary>
internal sealed class GatedEmbedder : IEmbedder
{
    private readonly LocalHashingEmbedder _inner = new();
    private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public string Name => "gated";

    public int Dimensions => _inner.Dimensions;

    public void Release() => _gate.TrySetResult();

    public async Task<IReadOnlyList<float[]>> EmbedAsync(IReadOnlyList<string> texts, CancellationToken cancellationToken = default)
    {
        await _gate.Task.WaitAsync(cancellationToken);
        return await _inner.EmbedAsync(texts, cancellationToken);
    }

    // Queries are not gated: only the write path is slow.
    public Task<float[]> EmbedQueryAsync(string query, CancellationToken cancellationToken = default) =>
        ((IEmbedder)_inner).EmbedQueryAsync(query, cancellationToken);
}

/// <summary>A minimal context app on a TestServer with long-term memory wired as the lead wires it.</summary>
internal sealed class MemoryApp : IAsyncDisposable
{
    private MemoryApp(WebApplication app)
    {
        App = app;
        Client = app.GetTestClient();
    }

    public WebApplication App { get; }

    public HttpClient Client { get; }

    public IServiceProvider Services => App.Services;

    public static async Task<MemoryApp> StartAsync(string? connectionString = null, string? schema = null, Action<IServiceCollection>? configure = null)
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        var settings = new Dictionary<string, string?>();
        if (connectionString is not null)
        {
            settings[$"ConnectionStrings:{MemoryServiceCollectionExtensions.ConnectionStringName}"] = connectionString;
            settings[$"{LongTermMemoryOptions.SectionName}:Schema"] = schema ?? TestPostgres.NewSchema();
        }
        builder.Configuration.AddInMemoryCollection(settings);
        builder.AddServiceDefaults();
        builder.Services.AddEmbeddedRuntime();
        configure?.Invoke(builder.Services);
        builder.Services.AddLongTermMemory(builder.Configuration);
        var app = builder.Build();
        app.UseServiceDefaults();
        app.MapMemoryEndpoints();
        await app.StartAsync();
        return new MemoryApp(app);
    }

    /// <summary>Waits until every written entry has its embedding.</summary>
    public Task EmbeddedAsync() => Services.GetRequiredService<EmbeddingPipeline>().WaitForIdleAsync();

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}
