using Microsoft.Extensions.Configuration;

namespace CloudMemory.Dapr;

/// <summary>Where the sidecar is and which tokens guard the two directions.</summary>
public sealed class DaprOptions
{
    /// <summary>Configuration section of the CloudMemory-specific settings.</summary>
    public const string SectionName = "CloudMemory:Dapr";

    /// <summary>Base address of the sidecar's HTTP API (from DAPR_HTTP_ENDPOINT or DAPR_HTTP_PORT): health, invocation, actors.</summary>
    public Uri HttpEndpoint { get; set; } = new("http://127.0.0.1:3500/");

    /// <summary>Address of the sidecar's gRPC API (from DAPR_GRPC_ENDPOINT or DAPR_GRPC_PORT): state and publish.</summary>
    public Uri GrpcEndpoint { get; set; } = new("http://127.0.0.1:50001/");

    /// <summary>Sent as <c>dapr-api-token</c> on every call to the sidecar (DAPR_API_TOKEN).</summary>
    public string? ApiToken { get; set; }

    /// <summary>Required as <c>dapr-api-token</c> on every sidecar callback (APP_API_TOKEN).</summary>
    public string? AppApiToken { get; set; }

    /// <summary>This app's id, used as CloudEvent source (APP_ID).</summary>
    public string AppId { get; set; } = "cloudmemory";

    /// <summary>Whether start-up waits for the sidecar's outbound health (<c>/v1.0/healthz/outbound</c>).</summary>
    public bool WaitForSidecar { get; set; } = true;

    /// <summary>How long start-up waits for the sidecar before failing.</summary>
    public TimeSpan SidecarWaitTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Reads the variables <c>dapr run</c> and Azure Container Apps set, plus <see cref="SectionName"/>.</summary>
    public static DaprOptions FromConfiguration(IConfiguration configuration)
    {
        var options = new DaprOptions();
        if (configuration["DAPR_HTTP_ENDPOINT"] is { Length: > 0 } endpoint)
        {
            options.HttpEndpoint = new Uri(endpoint.TrimEnd('/') + "/");
        }
        else if (configuration["DAPR_HTTP_PORT"] is { Length: > 0 } port)
        {
            options.HttpEndpoint = new Uri($"http://127.0.0.1:{int.Parse(port, System.Globalization.CultureInfo.InvariantCulture)}/");
        }
        if (configuration["DAPR_GRPC_ENDPOINT"] is { Length: > 0 } grpcEndpoint)
        {
            options.GrpcEndpoint = new Uri(grpcEndpoint.TrimEnd('/') + "/");
        }
        else if (configuration["DAPR_GRPC_PORT"] is { Length: > 0 } grpcPort)
        {
            options.GrpcEndpoint = new Uri($"http://127.0.0.1:{int.Parse(grpcPort, System.Globalization.CultureInfo.InvariantCulture)}/");
        }
        options.ApiToken = NullIfEmpty(configuration["DAPR_API_TOKEN"]);
        options.AppApiToken = NullIfEmpty(configuration["APP_API_TOKEN"]);
        options.AppId = NullIfEmpty(configuration["APP_ID"]) ?? options.AppId;
        var section = configuration.GetSection(SectionName);
        if (section["WaitForSidecar"] is { Length: > 0 } wait)
        {
            options.WaitForSidecar = bool.Parse(wait);
        }
        if (section["SidecarWaitTimeout"] is { Length: > 0 } timeout)
        {
            options.SidecarWaitTimeout = TimeSpan.Parse(timeout, System.Globalization.CultureInfo.InvariantCulture);
        }
        return options;
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;
}
