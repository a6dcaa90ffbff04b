using Dapr.Actors.Runtime;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.BuildingBlocks.Actors;

/// <summary>
/// Registers actor types once for both runtimes: the registration is the Dapr SDK's own
/// (<see cref="ActorRuntimeOptions.Actors"/>), which the SDK's actor runtime serves on Dapr and the
/// embedded actor host reads in process.
/// </summary>
public static class ActorServiceCollectionExtensions
{
    /// <summary>
    /// Registers <typeparamref name="TActor"/> under its class name (or its <see cref="ActorAttribute"/>
    /// type name); <paramref name="configure"/> sets the type's own idle timeout and drain timeout.
    /// </summary>
    public static IServiceCollection AddActor<TActor>(this IServiceCollection services, Action<ActorRuntimeOptions>? configure = null)
        where TActor : Actor
    {
        ActorRuntimeOptions? typeOptions = null;
        if (configure is not null)
        {
            typeOptions = new ActorRuntimeOptions();
            configure(typeOptions);
        }
        services.Configure<ActorRuntimeOptions>(options => options.Actors.RegisterActor<TActor>(typeOptions));
        return services;
    }
}
