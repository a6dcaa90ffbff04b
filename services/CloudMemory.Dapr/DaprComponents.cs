namespace CloudMemory.Dapr;

/// <summary>
/// Names shared with <c>components/*.yaml</c> and <c>dapr.yaml</c>; a test checks that each one
/// exists there, so renaming a component breaks the build instead of production.
/// </summary>
public static class DaprComponents
{
    /// <summary>metadata.name of the state store (also the actor state store).</summary>
    public const string StateStore = "statestore";

    /// <summary>metadata.name of the pub/sub component.</summary>
    public const string PubSub = "pubsub";

    /// <summary>metadata.name of the Dapr configuration (tracing).</summary>
    public const string Configuration = "cloudmemory-config";

    /// <summary>metadata.name of the resiliency policy set.</summary>
    public const string Resiliency = "cloudmemory-resiliency";

    /// <summary>The Dapr app ids of the four services.</summary>
    public static IReadOnlyList<string> AppIds { get; } = ["session", "context", "trace", "feedback"];
}
