using CloudMemory.Dapr.Actors;
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

    private DaprTestApp(FakeDaprSidecar sidecar, WebApplication app, Uri appBase)
    {
        Sidecar = sidecar;
        App = app;
        AppBase = appBase;
    }

    public FakeDaprSidecar Sidecar { get; }
    public WebApplication App { get; }
    public Uri AppBase { get; }
    public IServiceProvider Services => App.Services;

    public static async Task<DaprTestApp> StartAsync(TimeProvider clock, Action<IServiceCollection>? configure = null,
        Action<WebApplication>? map = null, string appId = "session")
    {
        var sidecar = await FakeDaprSidecar.StartAsync(clock, SidecarToken, AppToken);
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["CloudMemory:Runtime"] = "Dapr",
            ["DAPR_HTTP_ENDPOINT"] = sidecar.BaseAddress.ToString(),
            ["DAPR_API_TOKEN"] = SidecarToken,
            ["APP_API_TOKEN"] = AppToken,
            ["APP_ID"] = appId,
        });
        builder.Services.AddSingleton(clock);
        builder.AddCloudMemoryRuntime();
        configure?.Invoke(builder.Services);
        var app = builder.Build();
        app.MapCloudMemoryRuntime();
        map?.Invoke(app);
        await app.StartAsync();
        var appBase = new Uri(app.Urls.First().TrimEnd('/') + "/");
        await sidecar.ConnectAppAsync(appBase, appId);
        return new DaprTestApp(sidecar, app, appBase);
    }

    public DaprActorHost ActorHost => Services.GetRequiredService<DaprActorHost>();

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
        await Sidecar.DisposeAsync();
    }
}
