namespace CloudMemory.BuildingBlocks.State;

/// <summary>
/// Key/value state with ETags and TTL: the shape of Dapr's state API, implemented in process
/// (Embedded) and against the sidecar (Dapr). Values are JSON.
/// </summary>
public interface IStateStore
{
    /// <summary>The component name (metadata.name of the Dapr component).</summary>
    string StoreName { get; }

    /// <summary>Reads a key; null when it is missing or expired.</summary>
    Task<StateEntry?> GetAsync(string key, StateConsistency consistency = StateConsistency.Strong, CancellationToken cancellationToken = default);

    /// <summary>Reads many keys; every key requested appears in the answer (missing ones with null data).</summary>
    Task<IReadOnlyList<BulkStateEntry>> GetBulkAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken = default);

    /// <summary>
    /// Writes a key. With an ETag the write succeeds only if the stored ETag matches; with
    /// <see cref="StateConcurrency.FirstWrite"/> and no ETag it succeeds only if the key is absent.
    /// Throws <see cref="StateConcurrencyException"/> otherwise.
    /// </summary>
    Task SaveAsync(string key, ReadOnlyMemory<byte> value, string? etag = null, StateWriteOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>Deletes a key (ETag-checked when one is given). Deleting a missing key succeeds.</summary>
    Task DeleteAsync(string key, string? etag = null, StateWriteOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>Applies all operations or none; throws <see cref="StateConcurrencyException"/> on an ETag conflict.</summary>
    Task ExecuteTransactionAsync(IReadOnlyList<StateOperation> operations, CancellationToken cancellationToken = default);
}

/// <summary>A stored value and its ETag.</summary>
public sealed record StateEntry(string Key, ReadOnlyMemory<byte> Value, string ETag);

/// <summary>One answer of a bulk get; <see cref="Value"/> is null when the key is missing.</summary>
public sealed record BulkStateEntry(string Key, ReadOnlyMemory<byte>? Value, string? ETag, string? Error = null);

/// <summary>Concurrency mode of a write (Dapr <c>options.concurrency</c>).</summary>
public enum StateConcurrency
{
    /// <summary>Last write wins unless an ETag is given.</summary>
    LastWrite,

    /// <summary>First write wins: an ETag (or absence of the key) is required.</summary>
    FirstWrite,
}

/// <summary>Consistency of a read or write (Dapr <c>consistency</c>).</summary>
public enum StateConsistency
{
    /// <summary>Read your writes.</summary>
    Strong,

    /// <summary>Replicas may lag.</summary>
    Eventual,
}

/// <summary>Options of a write.</summary>
/// <param name="Concurrency">first-write or last-write.</param>
/// <param name="Consistency">strong or eventual.</param>
/// <param name="Ttl">Time to live; null keeps the key until deleted.</param>
public sealed record StateWriteOptions(
    StateConcurrency Concurrency = StateConcurrency.LastWrite,
    StateConsistency Consistency = StateConsistency.Strong,
    TimeSpan? Ttl = null);

/// <summary>One operation of a state transaction.</summary>
public sealed record StateOperation(StateOperationKind Kind, string Key, ReadOnlyMemory<byte> Value, string? ETag, StateWriteOptions? Options)
{
    /// <summary>An upsert.</summary>
    public static StateOperation Upsert(string key, ReadOnlyMemory<byte> value, string? etag = null, StateWriteOptions? options = null) =>
        new(StateOperationKind.Upsert, key, value, etag, options);

    /// <summary>A delete.</summary>
    public static StateOperation Delete(string key, string? etag = null) =>
        new(StateOperationKind.Delete, key, ReadOnlyMemory<byte>.Empty, etag, null);
}

/// <summary>Kinds of transaction operations.</summary>
public enum StateOperationKind
{
    /// <summary>Insert or replace.</summary>
    Upsert,

    /// <summary>Remove.</summary>
    Delete,
}

/// <summary>An ETag did not match (or first-write found the key present).</summary>
public sealed class StateConcurrencyException(string key, string message) : Exception(message)
{
    /// <summary>The key whose write was refused.</summary>
    public string Key { get; } = key;
}
