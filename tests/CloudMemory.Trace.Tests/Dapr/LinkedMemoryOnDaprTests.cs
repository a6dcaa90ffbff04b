using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Dapr;
using CloudMemory.Dapr.Tests;
using CloudMemory.Dapr.Tests.FakeSidecar;
using CloudMemory.Session;
using CloudMemory.Trace.Tests.Http;
using CloudMemory.Trace.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;

namespace CloudMemory.Trace.Tests.Dapr;

/// <summary>
/// <see cref="LinkedMemoryBehaviour"/> on the Dapr runtime: the session and trace apps, each composed
/// as its Program.cs composes it, over one fake sidecar (tokens on). The step of a traced request
/// reaches the trace app only through what the sidecar carries: the actor call, the checkpoint
/// workflow's input on the SDK worker, and the <c>checkpoint-created</c> and
/// <c>shared-context-changed</c> events delivered to the trace app's subscriptions.
/// </summary>
public abstract class LinkedMemoryOnDaprBehaviour(StoreKind kind) : LinkedMemoryBehaviour, IAsyncLifetime
{
    private FakeDaprSidecar _sidecar = null!;
    private readonly List<DaprTestApp> _apps = [];

    public async Task InitializeAsync()
    {
        var settings = new Dictionary<string, string?>(Settings);
        if (kind == StoreKind.Postgres)
        {
            settings["ConnectionStrings:CloudMemory"] = CloudMemory.Testing.PostgresTestServer.ConnectionString;
            settings["CloudMemory:Session:CheckpointRecoveryHours"] = "0";
        }
        _sidecar = await FakeDaprSidecar.StartAsync(new ManualTimeProvider(), DaprTestApp.SidecarToken, DaprTestApp.AppToken);
        _apps.Add(await StartAppAsync(SessionServiceCollectionExtensions.AppId, settings, b => b.AddSessionServices(), a => a.MapSessionEndpoints()));
        _apps.Add(await StartAppAsync(TraceServiceCollectionExtensions.AppId, settings, b => b.AddTraceServices(), a => a.MapTraceEndpoints()));
    }

    private Task<DaprTestApp> StartAppAsync(string appId, Dictionary<string, string?> settings, Action<WebApplicationBuilder> addServices, Action<WebApplication> map) =>
        DaprTestApp.StartServiceAsync(new ManualTimeProvider(), appId, addServices, map, settings, _sidecar);

    protected override HttpClient Client(string tenant)
    {
        var client = AppRouter.CreateClient(_apps);
        client.DefaultRequestHeaders.Add(Tenant.HeaderName, tenant);
        return client;
    }

    public async Task DisposeAsync()
    {
        _sidecar.AssertNoViolations();
        foreach (var app in _apps)
        {
            await app.DisposeAsync();
        }
        await _sidecar.DisposeAsync();
    }
}

public sealed class LinkedMemoryOnDaprInMemory() : LinkedMemoryOnDaprBehaviour(StoreKind.InMemory);

public sealed class LinkedMemoryOnDaprPostgres() : LinkedMemoryOnDaprBehaviour(StoreKind.Postgres);
