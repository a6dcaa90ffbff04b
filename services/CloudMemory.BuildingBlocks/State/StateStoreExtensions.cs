using System.Text.Json;
using CloudMemory.Contracts;

namespace CloudMemory.BuildingBlocks.State;

/// <summary>Typed helpers over <see cref="IStateStore"/> using CloudMemory's JSON settings.</summary>
public static class StateStoreExtensions
{
    /// <summary>Reads and deserializes a key.</summary>
    public static async Task<(T Value, string ETag)?> GetJsonAsync<T>(this IStateStore store, string key, CancellationToken cancellationToken = default)
    {
        var entry = await store.GetAsync(key, StateConsistency.Strong, cancellationToken);
        if (entry is null)
        {
            return null;
        }
        var value = JsonSerializer.Deserialize<T>(entry.Value.Span, ContractsJson.Options)
            ?? throw new InvalidDataException($"state key '{key}' holds null");
        return (value, entry.ETag);
    }

    /// <summary>Serializes and writes a key.</summary>
    public static Task SaveJsonAsync<T>(this IStateStore store, string key, T value, string? etag = null, StateWriteOptions? options = null, CancellationToken cancellationToken = default) =>
        store.SaveAsync(key, JsonSerializer.SerializeToUtf8Bytes(value, ContractsJson.Options), etag, options, cancellationToken);
}
