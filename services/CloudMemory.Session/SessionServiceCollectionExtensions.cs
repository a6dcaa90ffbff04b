namespace CloudMemory.Session;

/// <summary>Registers the `session` service.</summary>
public static class SessionServiceCollectionExtensions
{
    /// <summary>App id of this service.</summary>
    public const string AppId = "session";

    /// <summary>Adds the service's features.</summary>
    public static IHostApplicationBuilder AddSessionServices(this IHostApplicationBuilder builder)
    {
        return builder;
    }

    /// <summary>Maps the service's endpoints.</summary>
    public static IEndpointRouteBuilder MapSessionEndpoints(this IEndpointRouteBuilder endpoints)
    {
        return endpoints;
    }
}
