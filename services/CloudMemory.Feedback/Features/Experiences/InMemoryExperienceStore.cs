using System.Collections.Concurrent;
using CloudMemory.Contracts.Feedback;

namespace CloudMemory.Feedback.Features.Experiences;

/// <summary>Experiences in process memory, with an inverted index from pattern tokens to patterns.</summary>
public sealed class InMemoryExperienceStore : IExperienceStore
{
    private readonly ConcurrentDictionary<string, TenantExperiences> _tenants = new(StringComparer.Ordinal);

    /// <inheritdoc />
    public Task InitializeAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

    /// <inheritdoc />
    public Task<(Experience Experience, bool Created)> InsertIfAbsentAsync(string tenantId, Experience experience, CancellationToken cancellationToken = default)
    {
        var tenant = _tenants.GetOrAdd(tenantId, _ => new TenantExperiences());
        lock (tenant.Gate)
        {
            if (tenant.Experiences.TryGetValue(experience.Id, out var existing))
            {
                return Task.FromResult((existing, false));
            }
            tenant.Experiences[experience.Id] = experience;
            var key = experience.Pattern.Key;
            if (!tenant.Patterns.TryGetValue(key, out var stats))
            {
                stats = new PatternStats(experience.Pattern, 0, 0, 0, 0, 0, 0, null, null);
                foreach (var token in TaskPatterns.IndexTokens(experience.Pattern))
                {
                    if (!tenant.Index.TryGetValue(token, out var keys))
                    {
                        tenant.Index[token] = keys = [];
                    }
                    keys.Add(key);
                }
            }
            tenant.Patterns[key] = Add(stats, experience);
            return Task.FromResult((experience, true));
        }
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<PatternStats>> FindCandidatesAsync(string tenantId, CandidateQuery query, int limit, CancellationToken cancellationToken = default)
    {
        if (!_tenants.TryGetValue(tenantId, out var tenant))
        {
            return Task.FromResult<IReadOnlyList<PatternStats>>([]);
        }
        lock (tenant.Gate)
        {
            // The patterns holding every token of one of the sets (from the smallest posting list), when sets are given.
            HashSet<string>? allowed = null;
            if (query.AllOf is { } sets)
            {
                allowed = new HashSet<string>(StringComparer.Ordinal);
                foreach (var set in sets)
                {
                    var postings = set.Select(t => tenant.Index.GetValueOrDefault(t)).ToList();
                    if (postings.Any(p => p is null))
                    {
                        continue;
                    }
                    var smallest = postings.MinBy(p => p!.Count)!;
                    allowed.UnionWith(smallest.Where(key => postings.All(p => p!.Contains(key))));
                }
            }
            var shared = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var token in query.Tokens)
            {
                if (tenant.Index.TryGetValue(token, out var matches))
                {
                    foreach (var key in matches)
                    {
                        if (allowed is null || allowed.Contains(key))
                        {
                            shared[key] = shared.GetValueOrDefault(key) + 1;
                        }
                    }
                }
            }
            IReadOnlyList<PatternStats> result = shared.Where(s => s.Value >= Math.Max(1, query.MinShared))
                .OrderByDescending(s => s.Value).ThenBy(s => s.Key, StringComparer.Ordinal)
                .Take(limit).Select(s => tenant.Patterns[s.Key]).ToList();
            return Task.FromResult(result);
        }
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<Experience>> GetManyAsync(string tenantId, IReadOnlyCollection<string> ids, CancellationToken cancellationToken = default)
    {
        if (!_tenants.TryGetValue(tenantId, out var tenant))
        {
            return Task.FromResult<IReadOnlyList<Experience>>([]);
        }
        lock (tenant.Gate)
        {
            return Task.FromResult<IReadOnlyList<Experience>>(ids.Select(id => tenant.Experiences.GetValueOrDefault(id)).OfType<Experience>().ToList());
        }
    }

    /// <inheritdoc />
    public Task<long> DeleteAsync(string tenantId, IReadOnlyCollection<string> conversationIds, string? userId, CancellationToken cancellationToken = default)
    {
        var conversations = conversationIds.ToHashSet(StringComparer.Ordinal);
        if ((conversations.Count == 0 && userId is null) || !_tenants.TryGetValue(tenantId, out var tenant))
        {
            return Task.FromResult(0L);
        }
        lock (tenant.Gate)
        {
            var doomed = tenant.Experiences.Values
                .Where(e => (e.ConversationId is { } c && conversations.Contains(c)) || (userId is not null && e.UserId == userId))
                .ToList();
            foreach (var experience in doomed)
            {
                tenant.Experiences.Remove(experience.Id);
            }
            var touched = doomed.Select(e => e.Pattern.Key).ToHashSet(StringComparer.Ordinal);
            var remaining = tenant.Experiences.Values.Where(e => touched.Contains(e.Pattern.Key)).ToLookup(e => e.Pattern.Key, StringComparer.Ordinal);
            foreach (var key in touched)
            {
                var pattern = tenant.Patterns[key].Pattern;
                var left = remaining[key].OrderBy(e => e.RecordedAt).ToList();
                if (left.Count == 0)
                {
                    tenant.Patterns.Remove(key);
                    foreach (var token in TaskPatterns.Tokens(pattern))
                    {
                        if (tenant.Index.TryGetValue(token, out var keys) && keys.Remove(key) && keys.Count == 0)
                        {
                            tenant.Index.Remove(token);
                        }
                    }
                    continue;
                }
                tenant.Patterns[key] = left.Aggregate(new PatternStats(pattern, 0, 0, 0, 0, 0, 0, null, null), Add);
            }
            return Task.FromResult((long)doomed.Count);
        }
    }

    internal static PatternStats Add(PatternStats stats, Experience experience)
    {
        var success = experience.Result.Success == true;
        return stats with
        {
            Attempts = stats.Attempts + 1,
            Successes = stats.Successes + (success ? 1 : 0),
            DurationSum = stats.DurationSum + (experience.Result.DurationMs ?? 0),
            DurationCount = stats.DurationCount + (experience.Result.DurationMs is null ? 0 : 1),
            CostSum = stats.CostSum + (experience.Result.Cost ?? 0),
            CostCount = stats.CostCount + (experience.Result.Cost is null ? 0 : 1),
            LastSuccessId = success ? experience.Id : stats.LastSuccessId,
            LastFailureId = success ? stats.LastFailureId : experience.Id,
        };
    }

    private sealed class TenantExperiences
    {
        public readonly Lock Gate = new();
        public readonly Dictionary<string, Experience> Experiences = new(StringComparer.Ordinal);
        public readonly Dictionary<string, PatternStats> Patterns = new(StringComparer.Ordinal);
        public readonly Dictionary<string, HashSet<string>> Index = new(StringComparer.Ordinal);
    }
}
