using System.IO.Compression;
using System.Text.Json;
using CloudMemory.BuildingBlocks.State;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Sessions;

namespace CloudMemory.Session.Features.Snapshots;

/// <summary>
/// Snapshots of one conversation in the state store (so they work on both runtimes): an index key
/// listing them oldest first, and one key per snapshot. The newest <c>keepUncompressed</c> are
/// stored as JSON; older ones Brotli-compressed (re-encoded in the same transaction that adds a
/// snapshot), and read back transparently. Beyond <c>maxKept</c> the oldest are deleted. Only the
/// conversation actor writes here, one call at a time.
/// </summary>
public sealed class SnapshotStore(IStateStore store, int keepUncompressed, int maxKept)
{
    private const string JsonEncoding = "json";
    private const string BrotliEncoding = "br";

    /// <summary>The index key of a conversation's snapshots.</summary>
    public static string IndexKey(string tenantId, string conversationId) => $"session_snapshots:{tenantId}:{conversationId}";

    /// <summary>The key of one snapshot.</summary>
    public static string SnapshotKey(string tenantId, string conversationId, string snapshotId) => $"session_snapshot:{tenantId}:{conversationId}:{snapshotId}";

    /// <summary>The snapshots, oldest first.</summary>
    public async Task<IReadOnlyList<SnapshotInfo>> ListAsync(string tenantId, string conversationId, CancellationToken cancellationToken = default) =>
        (await ReadIndexAsync(tenantId, conversationId, cancellationToken)).Index.Snapshots;

    /// <summary>One snapshot (decompressed when stored compressed), or null.</summary>
    public async Task<SessionSnapshot?> ReadAsync(string tenantId, string conversationId, string snapshotId, CancellationToken cancellationToken = default)
    {
        var entry = await store.GetAsync(SnapshotKey(tenantId, conversationId, snapshotId), StateConsistency.Strong, cancellationToken);
        return entry is null ? null : Decode(entry.Value.Span);
    }

    /// <summary>
    /// Stores <paramref name="snapshot"/> under the next id (its own id is ignored), compresses the
    /// ones that fall out of the newest <c>keepUncompressed</c>, drops those beyond <c>maxKept</c>:
    /// one transaction. Returns the stored entry.
    /// </summary>
    public async Task<SnapshotInfo> AddAsync(string tenantId, string conversationId, SessionSnapshot snapshot, CancellationToken cancellationToken = default)
    {
        var (index, etag) = await ReadIndexAsync(tenantId, conversationId, cancellationToken);
        var id = $"snap-{index.NextNumber}";
        var stored = snapshot with { SnapshotId = id, ConversationId = conversationId, Compressed = false };
        var raw = JsonSerializer.SerializeToUtf8Bytes(stored, ContractsJson.Options);
        var operations = new List<StateOperation> { StateOperation.Upsert(SnapshotKey(tenantId, conversationId, id), Envelope(raw, compress: false)) };
        var info = new SnapshotInfo(id, stored.CreatedAt, stored.Version, stored.Label, stored.Automatic, Compressed: false, stored.LogSequence,
            stored.Session.FlowContext.TurnCount, raw.Length, raw.Length);

        var list = index.Snapshots.Append(info).ToList();
        while (list.Count > maxKept)
        {
            operations.Add(StateOperation.Delete(SnapshotKey(tenantId, conversationId, list[0].SnapshotId)));
            list.RemoveAt(0);
        }
        for (var i = 0; i < list.Count - keepUncompressed; i++)
        {
            if (list[i].Compressed)
            {
                continue;
            }
            var key = SnapshotKey(tenantId, conversationId, list[i].SnapshotId);
            var old = await store.GetAsync(key, StateConsistency.Strong, cancellationToken);
            if (old is null)
            {
                continue;
            }
            var json = RawJson(old.Value.Span);
            var packed = Envelope(json, compress: true);
            operations.Add(StateOperation.Upsert(key, packed));
            list[i] = list[i] with { Compressed = true, StoredBytes = packed.Length };
        }
        operations.Add(StateOperation.Upsert(IndexKey(tenantId, conversationId),
            JsonSerializer.SerializeToUtf8Bytes(new SnapshotIndex(index.NextNumber + 1, list), ContractsJson.Options), etag));
        await store.ExecuteTransactionAsync(operations, cancellationToken);
        return info;
    }

    /// <summary>Brotli of a snapshot's JSON (also what the benchmark measures).</summary>
    public static byte[] Compress(ReadOnlySpan<byte> json)
    {
        using var output = new MemoryStream();
        using (var brotli = new BrotliStream(output, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            brotli.Write(json);
        }
        return output.ToArray();
    }

    /// <summary>The JSON a <see cref="Compress"/> result came from.</summary>
    public static byte[] Decompress(byte[] packed)
    {
        using var input = new MemoryStream(packed);
        using var brotli = new BrotliStream(input, CompressionMode.Decompress);
        using var output = new MemoryStream();
        brotli.CopyTo(output);
        return output.ToArray();
    }

    private async Task<(SnapshotIndex Index, string? ETag)> ReadIndexAsync(string tenantId, string conversationId, CancellationToken cancellationToken)
    {
        var stored = await store.GetJsonAsync<SnapshotIndex>(IndexKey(tenantId, conversationId), cancellationToken);
        return stored is { } s ? (s.Value, s.ETag) : (new SnapshotIndex(1, []), null);
    }

    // The state store holds JSON: a compressed snapshot is base64 inside a small envelope.
    private static byte[] Envelope(byte[] json, bool compress) => compress
        ? JsonSerializer.SerializeToUtf8Bytes(new StoredSnapshot(BrotliEncoding, null, Convert.ToBase64String(Compress(json))), ContractsJson.Options)
        : JsonSerializer.SerializeToUtf8Bytes(new StoredSnapshot(JsonEncoding, JsonSerializer.Deserialize<JsonElement>(json), null), ContractsJson.Options);

    private static byte[] RawJson(ReadOnlySpan<byte> stored)
    {
        var envelope = JsonSerializer.Deserialize<StoredSnapshot>(stored, ContractsJson.Options)
            ?? throw new InvalidDataException("empty snapshot entry");
        return envelope.Encoding switch
        {
            JsonEncoding => JsonSerializer.SerializeToUtf8Bytes(envelope.Snapshot!.Value, ContractsJson.Options),
            BrotliEncoding => Decompress(Convert.FromBase64String(envelope.Data!)),
            _ => throw new InvalidDataException($"unknown snapshot encoding '{envelope.Encoding}'"),
        };
    }

    private static SessionSnapshot Decode(ReadOnlySpan<byte> stored)
    {
        var envelope = JsonSerializer.Deserialize<StoredSnapshot>(stored, ContractsJson.Options)!;
        var snapshot = JsonSerializer.Deserialize<SessionSnapshot>(RawJson(stored), ContractsJson.Options)!;
        return snapshot with { Compressed = envelope.Encoding == BrotliEncoding };
    }

    private sealed record StoredSnapshot(string Encoding, JsonElement? Snapshot, string? Data);

    private sealed record SnapshotIndex(int NextNumber, List<SnapshotInfo> Snapshots);
}
