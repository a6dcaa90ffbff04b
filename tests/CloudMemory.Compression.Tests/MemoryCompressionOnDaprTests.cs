using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Context;
using CloudMemory.Dapr.Tests;
using CloudMemory.Dapr.Tests.FakeSidecar;
using CloudMemory.Session.Tests.Infrastructure;

namespace CloudMemory.Compression.Tests;

/// <summary>
/// Automatic long-term memory compression on the Dapr runtime: the context service composed as its
/// Program.cs composes it, over the fake sidecar, on the in-memory and the PostgreSQL memory store.
/// Nobody calls <c>POST /v1/memories/compress</c>: the background pass does it.
/// </summary>
public abstract class MemoryCompressionOnDaprBehaviour(LogKind kind) : IAsyncLifetime
{
    private DaprTestApp _app = null!;

    public async Task InitializeAsync()
    {
        var settings = new Dictionary<string, string?>
        {
            ["CloudMemory:Llm:Endpoint"] = "",
            ["CloudMemory:Compression:MemoryThreshold"] = "10",
            ["CloudMemory:Compression:AutoCompressInterval"] = "00:00:00.100",
        };
        if (kind == LogKind.Postgres)
        {
            settings["ConnectionStrings:CloudMemory"] = CloudMemory.Testing.PostgresTestServer.ConnectionString;
        }
        _app = await DaprTestApp.StartServiceAsync(new ManualTimeProvider(), ContextServiceCollectionExtensions.AppId,
            builder => builder.AddContextServices(), app => app.MapContextEndpoints(), settings);
    }

    public async Task DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public async Task Writes_BeyondTheThreshold_AreCompressedInTheBackground_OnTheDaprRuntime()
    {
        using var client = new HttpClient { BaseAddress = _app.AppBase, Timeout = Wait.Timeout };
        client.DefaultRequestHeaders.Add(Tenant.HeaderName, "mc-dapr-" + Guid.NewGuid().ToString("N")[..6]);

        await MemoryCompressionBehaviour.AssertCompressedInTheBackgroundAsync(client, TimeProvider.System.GetUtcNow());

        _app.Sidecar.AssertNoViolations();
    }
}

public sealed class MemoryCompressionOnDaprInMemory() : MemoryCompressionOnDaprBehaviour(LogKind.InMemory);

public sealed class MemoryCompressionOnDaprPostgres() : MemoryCompressionOnDaprBehaviour(LogKind.Postgres);
