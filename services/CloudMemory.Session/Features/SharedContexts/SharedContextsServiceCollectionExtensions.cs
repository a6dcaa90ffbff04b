using System.Text.Json;
using CloudMemory.BuildingBlocks.Actors;
using CloudMemory.BuildingBlocks.Embedded;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.Contracts;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace CloudMemory.Session.Features.SharedContexts;

/// <summary>Registers shared contexts in the session app.</summary>
public static class SharedContextsServiceCollectionExtensions
{
    /// <summary>Route the <c>shared-context-changed</c> subscription is delivered to.</summary>
    public const string ChangedRoute = "/events/session/shared-context-changed";

    /// <summary>
    /// The actor, the store, the live feed, and (with a real broker, i.e. on Dapr) the subscription
    /// that feeds it changes made on other replicas. The embedded host is one process: the actor
    /// hands every change to the feed itself, so a second, redundant path is not registered.
    /// </summary>
    public static IServiceCollection AddSharedContexts(this IServiceCollection services)
    {
        services.TryAddSingleton<SharedContextStore>();
        services.TryAddSingleton<SharedContextFeed>();
        services.AddActor<SharedContextActor>();
        if (services.Any(d => d.ServiceType == typeof(InMemoryEventBus)))
        {
            return services;
        }
        services.AddSingleton(sp =>
        {
            var feed = sp.GetRequiredService<SharedContextFeed>();
            return new Subscription(SharedContextTopics.Changed, ChangedRoute, (cloudEvent, _) =>
            {
                // Followers order by seq and skip what they have; a malformed event is dropped.
                var change = cloudEvent.Data.ValueKind == JsonValueKind.Object
                    ? cloudEvent.Data.Deserialize<SharedContextChanged>(ContractsJson.Options)
                    : null;
                if (change is null || change.ContextId.Length == 0)
                {
                    return Task.FromResult(DeliveryStatus.Drop);
                }
                feed.Publish(change);
                return Task.FromResult(DeliveryStatus.Success);
            });
        });
        return services;
    }
}
