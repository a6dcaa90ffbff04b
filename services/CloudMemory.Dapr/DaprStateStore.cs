using System.Globalization;
using CloudMemory.BuildingBlocks.State;
using Dapr;
using Dapr.Client;
using Grpc.Core;

namespace CloudMemory.Dapr;

/// <summary>
/// <see cref="IStateStore"/> over the official <see cref="DaprClient"/> (gRPC state API). Values are
/// the caller's JSON bytes, passed through unchanged; ETag mismatches become <see cref="StateConcurrencyException"/>.
/// </summary>
public sealed class DaprStateStore(DaprClient dapr, string storeName = DaprComponents.StateStore) : IStateStore
{
    /// <summary>Metadata key of a per-item time to live (whole seconds, as a string).</summary>
    public const string TtlMetadataKey = "ttlInSeconds";

    /// <inheritdoc />
    public string StoreName { get; } = storeName;

    /// <inheritdoc />
    public async Task<StateEntry?> GetAsync(string key, StateConsistency consistency = StateConsistency.Strong, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        var (value, etag) = await dapr.GetByteStateAndETagAsync(StoreName, key, Consistency(consistency), cancellationToken: cancellationToken);
        // daprd answers a missing (or expired) key with empty data; stored values are JSON, never empty.
        return value.IsEmpty ? null : new StateEntry(key, value, etag ?? "");
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<BulkStateEntry>> GetBulkAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken = default)
    {
        if (keys.Count == 0)
        {
            return [];
        }
        var items = await dapr.GetBulkStateAsync(StoreName, keys, parallelism: Math.Min(keys.Count, 10), cancellationToken: cancellationToken);
        var byKey = new Dictionary<string, BulkStateEntry>(StringComparer.Ordinal);
        foreach (var item in items)
        {
            byKey[item.Key] = string.IsNullOrEmpty(item.Value)
                ? new BulkStateEntry(item.Key, null, null)
                : new BulkStateEntry(item.Key, System.Text.Encoding.UTF8.GetBytes(item.Value), item.ETag);
        }
        // daprd fetches in parallel: keep the caller's order and every key, whatever the answer holds.
        return keys.Select(k => byKey.TryGetValue(k, out var entry) ? entry : new BulkStateEntry(k, null, null)).ToList();
    }

    /// <inheritdoc />
    public async Task SaveAsync(string key, ReadOnlyMemory<byte> value, string? etag = null, StateWriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        try
        {
            if (etag is null)
            {
                await dapr.SaveByteStateAsync(StoreName, key, value, Options(options), Metadata(options), cancellationToken);
            }
            else if (!await dapr.TrySaveByteStateAsync(StoreName, key, value, etag, Options(options, etag), Metadata(options), cancellationToken))
            {
                throw new StateConcurrencyException(key, $"ETag mismatch for '{key}' in '{StoreName}'");
            }
        }
        catch (DaprException ex) when (IsConflict(ex))
        {
            // first-write without an ETag on a key that exists
            throw new StateConcurrencyException(key, $"'{key}' in '{StoreName}' was written first by someone else: {Detail(ex)}");
        }
    }

    /// <inheritdoc />
    public async Task DeleteAsync(string key, string? etag = null, StateWriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        if (etag is null)
        {
            await dapr.DeleteStateAsync(StoreName, key, Options(options), cancellationToken: cancellationToken);
        }
        else if (!await dapr.TryDeleteStateAsync(StoreName, key, etag, Options(options, etag), cancellationToken: cancellationToken))
        {
            throw new StateConcurrencyException(key, $"ETag mismatch deleting '{key}' in '{StoreName}'");
        }
    }

    /// <inheritdoc />
    public async Task ExecuteTransactionAsync(IReadOnlyList<StateOperation> operations, CancellationToken cancellationToken = default)
    {
        if (operations.Count == 0)
        {
            return;
        }
        var requests = operations.Select(op => new StateTransactionRequest(
            op.Key,
            op.Kind == StateOperationKind.Upsert ? op.Value.ToArray() : null,
            op.Kind == StateOperationKind.Upsert ? StateOperationType.Upsert : StateOperationType.Delete,
            op.ETag,
            Metadata(op.Options),
            Options(op.Options, op.ETag))).ToList();
        try
        {
            await dapr.ExecuteStateTransactionAsync(StoreName, requests, cancellationToken: cancellationToken);
        }
        catch (DaprException ex) when (IsTransactionConflict(ex.InnerException as RpcException))
        {
            var key = operations.FirstOrDefault(o => o.ETag is not null || o.Options?.Concurrency == StateConcurrency.FirstWrite)?.Key ?? operations[0].Key;
            throw new StateConcurrencyException(key, $"state transaction refused by '{StoreName}': {Detail(ex)}");
        }
    }

    /// <summary>
    /// daprd answers a failed transaction with ERR_STATE_TRANSACTION (gRPC Internal), ETag conflicts
    /// included, so the store's message is the only signal: one naming an ETag, a mismatch or a
    /// conflict is a concurrency failure, and so is PostgreSQL's "no item was updated" (older
    /// state.postgresql, dapr/components-contrib#2773). Aborted (daprd's code for an ETag mismatch on
    /// save and delete) is one too, should a newer daprd map transactions the same way.
    /// </summary>
    internal static bool IsTransactionConflict(RpcException? error) =>
        error is not null
        && (error.StatusCode == StatusCode.Aborted
            || (error.StatusCode == StatusCode.Internal
                && (error.Status.Detail.Contains("etag", StringComparison.OrdinalIgnoreCase)
                    || error.Status.Detail.Contains("mismatch", StringComparison.OrdinalIgnoreCase)
                    || error.Status.Detail.Contains("conflict", StringComparison.OrdinalIgnoreCase)
                    || error.Status.Detail.Contains("no item was updated", StringComparison.OrdinalIgnoreCase))));

    // daprd maps an ETag mismatch (and first-write finding the key) on save and delete to Aborted.
    private static bool IsConflict(DaprException error) => error.InnerException is RpcException { StatusCode: StatusCode.Aborted };

    private static string Detail(DaprException error) => (error.InnerException as RpcException)?.Status.Detail ?? error.Message;

    private static ConsistencyMode Consistency(StateConsistency value) =>
        value == StateConsistency.Eventual ? ConsistencyMode.Eventual : ConsistencyMode.Strong;

    // An ETag alone means first-write semantics in daprd's reading; say so explicitly, as before.
    private static StateOptions? Options(StateWriteOptions? options, string? etag = null) =>
        options is null && etag is null
            ? null
            : new StateOptions
            {
                Concurrency = (options?.Concurrency ?? StateConcurrency.LastWrite) == StateConcurrency.FirstWrite ? ConcurrencyMode.FirstWrite : ConcurrencyMode.LastWrite,
                Consistency = Consistency(options?.Consistency ?? StateConsistency.Strong),
            };

    // daprd reads metadata as a string map: the TTL is whole seconds (at least 1) written as a string.
    private static Dictionary<string, string>? Metadata(StateWriteOptions? options) =>
        options?.Ttl is { } ttl
            ? new Dictionary<string, string> { [TtlMetadataKey] = Math.Max(1, (long)Math.Ceiling(ttl.TotalSeconds)).ToString(CultureInfo.InvariantCulture) }
            : null;
}
