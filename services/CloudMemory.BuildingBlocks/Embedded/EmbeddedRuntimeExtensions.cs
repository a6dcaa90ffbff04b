using CloudMemory.BuildingBlocks.Invocation;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.BuildingBlocks.State;
using CloudMemory.BuildingBlocks.Workflows;
using Dapr.Actors.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;

namespace CloudMemory.BuildingBlocks.Embedded;

/// <summary>Registers the in-process implementations of every building-block port.</summary>
public static class EmbeddedRuntimeExtensions
{
    /// <summary>State, pub/sub, actors, workflows and invocation in this process.</summary>
    public static IServiceCollection AddEmbeddedRuntime(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(new EmbeddedPubSubOptions());
        services.TryAddSingleton<IStateStore>(sp => new InMemoryStateStore(sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton(sp => new InMemoryEventBus(
            sp.GetServices<Subscription>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<EmbeddedPubSubOptions>(),
            sp.GetRequiredService<ILogger<InMemoryEventBus>>()));
        services.TryAddSingleton<IEventPublisher>(sp => sp.GetRequiredService<InMemoryEventBus>());
        services.AddHostedService(sp => sp.GetRequiredService<InMemoryEventBus>());
        services.TryAddSingleton<EmbeddedActorRuntime>();
        services.TryAddSingleton<IActorProxyFactory>(sp => sp.GetRequiredService<EmbeddedActorRuntime>());
        services.AddHostedService(sp => sp.GetRequiredService<EmbeddedActorRuntime>());
        services.TryAddSingleton<EmbeddedWorkflowRunner>();
        services.TryAddSingleton<IWorkflowClient>(sp => sp.GetRequiredService<EmbeddedWorkflowRunner>());
        services.AddHostedService(sp => sp.GetRequiredService<EmbeddedWorkflowRunner>());
        services.TryAddSingleton<IServiceInvoker, LoopbackServiceInvoker>();
        return services;
    }
}
