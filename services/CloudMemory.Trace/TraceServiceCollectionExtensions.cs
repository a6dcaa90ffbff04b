namespace CloudMemory.Trace;

/// <summary>Registers the `trace` service.</summary>
public static class TraceServiceCollectionExtensions
{
    /// <summary>App id of this service.</summary>
    public const string AppId = "trace";

    /// <summary>Adds the service's features.</summary>
    public static IHostApplicationBuilder AddTraceServices(this IHostApplicationBuilder builder)
    {
        return builder;
    }

    /// <summary>Maps the service's endpoints.</summary>
    public static IEndpointRouteBuilder MapTraceEndpoints(this IEndpointRouteBuilder endpoints)
    {
        return endpoints;
    }
}
