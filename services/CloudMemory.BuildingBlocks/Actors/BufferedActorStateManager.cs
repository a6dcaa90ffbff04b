using System.Text.Json;

namespace CloudMemory.BuildingBlocks.Actors;

/// <summary>A buffered change of one actor state key.</summary>
public readonly record struct ActorStateChange(bool Delete, byte[] Value);

/// <summary>
/// The state manager both runtimes share: reads go through (after the call's own buffered writes),
/// writes are buffered and committed together after the actor method returns; a failed method's
/// changes are discarded. Runtimes supply the read and the all-or-nothing commit.
/// </summary>
public abstract class BufferedActorStateManager(JsonSerializerOptions json) : IActorStateManager
{
    private readonly Dictionary<string, ActorStateChange> _pending = new(StringComparer.Ordinal);

    /// <summary>Reads a stored value; null when the key is missing.</summary>
    protected abstract Task<byte[]?> ReadAsync(string name, CancellationToken cancellationToken);

    /// <summary>Writes all changes in one transaction.</summary>
    protected abstract Task CommitAsync(IReadOnlyDictionary<string, ActorStateChange> changes, CancellationToken cancellationToken);

    /// <inheritdoc />
    public async Task<(bool Found, T Value)> TryGetStateAsync<T>(string name, CancellationToken cancellationToken = default)
    {
        var bytes = _pending.TryGetValue(name, out var pending)
            ? (pending.Delete ? null : pending.Value)
            : await ReadAsync(name, cancellationToken);
        return bytes is null || bytes.Length == 0 ? (false, default!) : (true, JsonSerializer.Deserialize<T>(bytes, json)!);
    }

    /// <inheritdoc />
    public Task SetStateAsync<T>(string name, T value, CancellationToken cancellationToken = default)
    {
        _pending[name] = new ActorStateChange(false, JsonSerializer.SerializeToUtf8Bytes(value, json));
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task RemoveStateAsync(string name, CancellationToken cancellationToken = default)
    {
        _pending[name] = new ActorStateChange(true, []);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public async Task SaveStateAsync(CancellationToken cancellationToken = default)
    {
        if (_pending.Count == 0)
        {
            return;
        }
        await CommitAsync(_pending, cancellationToken);
        _pending.Clear();
    }

    /// <summary>Drops buffered changes (the call that made them failed).</summary>
    public void Discard() => _pending.Clear();
}
