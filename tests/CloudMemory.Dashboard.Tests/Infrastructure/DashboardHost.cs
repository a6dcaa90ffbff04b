using CloudMemory.Client;
using CloudMemory.Testing;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.Dashboard.Tests.Infrastructure;

/// <summary>Which stores the embedded host runs on.</summary>
public enum Store
{
    InMemory,
    Postgres,
}

/// <summary>
/// The embedded host (four services and the dashboard) listening on a real loopback port, so a
/// browser can load its pages and the dashboard calls the API over HTTP as it does in production.
/// </summary>
public sealed class DashboardHost : WebApplicationFactory<Host.Program>
{
    private readonly Store _store;
    private readonly IDictionary<string, string?> _settings;

    public DashboardHost(Store store, IDictionary<string, string?>? settings = null)
    {
        _store = store;
        _settings = settings ?? new Dictionary<string, string?>();
        BaseUrl = this.StartOnFreePort();
    }

    /// <summary>Where the host listens, e.g. http://127.0.0.1:41234/.</summary>
    public Uri BaseUrl { get; }

    public Store Store => _store;

    /// <summary>A client of the API as a tenant (mode none) or with an API key.</summary>
    public CloudMemoryClient Client(string? tenant = null, string? apiKey = null, string? agent = null) =>
        new(new HttpClient { Timeout = TimeSpan.FromSeconds(30) }, Options(tenant, apiKey, agent));

    /// <summary>A client of the API that sends <paramref name="token"/> as its bearer credential.</summary>
    public CloudMemoryClient BearerClient(string token) =>
        new(new HttpClient { Timeout = TimeSpan.FromSeconds(30) }, new CloudMemoryClientOptions { BaseAddress = BaseUrl, BearerToken = token });

    public SharedContextsClient SharedContexts(string tenant, string agent) =>
        new(new HttpClient { Timeout = TimeSpan.FromSeconds(30) }, Options(tenant, null, agent));

    private CloudMemoryClientOptions Options(string? tenant, string? apiKey, string? agent) =>
        new() { BaseAddress = BaseUrl, TenantId = apiKey is null ? tenant : null, ApiKey = apiKey, AgentId = apiKey is null ? agent : null };

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Development");
        if (_store == Store.Postgres)
        {
            builder.UseSetting("ConnectionStrings:CloudMemory", PostgresTestServer.ConnectionString);
            builder.UseSetting("CloudMemory:Session:CheckpointRecoveryHours", "0");
        }
        builder.UseSetting("CloudMemory:Llm:Endpoint", "");
        foreach (var (key, value) in _settings)
        {
            builder.UseSetting(key, value);
        }
    }
}
