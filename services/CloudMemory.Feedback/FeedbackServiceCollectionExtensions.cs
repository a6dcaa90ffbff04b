namespace CloudMemory.Feedback;

/// <summary>Registers the `feedback` service.</summary>
public static class FeedbackServiceCollectionExtensions
{
    /// <summary>App id of this service.</summary>
    public const string AppId = "feedback";

    /// <summary>Adds the service's features.</summary>
    public static IHostApplicationBuilder AddFeedbackServices(this IHostApplicationBuilder builder)
    {
        return builder;
    }

    /// <summary>Maps the service's endpoints.</summary>
    public static IEndpointRouteBuilder MapFeedbackEndpoints(this IEndpointRouteBuilder endpoints)
    {
        return endpoints;
    }
}
