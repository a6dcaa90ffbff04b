using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.BuildingBlocks.Actors;

/// <summary>Registers actor types with whichever actor runtime is in use.</summary>
public static class ActorServiceCollectionExtensions
{
    /// <summary>Registers <typeparamref name="TActor"/> under its class name.</summary>
    public static IServiceCollection AddActor<TActor>(this IServiceCollection services, Action<ActorTypeOptions>? configure = null)
        where TActor : Actor
    {
        var options = new ActorTypeOptions();
        configure?.Invoke(options);
        services.AddSingleton(new ActorRegistration(typeof(TActor).Name, typeof(TActor), options));
        services.AddTransient<TActor>();
        return services;
    }
}
