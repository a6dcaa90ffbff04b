using System.Text.Json;

namespace CloudMemory.Security.Tests.Infrastructure;

/// <summary>Which runtime serves the public API: one embedded process, or the four Dapr apps over the fake sidecar.</summary>
public enum RuntimeKind
{
    Embedded,
    Dapr,
}

/// <summary>How a suite's callers prove their tenant.</summary>
public enum AuthKind
{
    /// <summary>Mode none: the tenant by header.</summary>
    None,

    /// <summary>Mode apikey: a key issued to each tenant by its admin key.</summary>
    ApiKey,

    /// <summary>Mode jwt: a bearer token per tenant (the mode for several apps without a shared key store).</summary>
    Jwt,
}

/// <summary>
/// The host a behavioural suite runs against. The hostile-input and cross-tenant suites take one of
/// these, so each suite is written once and runs on every runtime and store.
/// </summary>
public interface ISuiteHost : IAsyncDisposable
{
    /// <summary>A client for the whole public API (in Dapr mode each request reaches the app that owns its route).</summary>
    HttpClient CreateClient();

    /// <summary>Waits until events are delivered, workflows have finished and embeddings are written.</summary>
    Task WhenQuietAsync();

    /// <summary>The OpenAPI documents that together describe the public API (one per app in Dapr mode).</summary>
    Task<IReadOnlyList<JsonDocument>> OpenApiDocumentsAsync();

    /// <summary>Fails the test on anything the runtime saw that the contract forbids (the fake sidecar's violations).</summary>
    void AssertNoViolations();
}

/// <summary>Starts the host of a suite.</summary>
public static class SuiteHosts
{
    public static async Task<ISuiteHost> StartAsync(RuntimeKind runtime, StoreKind store, IDictionary<string, string?> settings) =>
        runtime switch
        {
            RuntimeKind.Embedded => new EmbeddedSuiteHost(new SecureHost(store, settings)),
            _ => await DaprAppsHost.StartAsync(store, settings),
        };
}

/// <summary>The embedded host (all four services in one process).</summary>
public sealed class EmbeddedSuiteHost(SecureHost host) : ISuiteHost
{
    public HttpClient CreateClient() => host.CreateClient();

    public Task WhenQuietAsync() => host.WhenQuietAsync();

    public async Task<IReadOnlyList<JsonDocument>> OpenApiDocumentsAsync()
    {
        using var http = host.CreateClient();
        return [JsonDocument.Parse(await http.GetStringAsync("/openapi/v1.json"))];
    }

    public void AssertNoViolations()
    {
    }

    public ValueTask DisposeAsync()
    {
        host.Dispose();
        return ValueTask.CompletedTask;
    }
}
