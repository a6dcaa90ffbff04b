using CloudMemory.BuildingBlocks.State;

namespace CloudMemory.BuildingBlocks.Embedded;

/// <summary>
/// In-process state store with Dapr's semantics: ETags that change on every write, first-write
/// wins, TTL measured on the injected <see cref="TimeProvider"/>, all-or-nothing transactions.
/// </summary>
public sealed class InMemoryStateStore(TimeProvider timeProvider, string storeName = "statestore") : IStateStore
{
    private readonly Dictionary<string, Item> _items = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private long _etagCounter;
    private long _writesSinceSweep;

    /// <inheritdoc />
    public string StoreName { get; } = storeName;

    /// <summary>Live keys (expired ones excluded), for diagnostics and tests.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                var now = timeProvider.GetUtcNow();
                return _items.Values.Count(i => !i.IsExpired(now));
            }
        }
    }

    /// <inheritdoc />
    public Task<StateEntry?> GetAsync(string key, StateConsistency consistency = StateConsistency.Strong, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return Task.FromResult(TryGetLive(key, out var item) ? new StateEntry(key, item.Value, item.ETag) : null);
        }
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<BulkStateEntry>> GetBulkAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            var result = keys.Select(k => TryGetLive(k, out var item)
                ? new BulkStateEntry(k, item.Value, item.ETag)
                : new BulkStateEntry(k, null, null)).ToList();
            return Task.FromResult<IReadOnlyList<BulkStateEntry>>(result);
        }
    }

    /// <inheritdoc />
    public Task SaveAsync(string key, ReadOnlyMemory<byte> value, string? etag = null, StateWriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            Check(StateOperation.Upsert(key, value, etag, options));
            Apply(StateOperation.Upsert(key, value.ToArray(), etag, options));
        }
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task DeleteAsync(string key, string? etag = null, StateWriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            var op = StateOperation.Delete(key, etag);
            Check(op);
            Apply(op);
        }
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task ExecuteTransactionAsync(IReadOnlyList<StateOperation> operations, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            foreach (var op in operations)
            {
                Check(op);
            }
            foreach (var op in operations)
            {
                Apply(op with { Value = op.Value.ToArray() });
            }
        }
        return Task.CompletedTask;
    }

    private void Check(StateOperation op)
    {
        ArgumentException.ThrowIfNullOrEmpty(op.Key);
        var exists = TryGetLive(op.Key, out var current);
        if (op.ETag is not null)
        {
            if (!exists)
            {
                // Dapr: an ETag on a delete of a missing key is a conflict too.
                throw new StateConcurrencyException(op.Key, $"ETag mismatch for '{op.Key}': the key does not exist");
            }
            if (!string.Equals(current.ETag, op.ETag, StringComparison.Ordinal))
            {
                throw new StateConcurrencyException(op.Key, $"ETag mismatch for '{op.Key}'");
            }
        }
        else if (op.Kind == StateOperationKind.Upsert && op.Options?.Concurrency == StateConcurrency.FirstWrite && exists)
        {
            throw new StateConcurrencyException(op.Key, $"first-write: '{op.Key}' already exists");
        }
    }

    private void Apply(StateOperation op)
    {
        if (op.Kind == StateOperationKind.Delete)
        {
            _items.Remove(op.Key);
            return;
        }
        var expires = op.Options?.Ttl is { } ttl ? timeProvider.GetUtcNow() + ttl : (DateTimeOffset?)null;
        _items[op.Key] = new Item(op.Value, (++_etagCounter).ToString(System.Globalization.CultureInfo.InvariantCulture), expires);
        if (++_writesSinceSweep >= 4096)
        {
            Sweep();
        }
    }

    private bool TryGetLive(string key, out Item item)
    {
        if (_items.TryGetValue(key, out item!))
        {
            if (!item.IsExpired(timeProvider.GetUtcNow()))
            {
                return true;
            }
            _items.Remove(key);
        }
        return false;
    }

    // Expired keys nobody reads again are removed in batches so memory does not grow without bound.
    private void Sweep()
    {
        _writesSinceSweep = 0;
        var now = timeProvider.GetUtcNow();
        foreach (var key in _items.Where(p => p.Value.IsExpired(now)).Select(p => p.Key).ToList())
        {
            _items.Remove(key);
        }
    }

    private sealed record Item(ReadOnlyMemory<byte> Value, string ETag, DateTimeOffset? ExpiresAt)
    {
        public bool IsExpired(DateTimeOffset now) => ExpiresAt is { } at && now >= at;
    }
}
