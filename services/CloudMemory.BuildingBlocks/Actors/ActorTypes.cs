using Dapr.Actors.Runtime;
using Microsoft.Extensions.Options;

namespace CloudMemory.BuildingBlocks.Actors;

/// <summary>The actor types this process hosts (registered with <see cref="ActorServiceCollectionExtensions.AddActor{TActor}"/>).</summary>
public sealed class ActorTypes(IOptions<ActorRuntimeOptions> options)
{
    /// <summary>The registrations, keyed by actor type name.</summary>
    public IReadOnlyDictionary<string, ActorRegistration> Registered { get; } =
        options.Value.Actors.ToDictionary(r => r.Type.ActorTypeName, StringComparer.Ordinal);

    /// <summary>True when <paramref name="actorType"/> is hosted in this process.</summary>
    public bool IsHosted(string actorType) => Registered.ContainsKey(actorType);
}
