using System.Collections.Concurrent;
using CloudMemory.Contracts.Feedback;

namespace CloudMemory.Feedback.Features.Feedback;

/// <summary>Feedback in process memory (embedded mode without a database, tests).</summary>
public sealed class InMemoryFeedbackStore : IFeedbackStore
{
    private readonly ConcurrentDictionary<string, TenantFeedback> _tenants = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Tenant, string Name), FeedbackConfig> _configs = new();

    /// <inheritdoc />
    public Task InitializeAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

    /// <inheritdoc />
    public Task<(FeedbackRecord Record, string Fingerprint, bool Created)> InsertIfAbsentAsync(string tenantId, FeedbackRecord record, string fingerprint, CancellationToken cancellationToken = default)
    {
        var tenant = _tenants.GetOrAdd(tenantId, _ => new TenantFeedback());
        lock (tenant.Gate)
        {
            if (tenant.ById.TryGetValue(record.Id, out var existing))
            {
                return Task.FromResult((existing.Stored.Record, existing.Fingerprint, false));
            }
            var stored = new StoredFeedback(++tenant.LastSequence, record);
            tenant.ById[record.Id] = (stored, fingerprint);
            tenant.Feed.Add(stored);
            return Task.FromResult((record, fingerprint, true));
        }
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<StoredFeedback>> ListAsync(string tenantId, FeedbackQuery query, long? beforeSequence, int limit, CancellationToken cancellationToken = default)
    {
        if (!_tenants.TryGetValue(tenantId, out var tenant))
        {
            return Task.FromResult<IReadOnlyList<StoredFeedback>>([]);
        }
        var result = new List<StoredFeedback>();
        lock (tenant.Gate)
        {
            // The feed is in sequence order: walk it backwards from the cursor.
            var end = beforeSequence is { } before ? UpperBound(tenant.Feed, before) : tenant.Feed.Count;
            for (var i = end - 1; i >= 0 && result.Count < limit; i--)
            {
                var item = tenant.Feed[i];
                if (Matches(item.Record, query))
                {
                    result.Add(item);
                }
            }
        }
        return Task.FromResult<IReadOnlyList<StoredFeedback>>(result);
    }

    /// <inheritdoc />
    public Task<FeedbackConfig?> GetConfigAsync(string tenantId, string name, CancellationToken cancellationToken = default) =>
        Task.FromResult(_configs.GetValueOrDefault((tenantId, name)));

    /// <inheritdoc />
    public Task<IReadOnlyList<FeedbackConfig>> ListConfigsAsync(string tenantId, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<FeedbackConfig>>(_configs.Where(p => p.Key.Tenant == tenantId).Select(p => p.Value).OrderBy(c => c.Name, StringComparer.Ordinal).ToList());

    /// <inheritdoc />
    public Task UpsertConfigAsync(string tenantId, FeedbackConfig config, CancellationToken cancellationToken = default)
    {
        _configs[(tenantId, config.Name)] = config;
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<(string TenantId, string AgentId)>> ListActiveAgentsAsync(DateTimeOffset since, CancellationToken cancellationToken = default)
    {
        var result = new HashSet<(string, string)>();
        foreach (var (tenantId, tenant) in _tenants)
        {
            lock (tenant.Gate)
            {
                for (var i = tenant.Feed.Count - 1; i >= 0 && tenant.Feed[i].Record.RecordedAt >= since; i--)
                {
                    if (tenant.Feed[i].Record.AgentId is { } agent)
                    {
                        result.Add((tenantId, agent));
                    }
                }
            }
        }
        return Task.FromResult<IReadOnlyList<(string, string)>>(result.ToList());
    }

    /// <inheritdoc />
    public Task<long> DeleteConversationsAsync(string tenantId, IReadOnlyCollection<string> conversationIds, CancellationToken cancellationToken = default)
    {
        var conversations = conversationIds.ToHashSet(StringComparer.Ordinal);
        if (conversations.Count == 0 || !_tenants.TryGetValue(tenantId, out var tenant))
        {
            return Task.FromResult(0L);
        }
        lock (tenant.Gate)
        {
            bool Doomed(StoredFeedback f) => f.Record.ConversationId is { } c && conversations.Contains(c);
            foreach (var gone in tenant.Feed.Where(Doomed))
            {
                tenant.ById.Remove(gone.Record.Id);
            }
            return Task.FromResult((long)tenant.Feed.RemoveAll(Doomed)); // keeps the feed in sequence order
        }
    }

    internal static bool Matches(FeedbackRecord record, FeedbackQuery query) =>
        (query.TargetType is null || record.Target.Type == query.TargetType)
        && (query.TargetId is null || record.Target.Id == query.TargetId)
        && (query.AgentId is null || record.AgentId == query.AgentId)
        && (query.Name is null || record.Name == query.Name)
        && (query.Kind is null || record.Kind == query.Kind)
        && (query.ConversationId is null || record.ConversationId == query.ConversationId)
        && (query.Since is null || record.CreatedAt >= query.Since)
        && (query.Until is null || record.CreatedAt < query.Until);

    private static int UpperBound(List<StoredFeedback> feed, long before)
    {
        int lo = 0, hi = feed.Count;
        while (lo < hi)
        {
            var mid = (lo + hi) / 2;
            if (feed[mid].Sequence < before)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }
        return lo;
    }

    private sealed class TenantFeedback
    {
        public readonly Lock Gate = new();
        public readonly Dictionary<string, (StoredFeedback Stored, string Fingerprint)> ById = new(StringComparer.Ordinal);
        public readonly List<StoredFeedback> Feed = [];
        public long LastSequence;
    }
}
