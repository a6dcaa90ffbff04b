using System.Collections.Concurrent;
using System.Text.Json;
using CloudMemory.BuildingBlocks.State;
using CloudMemory.Contracts;

namespace CloudMemory.Session.Features.SharedContexts;

/// <summary>
/// Where shared contexts live in the state store: one key per context (the document) and one key
/// per change-log entry, written together in one transaction by the actor. Readers (GET, the
/// change feed) read the store directly: every write is one atomic transaction, so a reader sees a
/// document and the entries up to its seq, never half a change.
/// </summary>
public sealed partial class SharedContextStore(IStateStore store)
{
    /// <summary>Entries read per bulk request.</summary>
    public const int PageSize = 100;

    // '~' never appears in a valid id, so tenant, id and seq cannot run into each other.
    /// <summary>Key of the document.</summary>
    public static string DocumentKey(string tenantId, string id) => $"shared_context~{tenantId}~{id}";

    /// <summary>Key of the change-log entry <paramref name="seq"/>.</summary>
    public static string ChangeKey(string tenantId, string id, long seq) => $"shared_context~{tenantId}~{id}~change~{seq}";

    /// <summary>Key of the list of contexts created from conversation <paramref name="conversationId"/> (what its erasure removes).</summary>
    public static string LinkKey(string tenantId, string conversationId) => $"shared_context_links~{tenantId}~{conversationId}";

    /// <summary>The document, or null.</summary>
    public async Task<SharedContextDocument?> GetAsync(string tenantId, string id, CancellationToken cancellationToken = default) =>
        (await store.GetJsonAsync<SharedContextDocument>(DocumentKey(tenantId, id), cancellationToken))?.Value;

    /// <summary>Entries <paramref name="fromSeq"/>..<paramref name="toSeq"/> (inclusive), in order.</summary>
    public async Task<List<SharedContextChange>> ChangesAsync(string tenantId, string id, long fromSeq, long toSeq, CancellationToken cancellationToken = default)
    {
        var result = new List<SharedContextChange>();
        for (var start = fromSeq; start <= toSeq; start += PageSize)
        {
            var end = Math.Min(toSeq, start + PageSize - 1);
            var keys = new List<string>();
            for (var seq = start; seq <= end; seq++)
            {
                keys.Add(ChangeKey(tenantId, id, seq));
            }
            foreach (var entry in await store.GetBulkAsync(keys, cancellationToken))
            {
                if (entry.Value is not { } bytes)
                {
                    throw new InvalidDataException($"change-log entry '{entry.Key}' is missing");
                }
                result.Add(JsonSerializer.Deserialize<SharedContextChange>(bytes.Span, ContractsJson.Options)!);
            }
        }
        result.Sort((a, b) => a.Seq.CompareTo(b.Seq));
        return result;
    }

    /// <summary>The field values at <paramref name="version"/>, rebuilt by undoing later entries from the current document.</summary>
    public async Task<Dictionary<string, JsonElement>> FieldsAtAsync(SharedContextDocument doc, long version, CancellationToken cancellationToken = default)
    {
        var fields = doc.Fields.ToDictionary(f => f.Key, f => f.Value.Value, StringComparer.Ordinal);
        for (var end = doc.Seq; end >= 1 && version < doc.Version; end -= PageSize)
        {
            var page = await ChangesAsync(doc.TenantId, doc.Id, Math.Max(1, end - PageSize + 1), end, cancellationToken);
            for (var i = page.Count - 1; i >= 0; i--)
            {
                var entry = page[i];
                if (entry.Version <= version)
                {
                    return fields;
                }
                foreach (var (name, diff) in entry.Diff ?? [])
                {
                    fields[name] = diff.Before;
                }
            }
        }
        return fields;
    }

    /// <summary>Records that context <paramref name="id"/> was created from <paramref name="conversationId"/> (ETag-checked, retried on a race).</summary>
    public async Task LinkAsync(string tenantId, string conversationId, string id, CancellationToken cancellationToken = default)
    {
        var key = LinkKey(tenantId, conversationId);
        for (var attempt = 1; ; attempt++)
        {
            var current = await store.GetJsonAsync<List<string>>(key, cancellationToken);
            var ids = current?.Value ?? [];
            if (ids.Contains(id, StringComparer.Ordinal))
            {
                return;
            }
            ids.Add(id);
            try
            {
                await store.SaveJsonAsync(key, ids, current?.ETag, new StateWriteOptions(StateConcurrency.FirstWrite), cancellationToken);
                return;
            }
            catch (StateConcurrencyException) when (attempt < 20)
            {
                // another context of the same conversation was linked meanwhile: read again
            }
        }
    }

    /// <summary>The contexts created from <paramref name="conversationId"/>.</summary>
    public async Task<IReadOnlyList<string>> LinkedAsync(string tenantId, string conversationId, CancellationToken cancellationToken = default) =>
        (await store.GetJsonAsync<List<string>>(LinkKey(tenantId, conversationId), cancellationToken))?.Value ?? [];

    /// <summary>Forgets the contexts created from <paramref name="conversationId"/> (after each was deleted).</summary>
    public Task UnlinkAsync(string tenantId, string conversationId, CancellationToken cancellationToken = default) =>
        store.DeleteAsync(LinkKey(tenantId, conversationId), cancellationToken: cancellationToken);

    /// <summary>
    /// Deletes the document and its change log: the entries from the newest down, in transactions of
    /// at most <see cref="PageSize"/> keys, the document last, so an interrupted deletion leaves a
    /// document whose remaining entries are still there for a retry to find.
    /// </summary>
    public async Task DeleteAsync(SharedContextDocument doc, CancellationToken cancellationToken = default)
    {
        for (var end = doc.Seq; end >= 1; end -= PageSize)
        {
            var start = Math.Max(1, end - PageSize + 1);
            var operations = new List<StateOperation>();
            for (var seq = end; seq >= start; seq--)
            {
                operations.Add(StateOperation.Delete(ChangeKey(doc.TenantId, doc.Id, seq)));
            }
            if (start == 1)
            {
                operations.Add(StateOperation.Delete(DocumentKey(doc.TenantId, doc.Id)));
            }
            await store.ExecuteTransactionAsync(operations, cancellationToken);
        }
        if (doc.Seq < 1)
        {
            await store.DeleteAsync(DocumentKey(doc.TenantId, doc.Id), cancellationToken: cancellationToken);
        }
    }

    /// <summary>Writes the document and new entries in one transaction.</summary>
    public Task CommitAsync(SharedContextDocument doc, IReadOnlyList<SharedContextChange> entries, CancellationToken cancellationToken = default)
    {
        var operations = new List<StateOperation>(entries.Count + 1)
        {
            StateOperation.Upsert(DocumentKey(doc.TenantId, doc.Id), JsonSerializer.SerializeToUtf8Bytes(doc, ContractsJson.Options)),
        };
        foreach (var entry in entries)
        {
            operations.Add(StateOperation.Upsert(ChangeKey(doc.TenantId, doc.Id, entry.Seq), JsonSerializer.SerializeToUtf8Bytes(entry, ContractsJson.Options)));
        }
        return store.ExecuteTransactionAsync(operations, cancellationToken);
    }
}

/// <summary>
/// Live followers of shared contexts in this process. The actor hands every committed change here
/// (and the <c>shared-context-changed</c> subscription does for changes made on another replica);
/// followers order and de-duplicate by seq and fill gaps from the store.
/// </summary>
public sealed class SharedContextFeed
{
    private readonly ConcurrentDictionary<string, Action<SharedContextChanged>[]> _observers = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    /// <summary>Observes the changes of one context until disposed.</summary>
    public IDisposable Subscribe(string tenantId, string id, Action<SharedContextChanged> observer)
    {
        var key = tenantId + "~" + id;
        lock (_gate)
        {
            _observers[key] = [.. _observers.GetValueOrDefault(key) ?? [], observer];
        }
        return new Unsubscribe(this, key, observer);
    }

    /// <summary>Hands a change to the context's followers.</summary>
    public void Publish(SharedContextChanged change)
    {
        if (_observers.TryGetValue(change.TenantId + "~" + change.ContextId, out var observers))
        {
            foreach (var observer in observers)
            {
                observer(change);
            }
        }
    }

    private sealed class Unsubscribe(SharedContextFeed feed, string key, Action<SharedContextChanged> observer) : IDisposable
    {
        public void Dispose()
        {
            lock (feed._gate)
            {
                var remaining = (feed._observers.GetValueOrDefault(key) ?? []).Where(o => o != observer).ToArray();
                if (remaining.Length == 0)
                {
                    feed._observers.TryRemove(key, out _);
                }
                else
                {
                    feed._observers[key] = remaining;
                }
            }
        }
    }
}
