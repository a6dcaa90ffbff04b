using System.Text.Json;
using CloudMemory.BuildingBlocks.State;
using Dapr.Actors.Runtime;

namespace CloudMemory.BuildingBlocks.Embedded;

/// <summary>
/// The Dapr SDK's <see cref="IActorStateManager"/> for the embedded actor host, over the state port:
/// keys live under <c>{type}||{id}||{name}</c> as daprd keeps them, reads go through a per-activation
/// cache, changes are buffered and committed in one transaction by <see cref="SaveStateAsync"/>
/// (the host calls it after each successful turn) and dropped by <see cref="ClearCacheAsync"/>
/// (after a failed one). The semantics of each method are the SDK's ActorStateManager's.
/// </summary>
public sealed class StoreActorStateManager(IStateStore store, string keyPrefix, JsonSerializerOptions json) : IActorStateManager
{
    private readonly Dictionary<string, Entry> _cache = new(StringComparer.Ordinal);

    private enum Change
    {
        None,
        Add,
        Update,
        Remove,
    }

    private sealed class Entry(object? value, Change change, TimeSpan? ttl)
    {
        public object? Value { get; set; } = value;
        public Change Change { get; set; } = change;
        public TimeSpan? Ttl { get; set; } = ttl;
    }

    /// <inheritdoc />
    public async Task AddStateAsync<T>(string stateName, T value, CancellationToken cancellationToken = default)
    {
        if (!await TryAddStateAsync(stateName, value, cancellationToken))
        {
            throw new InvalidOperationException($"Actor state '{stateName}' already exists.");
        }
    }

    /// <inheritdoc />
    public async Task AddStateAsync<T>(string stateName, T value, TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        if (!await TryAddStateAsync(stateName, value, ttl, cancellationToken))
        {
            throw new InvalidOperationException($"Actor state '{stateName}' already exists.");
        }
    }

    /// <inheritdoc />
    public async Task<T> GetStateAsync<T>(string stateName, CancellationToken cancellationToken = default)
    {
        var found = await TryGetStateAsync<T>(stateName, cancellationToken);
        return found.HasValue ? found.Value : throw new KeyNotFoundException($"Actor state '{stateName}' was not found.");
    }

    /// <inheritdoc />
    public Task SetStateAsync<T>(string stateName, T value, CancellationToken cancellationToken = default) =>
        SetAsync(stateName, value, ttl: null, cancellationToken);

    /// <inheritdoc />
    public Task SetStateAsync<T>(string stateName, T value, TimeSpan ttl, CancellationToken cancellationToken = default) =>
        SetAsync(stateName, value, ttl, cancellationToken);

    /// <inheritdoc />
    public async Task RemoveStateAsync(string stateName, CancellationToken cancellationToken = default)
    {
        if (!await TryRemoveStateAsync(stateName, cancellationToken))
        {
            throw new KeyNotFoundException($"Actor state '{stateName}' was not found.");
        }
    }

    /// <inheritdoc />
    public Task<bool> TryAddStateAsync<T>(string stateName, T value, CancellationToken cancellationToken = default) =>
        TryAddAsync(stateName, value, ttl: null, cancellationToken);

    /// <inheritdoc />
    public Task<bool> TryAddStateAsync<T>(string stateName, T value, TimeSpan ttl, CancellationToken cancellationToken = default) =>
        TryAddAsync(stateName, value, ttl, cancellationToken);

    /// <inheritdoc />
    public async Task<ConditionalValue<T>> TryGetStateAsync<T>(string stateName, CancellationToken cancellationToken = default)
    {
        var entry = await LoadAsync<T>(stateName, cancellationToken);
        return entry is null || entry.Change == Change.Remove ? default : new ConditionalValue<T>(true, (T)entry.Value!);
    }

    /// <inheritdoc />
    public async Task<bool> TryRemoveStateAsync(string stateName, CancellationToken cancellationToken = default)
    {
        var entry = await LoadAsync<object>(stateName, cancellationToken, parse: false);
        if (entry is null || entry.Change == Change.Remove)
        {
            return false;
        }
        if (entry.Change == Change.Add)
        {
            _cache.Remove(stateName); // never stored: nothing to delete
        }
        else
        {
            entry.Change = Change.Remove;
        }
        return true;
    }

    /// <inheritdoc />
    public async Task<bool> ContainsStateAsync(string stateName, CancellationToken cancellationToken = default) =>
        await LoadAsync<object>(stateName, cancellationToken, parse: false) is { Change: not Change.Remove };

    /// <inheritdoc />
    public async Task<T> GetOrAddStateAsync<T>(string stateName, T value, CancellationToken cancellationToken = default)
    {
        var found = await TryGetStateAsync<T>(stateName, cancellationToken);
        if (found.HasValue)
        {
            return found.Value;
        }
        await SetAsync(stateName, value, ttl: null, cancellationToken);
        return value;
    }

    /// <inheritdoc />
    public async Task<T> GetOrAddStateAsync<T>(string stateName, T value, TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        var found = await TryGetStateAsync<T>(stateName, cancellationToken);
        if (found.HasValue)
        {
            return found.Value;
        }
        await SetAsync(stateName, value, ttl, cancellationToken);
        return value;
    }

    /// <inheritdoc />
    public Task<T> AddOrUpdateStateAsync<T>(string stateName, T addValue, Func<string, T, T> updateValueFactory, CancellationToken cancellationToken = default) =>
        AddOrUpdateAsync(stateName, addValue, updateValueFactory, ttl: null, cancellationToken);

    /// <inheritdoc />
    public Task<T> AddOrUpdateStateAsync<T>(string stateName, T addValue, Func<string, T, T> updateValueFactory, TimeSpan ttl, CancellationToken cancellationToken = default) =>
        AddOrUpdateAsync(stateName, addValue, updateValueFactory, ttl, cancellationToken);

    /// <inheritdoc />
    public Task ClearCacheAsync(CancellationToken cancellationToken = default)
    {
        _cache.Clear();
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task UnloadStateAsync(string stateName, UnloadStateOptions? options = null, CancellationToken cancellationToken = default)
    {
        if (_cache.TryGetValue(stateName, out var entry) && entry.Change != Change.None && options?.AllowUnloadingWhenStateModified != true)
        {
            throw new InvalidOperationException($"Actor state '{stateName}' has unsaved changes.");
        }
        _cache.Remove(stateName);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public async Task SaveStateAsync(CancellationToken cancellationToken = default)
    {
        var changed = _cache.Where(p => p.Value.Change != Change.None).ToList();
        if (changed.Count == 0)
        {
            return;
        }
        await store.ExecuteTransactionAsync(changed.Select(p => p.Value.Change == Change.Remove
            ? StateOperation.Delete(keyPrefix + p.Key)
            : StateOperation.Upsert(keyPrefix + p.Key, Serialize(p.Value.Value),
                options: p.Value.Ttl is { } ttl ? new StateWriteOptions(Ttl: ttl) : null)).ToList(), cancellationToken);
        foreach (var (name, entry) in changed)
        {
            if (entry.Change == Change.Remove)
            {
                _cache.Remove(name);
            }
            else
            {
                entry.Change = Change.None;
            }
        }
    }

    private async Task<bool> TryAddAsync<T>(string stateName, T value, TimeSpan? ttl, CancellationToken cancellationToken)
    {
        var entry = await LoadAsync<T>(stateName, cancellationToken);
        if (entry is { Change: not Change.Remove })
        {
            return false;
        }
        _cache[stateName] = new Entry(value, entry is null ? Change.Add : Change.Update, ttl);
        return true;
    }

    private async Task SetAsync<T>(string stateName, T value, TimeSpan? ttl, CancellationToken cancellationToken)
    {
        var entry = await LoadAsync<T>(stateName, cancellationToken, parse: false);
        _cache[stateName] = new Entry(value, entry is null || entry.Change == Change.Add ? Change.Add : Change.Update, ttl);
    }

    private async Task<T> AddOrUpdateAsync<T>(string stateName, T addValue, Func<string, T, T> update, TimeSpan? ttl, CancellationToken cancellationToken)
    {
        var found = await TryGetStateAsync<T>(stateName, cancellationToken);
        var value = found.HasValue ? update(stateName, found.Value) : addValue;
        await SetAsync(stateName, value, ttl, cancellationToken);
        return value;
    }

    // The cached entry, read from the store on first use; null when the key exists nowhere.
    private async Task<Entry?> LoadAsync<T>(string stateName, CancellationToken cancellationToken, bool parse = true)
    {
        if (_cache.TryGetValue(stateName, out var cached))
        {
            if (parse && cached.Value is JsonElement raw && typeof(T) != typeof(JsonElement))
            {
                cached.Value = raw.Deserialize<T>(json); // read before its type was known (Contains/Remove)
            }
            return cached;
        }
        var stored = await store.GetAsync(keyPrefix + stateName, StateConsistency.Strong, cancellationToken);
        if (stored is null)
        {
            return null;
        }
        var entry = new Entry(parse ? JsonSerializer.Deserialize<T>(stored.Value.Span, json) : JsonSerializer.Deserialize<JsonElement>(stored.Value.Span, json), Change.None, null);
        _cache[stateName] = entry;
        return entry;
    }

    private ReadOnlyMemory<byte> Serialize(object? value) =>
        value is null ? "null"u8.ToArray() : JsonSerializer.SerializeToUtf8Bytes(value, value.GetType(), json);
}
