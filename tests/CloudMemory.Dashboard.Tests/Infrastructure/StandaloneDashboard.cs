using CloudMemory.Dashboard;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.Dashboard.Tests.Infrastructure;

/// <summary>
/// The dashboard as its own app (services/CloudMemory.Dashboard.App) on a free loopback port, reading
/// the API at <c>api</c>; <c>apiHandler</c>, when given, carries its API calls instead of the network
/// (e.g. a router to the Dapr apps).
/// </summary>
public sealed class StandaloneDashboard : WebApplicationFactory<CloudMemory.Dashboard.App.Program>
{
    private readonly Uri _api;
    private readonly Func<HttpMessageHandler>? _apiHandler;

    public StandaloneDashboard(Uri api, Func<HttpMessageHandler>? apiHandler = null)
    {
        _api = api;
        _apiHandler = apiHandler;
        BaseUrl = this.StartOnFreePort();
    }

    /// <summary>Where the dashboard listens.</summary>
    public Uri BaseUrl { get; }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseSetting("CloudMemory:Dashboard:ApiBaseUrl", _api.ToString());
        if (_apiHandler is { } handler)
        {
            builder.ConfigureServices(services => services.AddHttpClient(DashboardApi.HttpClientName).ConfigurePrimaryHttpMessageHandler(handler));
        }
    }
}
