using System.Text;
using System.Text.Json;
using CloudMemory.BuildingBlocks.State;
using CloudMemory.Contracts;

namespace CloudMemory.Session.Features.SharedContexts;

/// <summary>
/// The tenant's index of shared contexts (<c>shared_context_index~{tenant}</c>: their ids), for
/// <c>GET /v1/shared-contexts</c>. The actor adds an id before it first commits the document and
/// removes it after deleting the document, so every existing context is in the index; an id whose
/// document is gone (a create that failed after indexing) is skipped by the listing.
/// </summary>
public sealed partial class SharedContextStore
{
    /// <summary>Key of the tenant's index.</summary>
    public static string IndexKey(string tenantId) => $"shared_context_index~{tenantId}";

    /// <summary>Adds <paramref name="id"/> to the tenant's index (ETag-checked, retried on a race).</summary>
    public Task IndexAsync(string tenantId, string id, CancellationToken cancellationToken = default) =>
        ChangeIndexAsync(tenantId, ids => ids.Contains(id, StringComparer.Ordinal) ? null : [.. ids, id], cancellationToken);

    /// <summary>Removes <paramref name="id"/> from the tenant's index.</summary>
    public Task UnindexAsync(string tenantId, string id, CancellationToken cancellationToken = default) =>
        ChangeIndexAsync(tenantId, ids => ids.Remove(id) ? ids : null, cancellationToken);

    /// <summary>
    /// The tenant's contexts matching <paramref name="filter"/>, most recently updated first (then id
    /// descending), strictly after <paramref name="after"/>; at most <paramref name="limit"/>.
    /// </summary>
    public async Task<IReadOnlyList<SharedContextDocument>> ListAsync(string tenantId, SharedContextFilter filter, SharedContextCursor? after, int limit, CancellationToken cancellationToken = default)
    {
        // From a conversation: its link key already names exactly those contexts.
        IReadOnlyList<string> ids = filter.FromConversation is { } conversationId
            ? await LinkedAsync(tenantId, conversationId, cancellationToken)
            : (await store.GetJsonAsync<List<string>>(IndexKey(tenantId), cancellationToken))?.Value ?? [];
        var result = new List<SharedContextDocument>();
        foreach (var chunk in ids.Chunk(PageSize))
        {
            foreach (var entry in await store.GetBulkAsync(chunk.Select(id => DocumentKey(tenantId, id)).ToList(), cancellationToken))
            {
                if (entry.Value is { } bytes && JsonSerializer.Deserialize<SharedContextDocument>(bytes.Span, ContractsJson.Options) is { } doc
                    && filter.Matches(doc) && (after is null || after.Precedes(doc)))
                {
                    result.Add(doc);
                }
            }
        }
        return result.Order(Comparer<SharedContextDocument>.Create(SharedContextCursor.Compare)).Take(limit).ToList();
    }

    // Applies `change` to the index (null: nothing to write), ETag-checked and retried when another writer got there first.
    private async Task ChangeIndexAsync(string tenantId, Func<List<string>, List<string>?> change, CancellationToken cancellationToken)
    {
        var key = IndexKey(tenantId);
        for (var attempt = 1; ; attempt++)
        {
            var current = await store.GetJsonAsync<List<string>>(key, cancellationToken);
            if (change(current?.Value ?? []) is not { } next)
            {
                return;
            }
            try
            {
                if (next.Count == 0)
                {
                    await store.ExecuteTransactionAsync([StateOperation.Delete(key, current?.ETag)], cancellationToken);
                }
                else
                {
                    await store.SaveJsonAsync(key, next, current?.ETag, current is null ? new StateWriteOptions(StateConcurrency.FirstWrite) : null, cancellationToken);
                }
                return;
            }
            catch (StateConcurrencyException) when (attempt < 50)
            {
                await Task.Delay(Random.Shared.Next(0, 1 + attempt * 2), cancellationToken);
            }
        }
    }
}

/// <summary>Which shared contexts a listing returns; a criterion left null matches all.</summary>
/// <param name="Member">Only those where this agent is a member (active or invited).</param>
/// <param name="FromConversation">Only those created from this conversation.</param>
public sealed record SharedContextFilter(string? Member = null, string? FromConversation = null)
{
    /// <summary>True when <paramref name="doc"/> matches.</summary>
    public bool Matches(SharedContextDocument doc) =>
        (Member is null || doc.Members.Exists(m => m.AgentId == Member))
        && (FromConversation is null || doc.Links.ConversationId == FromConversation);
}

/// <summary>A position in the shared-context listing (most recently updated first, then id descending).</summary>
public sealed record SharedContextCursor(long UpdatedAt, string Id)
{
    /// <summary>The cursor of <paramref name="doc"/> (the next page starts after it).</summary>
    public static SharedContextCursor After(SharedContextDocument doc) => new(doc.UpdatedAt, doc.Id);

    /// <summary>True when <paramref name="doc"/> comes after this cursor.</summary>
    public bool Precedes(SharedContextDocument doc) =>
        doc.UpdatedAt < UpdatedAt || (doc.UpdatedAt == UpdatedAt && string.CompareOrdinal(doc.Id, Id) < 0);

    /// <summary>The listing's order.</summary>
    public static int Compare(SharedContextDocument a, SharedContextDocument b)
    {
        var byTime = b.UpdatedAt.CompareTo(a.UpdatedAt);
        return byTime != 0 ? byTime : string.CompareOrdinal(b.Id, a.Id);
    }

    /// <summary>URL-safe text form.</summary>
    public string Encode() =>
        Convert.ToBase64String(Encoding.UTF8.GetBytes($"{UpdatedAt}|{Id}")).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>Parses <see cref="Encode"/>'s form; null when it is not one.</summary>
    public static SharedContextCursor? TryDecode(string text)
    {
        try
        {
            var base64 = text.Replace('-', '+').Replace('_', '/');
            base64 += new string('=', (4 - (base64.Length % 4)) % 4);
            var parts = Encoding.UTF8.GetString(Convert.FromBase64String(base64)).Split('|', 2);
            return parts.Length == 2 && long.TryParse(parts[0], System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var at)
                && parts[1].Length > 0
                ? new SharedContextCursor(at, parts[1])
                : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
