using System.Text.Json;
using CloudMemory.BuildingBlocks.Embedded;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Context;
using CloudMemory.Context.Features.Memories;
using CloudMemory.Context.Features.TurnIndexing;
using CloudMemory.Dapr;
using CloudMemory.Dapr.Tests;
using CloudMemory.Dapr.Tests.FakeSidecar;
using CloudMemory.Feedback;
using CloudMemory.Session;
using CloudMemory.Testing;
using CloudMemory.Trace;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.Security.Tests.Infrastructure;

/// <summary>
/// The four apps (session, context, trace, feedback), each composed as its Program.cs composes it,
/// on the Dapr runtime over one fake sidecar (tokens on in both directions), with the same settings.
/// Requests reach the app that owns their route (<see cref="AppRouter"/>). On
/// <see cref="StoreKind.InMemory"/> state lives in the sidecar's state store (the message log is the
/// state-store log) and memories in the context app; on <see cref="StoreKind.Postgres"/> the apps share the database.
/// </summary>
public sealed class DaprAppsHost : ISuiteHost
{
    private readonly FakeDaprSidecar _sidecar;
    private readonly List<DaprTestApp> _apps;
    private readonly Lazy<AppRouter> _router;
    private bool _sidecarStopped;

    private DaprAppsHost(FakeDaprSidecar sidecar, List<DaprTestApp> apps)
    {
        _sidecar = sidecar;
        _apps = apps;
        _router = new Lazy<AppRouter>(() => new AppRouter(apps));
    }

    public static async Task<DaprAppsHost> StartAsync(StoreKind store, IDictionary<string, string?> settings)
    {
        var all = new Dictionary<string, string?> { ["CloudMemory:Llm:Endpoint"] = "" };
        if (store == StoreKind.Postgres)
        {
            all["ConnectionStrings:CloudMemory"] = PostgresTestServer.ConnectionString;
            all["CloudMemory:Session:CheckpointRecoveryHours"] = "0";
        }
        foreach (var (key, value) in settings)
        {
            all[key] = value;
        }
        var sidecar = await FakeDaprSidecar.StartAsync(new ManualTimeProvider(), DaprTestApp.SidecarToken, DaprTestApp.AppToken);
        var apps = new List<DaprTestApp>();
        try
        {
            apps.Add(await StartAppAsync(sidecar, CloudMemory.Session.SessionServiceCollectionExtensions.AppId, all, b => b.AddSessionServices(), a => a.MapSessionEndpoints()));
            apps.Add(await StartAppAsync(sidecar, ContextServiceCollectionExtensions.AppId, all, b => b.AddContextServices(), a => a.MapContextEndpoints()));
            apps.Add(await StartAppAsync(sidecar, TraceServiceCollectionExtensions.AppId, all, b => b.AddTraceServices(), a => a.MapTraceEndpoints()));
            apps.Add(await StartAppAsync(sidecar, FeedbackServiceCollectionExtensions.AppId, all, b => b.AddFeedbackServices(), a => a.MapFeedbackEndpoints()));
        }
        catch
        {
            await new DaprAppsHost(sidecar, apps).DisposeAsync();
            throw;
        }
        return new DaprAppsHost(sidecar, apps);
    }

    // As services/CloudMemory.{App}/Program.cs composes its app.
    private static Task<DaprTestApp> StartAppAsync(FakeDaprSidecar sidecar, string appId, Dictionary<string, string?> settings,
        Action<WebApplicationBuilder> addServices, Action<WebApplication> mapEndpoints) =>
        DaprTestApp.StartServiceAsync(new ManualTimeProvider(), appId, addServices, mapEndpoints, settings, sidecar);

    public HttpClient CreateClient() => AppRouter.CreateClient(_apps);

    /// <summary>The app id of each app with its own base address.</summary>
    public IEnumerable<(string AppId, Uri Base)> Apps => _apps.Select(a => (_sidecar.Apps.Single(p => p.Value == a.AppBase).Key, a.AppBase));

    /// <summary>The base address of the app a request for <paramref name="method"/> <paramref name="path"/> is routed to.</summary>
    public Uri AppFor(string method, string path) => _router.Value.AppFor(method, path);

    public async Task WhenQuietAsync()
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            long busy = _sidecar.PendingDeliveries + _sidecar.RunningWorkflows;
            foreach (var services in _apps.Select(a => a.Services))
            {
                busy += services.GetService<EmbeddingPipeline>()?.Outstanding ?? 0;
                busy += services.GetService<TurnIndexer>()?.Backlog ?? 0;
            }
            if (busy == 0)
            {
                return;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"the Dapr apps are still busy ({busy} deliveries, workflows, embeddings or turns outstanding)");
            }
            await Task.Delay(10);
        }
    }

    public async Task<IReadOnlyList<JsonDocument>> OpenApiDocumentsAsync()
    {
        var documents = new List<JsonDocument>();
        foreach (var app in _apps)
        {
            using var http = new HttpClient { BaseAddress = app.AppBase, Timeout = Wait.Timeout };
            documents.Add(JsonDocument.Parse(await http.GetStringAsync("openapi/v1.json")));
        }
        return documents;
    }

    public void AssertNoViolations() => _sidecar.AssertNoViolations();

    /// <summary>Stops the sidecar (an outage): the apps keep running and find it gone.</summary>
    public async Task StopSidecarAsync()
    {
        _sidecarStopped = true;
        await _sidecar.DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (_router.IsValueCreated)
        {
            _router.Value.Dispose();
        }
        foreach (var app in _apps)
        {
            await app.DisposeAsync();
        }
        if (!_sidecarStopped)
        {
            await _sidecar.DisposeAsync();
        }
    }
}
