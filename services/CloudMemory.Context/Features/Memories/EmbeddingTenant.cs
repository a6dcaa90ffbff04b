namespace CloudMemory.Context.Features.Memories;

/// <summary>
/// The tenant whose texts an embedder call is about. Embedders that learn corpus statistics (the
/// local embedder's document frequencies) keep them per tenant under this scope, so one tenant's
/// writes never move another tenant's scores. Outside a scope the statistics are a shared "" bucket.
/// </summary>
public static class EmbeddingTenant
{
    private static readonly AsyncLocal<string?> CurrentTenant = new();

    /// <summary>The tenant of the calls in this async flow, or null.</summary>
    public static string? Current => CurrentTenant.Value;

    /// <summary>Makes <paramref name="tenantId"/> current until the returned scope is disposed.</summary>
    public static IDisposable Use(string tenantId)
    {
        var previous = CurrentTenant.Value;
        CurrentTenant.Value = tenantId;
        return new Scope(previous);
    }

    private sealed class Scope(string? previous) : IDisposable
    {
        public void Dispose() => CurrentTenant.Value = previous;
    }
}
