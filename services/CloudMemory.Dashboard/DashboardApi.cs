using CloudMemory.Client;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace CloudMemory.Dashboard;

/// <summary>
/// The public HTTP API as the current browser's caller sees it: every call carries the caller's
/// credential (or tenant and agent), so the API's own authentication and tenant isolation apply.
/// The dashboard reads nothing any other way.
/// </summary>
public sealed class DashboardApi(IHttpContextAccessor accessor, IHttpClientFactory httpClients, IOptions<DashboardOptions> options, IServer? server = null)
{
    /// <summary>Name of the HttpClient the dashboard's calls use.</summary>
    public const string HttpClientName = "cloudmemory-dashboard";

    private CloudMemoryClientOptions? _clientOptions;

    /// <summary>The caller of the current request.</summary>
    public DashboardCaller Caller => DashboardCaller.From(accessor.HttpContext ?? throw new InvalidOperationException("No current request."));

    /// <summary>The API client of the current caller.</summary>
    public CloudMemoryClient Client => new(httpClients.CreateClient(HttpClientName), ClientOptions);

    /// <summary>The shared-contexts client of the current caller.</summary>
    public SharedContextsClient SharedContexts => new(httpClients.CreateClient(HttpClientName), ClientOptions);

    /// <summary>Where the API is.</summary>
    public Uri BaseAddress => options.Value.ApiBaseUrl ?? OwnAddress();

    private CloudMemoryClientOptions ClientOptions => _clientOptions ??= For(Caller);

    /// <summary>Client options that send <paramref name="caller"/>'s identity.</summary>
    public CloudMemoryClientOptions For(DashboardCaller caller) => new()
    {
        BaseAddress = BaseAddress,
        BearerToken = caller.Credential,
        TenantId = caller.Credential is null ? caller.Tenant : null,
        AgentId = caller.Credential is null ? caller.Agent : null,
    };

    // Embedded: the API is this very process, at the address it listens on (a wildcard host is reached on loopback).
    private Uri OwnAddress()
    {
        var address = server?.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
            ?? throw new InvalidOperationException($"Set {DashboardOptions.SectionName}:ApiBaseUrl: this host listens on no address the dashboard can call.");
        var uri = new UriBuilder(address.Replace("://+", "://127.0.0.1", StringComparison.Ordinal).Replace("://*", "://127.0.0.1", StringComparison.Ordinal));
        if (uri.Host is "0.0.0.0" or "[::]" or "::")
        {
            uri.Host = "127.0.0.1";
        }
        uri.Path = "/";
        return uri.Uri;
    }
}
