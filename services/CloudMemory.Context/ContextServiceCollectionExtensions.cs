namespace CloudMemory.Context;

/// <summary>Registers the `context` service.</summary>
public static class ContextServiceCollectionExtensions
{
    /// <summary>App id of this service.</summary>
    public const string AppId = "context";

    /// <summary>Adds the service's features.</summary>
    public static IHostApplicationBuilder AddContextServices(this IHostApplicationBuilder builder)
    {
        return builder;
    }

    /// <summary>Maps the service's endpoints.</summary>
    public static IEndpointRouteBuilder MapContextEndpoints(this IEndpointRouteBuilder endpoints)
    {
        return endpoints;
    }
}
