using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Dapr;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CloudMemory.Dapr.Tests.FakeSidecar;

/// <summary>A CloudMemory app on the Dapr runtime, on loopback, wired to a <see cref="FakeDaprSidecar"/> in both directions.</summary>
public sealed class DaprTestApp : IAsyncDisposable
{
    public const string SidecarToken = "sidecar-token";
    public const string AppToken = "app-token";

    private readonly bool _ownsSidecar;

    private DaprTestApp(FakeDaprSidecar sidecar, WebApplication app, Uri appBase, bool ownsSidecar)
    {
        _ownsSidecar = ownsSidecar;
        Sidecar = sidecar;
        App = app;
        AppBase = appBase;
    }

    public FakeDaprSidecar Sidecar { get; }
    public WebApplication App { get; }
    public Uri AppBase { get; }
    public IServiceProvider Services => App.Services;

    public static Task<DaprTestApp> StartAsync(TimeProvider clock, Action<IServiceCollection>? configure = null,
        Action<WebApplication>? map = null, string appId = "session") =>
        StartAsync(clock, builder =>
        {
            builder.Services.AddSingleton(clock);
            builder.AddCloudMemoryRuntime();
            configure?.Invoke(builder.Services);
        }, app =>
        {
            app.MapCloudMemoryRuntime();
            map?.Invoke(app);
        }, appId);

    /// <summary>
    /// Starts an app composed by <paramref name="compose"/> and <paramref name="map"/> exactly as a
    /// service's Program.cs does, with the sidecar settings <c>dapr run</c> would set (plus <paramref name="settings"/>).
    /// With <paramref name="sharedSidecar"/> the app joins a fake already serving other apps (and does not dispose it).
    /// </summary>
    public static async Task<DaprTestApp> StartAsync(TimeProvider sidecarClock, Action<WebApplicationBuilder> compose,
        Action<WebApplication> map, string appId, IDictionary<string, string?>? settings = null, FakeDaprSidecar? sharedSidecar = null)
    {
        var sidecar = sharedSidecar ?? await FakeDaprSidecar.StartAsync(sidecarClock, SidecarToken, AppToken);
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var configuration = new Dictionary<string, string?>
        {
            ["CloudMemory:Runtime"] = "Dapr",
            ["DAPR_HTTP_ENDPOINT"] = sidecar.BaseAddress.ToString(),
            ["DAPR_GRPC_ENDPOINT"] = (await sidecar.GrpcAddressForAsync(appId)).ToString(),
            ["DAPR_API_TOKEN"] = SidecarToken,
            ["APP_API_TOKEN"] = AppToken,
            ["APP_ID"] = appId,
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            configuration[key] = value;
        }
        builder.Configuration.AddInMemoryCollection(configuration);
        compose(builder);
        var app = builder.Build();
        map(app);
        await app.StartAsync();
        var appBase = new Uri(app.Urls.First().TrimEnd('/') + "/");
        await sidecar.ConnectAppAsync(appBase, appId);
        return new DaprTestApp(sidecar, app, appBase, ownsSidecar: sharedSidecar is null);
    }

    /// <summary>
    /// Starts a CloudMemory app composed as services/CloudMemory.{App}/Program.cs composes it: the
    /// service defaults and the Dapr runtime around the app's own services (<paramref name="addServices"/>)
    /// and endpoints (<paramref name="mapEndpoints"/>).
    /// </summary>
    public static Task<DaprTestApp> StartServiceAsync(TimeProvider sidecarClock, string appId, Action<WebApplicationBuilder> addServices,
        Action<WebApplication> mapEndpoints, IDictionary<string, string?>? settings = null, FakeDaprSidecar? sharedSidecar = null) =>
        StartAsync(sidecarClock, builder =>
        {
            builder.AddServiceDefaults();
            builder.AddCloudMemoryRuntime();
            addServices(builder);
        }, app =>
        {
            app.UseServiceDefaults();
            app.MapDefaultEndpoints();
            app.MapCloudMemoryRuntime();
            mapEndpoints(app);
        }, appId, settings, sharedSidecar);

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
        if (_ownsSidecar)
        {
            await Sidecar.DisposeAsync();
        }
    }
}
