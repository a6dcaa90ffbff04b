using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using CloudMemory.BuildingBlocks.State;

namespace CloudMemory.Dapr;

/// <summary><see cref="IStateStore"/> over the sidecar's state API (<c>/v1.0/state/{store}</c>).</summary>
public sealed class DaprStateStore(DaprSidecarClient sidecar, string storeName = DaprComponents.StateStore) : IStateStore
{
    private static readonly MediaTypeHeaderValue JsonMediaType = new("application/json");

    /// <inheritdoc />
    public string StoreName { get; } = storeName;

    private string Root => $"v1.0/state/{System.Uri.EscapeDataString(StoreName)}";

    /// <inheritdoc />
    public async Task<StateEntry?> GetAsync(string key, StateConsistency consistency = StateConsistency.Strong, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        using var response = await sidecar.SendAsync(
            () => new HttpRequestMessage(HttpMethod.Get, sidecar.Uri($"{Root}/{System.Uri.EscapeDataString(key)}?consistency={Consistency(consistency)}")),
            idempotent: true, cancellationToken);
        if (response.StatusCode == HttpStatusCode.NoContent)
        {
            return null; // daprd answers 204 for a missing (or expired) key
        }
        await DaprSidecarClient.EnsureSuccessAsync(response, $"state get '{key}'", cancellationToken);
        var value = await response.Content.ReadAsByteArrayAsync(cancellationToken);
        return new StateEntry(key, value, ReadETag(response) ?? "");
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<BulkStateEntry>> GetBulkAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken = default)
    {
        if (keys.Count == 0)
        {
            return [];
        }
        var body = JsonSerializer.SerializeToUtf8Bytes(new BulkGetRequest(keys, Math.Min(keys.Count, 10)), DaprSidecarClient.Json);
        using var response = await sidecar.SendAsync(() => JsonPost($"{Root}/bulk", body), idempotent: true, cancellationToken);
        await DaprSidecarClient.EnsureSuccessAsync(response, "state bulk get", cancellationToken);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsByteArrayAsync(cancellationToken));
        var byKey = new Dictionary<string, BulkStateEntry>(StringComparer.Ordinal);
        foreach (var item in doc.RootElement.EnumerateArray())
        {
            var key = item.GetProperty("key").GetString()!;
            // The runtime struct names the value "data"; one docs version says "value": accept both.
            var hasData = item.TryGetProperty("data", out var data) || item.TryGetProperty("value", out data);
            ReadOnlyMemory<byte>? value = hasData && data.ValueKind is not JsonValueKind.Null and not JsonValueKind.Undefined
                ? (ReadOnlyMemory<byte>?)Encoding.UTF8.GetBytes(data.GetRawText())
                : null;
            var etag = item.TryGetProperty("etag", out var e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null;
            var error = item.TryGetProperty("error", out var err) && err.ValueKind == JsonValueKind.String && err.GetString() is { Length: > 0 } text ? text : null;
            byKey[key] = new BulkStateEntry(key, value, value is null ? null : etag, error);
        }
        // Keep the caller's order and every key, whatever order (or omissions) the answer has.
        return keys.Select(k => byKey.TryGetValue(k, out var entry) ? entry : new BulkStateEntry(k, null, null)).ToList();
    }

    /// <inheritdoc />
    public async Task SaveAsync(string key, ReadOnlyMemory<byte> value, string? etag = null, StateWriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        var body = WriteJson(w =>
        {
            w.WriteStartArray();
            WriteItem(w, key, value, etag, options, includeValue: true);
            w.WriteEndArray();
        });
        using var response = await sidecar.SendAsync(() => JsonPost(Root, body), idempotent: IsRepeatable(etag, options), cancellationToken);
        if (response.StatusCode == HttpStatusCode.Conflict)
        {
            throw await ConflictAsync(key, response, cancellationToken);
        }
        await DaprSidecarClient.EnsureSuccessAsync(response, $"state save '{key}'", cancellationToken);
    }

    /// <inheritdoc />
    public async Task DeleteAsync(string key, string? etag = null, StateWriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        var query = $"?concurrency={Concurrency(options?.Concurrency ?? StateConcurrency.LastWrite)}&consistency={Consistency(options?.Consistency ?? StateConsistency.Strong)}";
        using var response = await sidecar.SendAsync(() =>
        {
            var request = new HttpRequestMessage(HttpMethod.Delete, sidecar.Uri($"{Root}/{System.Uri.EscapeDataString(key)}{query}"));
            if (etag is not null)
            {
                // daprd ETags are opaque and unquoted; skip HTTP validation so they go out as they came in.
                request.Headers.TryAddWithoutValidation("If-Match", etag);
            }
            return request;
        }, idempotent: etag is null, cancellationToken);
        if (response.StatusCode == HttpStatusCode.Conflict)
        {
            throw await ConflictAsync(key, response, cancellationToken);
        }
        await DaprSidecarClient.EnsureSuccessAsync(response, $"state delete '{key}'", cancellationToken);
    }

    /// <inheritdoc />
    public async Task ExecuteTransactionAsync(IReadOnlyList<StateOperation> operations, CancellationToken cancellationToken = default)
    {
        if (operations.Count == 0)
        {
            return;
        }
        var body = WriteJson(w =>
        {
            w.WriteStartObject();
            w.WriteStartArray("operations");
            foreach (var op in operations)
            {
                w.WriteStartObject();
                w.WriteString("operation", op.Kind == StateOperationKind.Upsert ? "upsert" : "delete");
                w.WritePropertyName("request");
                WriteItem(w, op.Key, op.Value, op.ETag, op.Options, includeValue: op.Kind == StateOperationKind.Upsert);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        });
        var repeatable = operations.All(o => IsRepeatable(o.ETag, o.Options));
        using var response = await sidecar.SendAsync(() => JsonPost($"{Root}/transaction", body), repeatable, cancellationToken);
        if (response.IsSuccessStatusCode)
        {
            return;
        }
        var error = await DaprApiException.FromResponseAsync(response, "state transaction", cancellationToken);
        if (IsTransactionConflict(error))
        {
            var key = operations.FirstOrDefault(o => o.ETag is not null || o.Options?.Concurrency == StateConcurrency.FirstWrite)?.Key ?? operations[0].Key;
            throw new StateConcurrencyException(key, $"state transaction refused by '{StoreName}': {error.DaprMessage}");
        }
        throw error;
    }

    /// <summary>
    /// daprd answers 500 ERR_STATE_TRANSACTION for every transaction failure, ETag conflicts included
    /// (no 409 mapping in the versions read). The store's error text is the only signal, so a
    /// message naming an ETag, a mismatch or a conflict is taken as a concurrency failure, and so is
    /// PostgreSQL's "no item was updated" (older state.postgresql reports ETag conflicts that way,
    /// dapr/components-contrib#2773). A 409 (should a newer daprd add the mapping) is one too.
    /// </summary>
    internal static bool IsTransactionConflict(DaprApiException error) =>
        error.StatusCode == HttpStatusCode.Conflict
        || (error.StatusCode == HttpStatusCode.InternalServerError
            && string.Equals(error.ErrorCode, "ERR_STATE_TRANSACTION", StringComparison.Ordinal)
            && (error.DaprMessage.Contains("etag", StringComparison.OrdinalIgnoreCase)
                || error.DaprMessage.Contains("mismatch", StringComparison.OrdinalIgnoreCase)
                || error.DaprMessage.Contains("conflict", StringComparison.OrdinalIgnoreCase)
                || error.DaprMessage.Contains("no item was updated", StringComparison.OrdinalIgnoreCase)));

    // A write without ETag and first-write is last-write-wins: sending it twice leaves the same result.
    // With an ETag (or first-write) a retry after a lost success would report a false conflict.
    private static bool IsRepeatable(string? etag, StateWriteOptions? options) =>
        etag is null && options?.Concurrency != StateConcurrency.FirstWrite;

    private static void WriteItem(Utf8JsonWriter w, string key, ReadOnlyMemory<byte> value, string? etag, StateWriteOptions? options, bool includeValue)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        w.WriteStartObject();
        w.WriteString("key", key);
        if (includeValue)
        {
            w.WritePropertyName("value");
            w.WriteRawValue(value.Span); // values are JSON; daprd stores exactly what is sent (validated here)
        }
        if (etag is not null)
        {
            w.WriteString("etag", etag);
        }
        if (options?.Ttl is { } ttl)
        {
            w.WriteStartObject("metadata");
            // daprd reads metadata as a string map: the TTL must be a string, in whole seconds (at least 1).
            w.WriteString("ttlInSeconds", Math.Max(1, (long)Math.Ceiling(ttl.TotalSeconds)).ToString(CultureInfo.InvariantCulture));
            w.WriteEndObject();
        }
        if (options is not null || etag is not null)
        {
            w.WriteStartObject("options");
            w.WriteString("concurrency", Concurrency(options?.Concurrency ?? StateConcurrency.LastWrite));
            w.WriteString("consistency", Consistency(options?.Consistency ?? StateConsistency.Strong));
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    private HttpRequestMessage JsonPost(string relative, byte[] body)
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = JsonMediaType;
        return new HttpRequestMessage(HttpMethod.Post, sidecar.Uri(relative)) { Content = content };
    }

    private static byte[] WriteJson(Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            write(writer);
        }
        return buffer.ToArray();
    }

    private static string? ReadETag(HttpResponseMessage response) =>
        response.Headers.NonValidated.TryGetValues("ETag", out var values) ? values.FirstOrDefault() : null;

    private async Task<StateConcurrencyException> ConflictAsync(string key, HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var error = await DaprApiException.FromResponseAsync(response, $"state write '{key}'", cancellationToken);
        return new StateConcurrencyException(key, $"ETag mismatch for '{key}' in '{StoreName}': {error.DaprMessage}");
    }

    private static string Concurrency(StateConcurrency value) => value == StateConcurrency.FirstWrite ? "first-write" : "last-write";

    private static string Consistency(StateConsistency value) => value == StateConsistency.Eventual ? "eventual" : "strong";

    private sealed record BulkGetRequest(IReadOnlyList<string> Keys, int Parallelism);
}
