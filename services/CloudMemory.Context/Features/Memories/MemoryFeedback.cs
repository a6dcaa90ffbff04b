using System.Text.Json;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.BuildingBlocks.State;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Feedback;
using Microsoft.Extensions.Options;

namespace CloudMemory.Context.Features.Memories;

/// <summary>
/// Feedback on memory entries changes their retrieval: the feedback app publishes
/// <c>feedback-recorded</c>; for a memory target this adds the record's score to the entry's tally in
/// the state store, and search multiplies an entry's score by <c>1 + UserFeedbackWeight · s</c>, where
/// <c>s = Σ wᵢ·scoreᵢ / (Σ wᵢ + 1)</c> lies in (-1, 1): negative feedback demotes, positive promotes.
/// Feedback given with a query (the question the entry was retrieved for) is kept with that query's
/// terms and weighs wᵢ = how similar the current query is to it, so an entry marked wrong for one
/// question is not pushed down for unrelated ones; feedback without a query weighs 1 everywhere, and
/// query feedback that agrees across many dissimilar queries becomes a global prior (see
/// <see cref="LongTermMemoryOptions.UserFeedbackPriorQueries"/>). Redeliveries are recognized by
/// feedback id, concurrent ones settled by ETag.
/// </summary>
public sealed class MemoryFeedbackScores(IStateStore state, IOptions<LongTermMemoryOptions> options)
{
    private const int MaxAppliedIds = 256;
    private const int MaxAttempts = 8;
    private const int MaxQueryFeedback = 128;
    private const int MaxQueryTerms = 32;

    /// <summary>The state key of an entry's tally ('|' never occurs in ids, so the parts cannot run together).</summary>
    public static string Key(string tenantId, string entryId) => $"memory-feedback|{tenantId}|{entryId}";

    /// <summary>Registers the subscription and the tally.</summary>
    public static IServiceCollection AddMemoryFeedback(IServiceCollection services, string deadLetterTopic)
    {
        services.AddSingleton<MemoryFeedbackScores>();
        services.AddSingleton(sp => new Subscription(FeedbackTopics.FeedbackRecorded, "/events/context/feedback-recorded",
            (e, ct) => sp.GetRequiredService<MemoryFeedbackScores>().HandleAsync(e, ct), deadLetterTopic));
        return services;
    }

    /// <summary>Applies one <c>feedback-recorded</c> event (ignored unless it targets a memory entry and has a score).</summary>
    public async Task<DeliveryStatus> HandleAsync(CloudEvent cloudEvent, CancellationToken cancellationToken)
    {
        FeedbackRecorded? recorded;
        try
        {
            recorded = cloudEvent.Data.Deserialize<FeedbackRecorded>(ContractsJson.Options);
        }
        catch (JsonException)
        {
            return DeliveryStatus.Drop;
        }
        if (recorded is null)
        {
            return DeliveryStatus.Drop;
        }
        if (recorded.TargetType != FeedbackTargetTypes.Memory || recorded.Score is not { } score)
        {
            return DeliveryStatus.Success;
        }
        await ApplyAsync(recorded.TenantId, recorded.TargetId, recorded.FeedbackId, score, recorded.Query, cancellationToken);
        return DeliveryStatus.Success;
    }

    /// <summary>
    /// Adds <paramref name="score"/> to the entry's tally once per feedback id: for every query when
    /// <paramref name="query"/> is null, otherwise for queries like it.
    /// </summary>
    public async Task ApplyAsync(string tenantId, string entryId, string feedbackId, double score, string? query, CancellationToken cancellationToken)
    {
        var key = Key(tenantId, entryId);
        var terms = query is null ? null : QueryTerms(query);
        for (var attempt = 1; ; attempt++)
        {
            var current = await state.GetJsonAsync<Tally>(key, cancellationToken);
            var tally = current?.Value ?? new Tally(0, 0, [], []);
            if (tally.Applied.Contains(feedbackId))
            {
                return;
            }
            var applied = tally.Applied.Append(feedbackId).TakeLast(MaxAppliedIds).ToList();
            var queries = tally.Queries ?? [];
            Tally next;
            if (terms is null)
            {
                next = tally with { Sum = tally.Sum + score, Count = tally.Count + 1, Applied = applied, Queries = queries };
            }
            else
            {
                // The prior depends on the query feedback alone: computed here, once, not on every search.
                var settings = options.Value;
                queries = queries.Append(new QueryFeedback(terms, score)).TakeLast(MaxQueryFeedback).ToList();
                next = tally with { Applied = applied, Queries = queries, Prior = Prior(queries, settings.UserFeedbackQuerySimilarity, settings.UserFeedbackPriorQueries) };
            }
            try
            {
                await state.SaveJsonAsync(key, next, current?.ETag,
                    current is null ? new StateWriteOptions(StateConcurrency.FirstWrite) : null, cancellationToken);
                return;
            }
            catch (StateConcurrencyException) when (attempt < MaxAttempts)
            {
                // Another feedback on the same entry landed first: read again and re-apply.
            }
        }
    }

    /// <summary>The feedback score s in (-1, 1) for <paramref name="query"/> of each entry whose feedback bears on it.</summary>
    public async Task<IReadOnlyDictionary<string, double>> ScoresAsync(string tenantId, IReadOnlyCollection<string> entryIds, string query, CancellationToken cancellationToken)
    {
        if (entryIds.Count == 0)
        {
            return new Dictionary<string, double>();
        }
        var ids = entryIds.ToList();
        var entries = await state.GetBulkAsync(ids.Select(id => Key(tenantId, id)).ToList(), cancellationToken);
        var queryTerms = QueryTerms(query);
        var threshold = options.Value.UserFeedbackQuerySimilarity;
        var scores = new Dictionary<string, double>(StringComparer.Ordinal);
        for (var i = 0; i < entries.Count && i < ids.Count; i++)
        {
            if (entries[i].Value is { } value && JsonSerializer.Deserialize<Tally>(value.Span, ContractsJson.Options) is { } tally
                && Score(tally, queryTerms, threshold) is { } s)
            {
                scores[ids[i]] = s;
            }
        }
        return scores;
    }

    /// <summary>The ranking factor of an entry with feedback score <paramref name="score"/>.</summary>
    public static double Factor(double score, double weight) => Math.Max(0.05, 1 + (weight * score));

    /// <summary>The distinct stemmed content words of a query, sorted, at most <see cref="MaxQueryTerms"/> (the first ones).</summary>
    public static string[] QueryTerms(string query)
    {
        var terms = TextAnalysis.LexicalTerms(query).Distinct(StringComparer.Ordinal).Take(MaxQueryTerms).ToArray();
        Array.Sort(terms, StringComparer.Ordinal);
        return terms;
    }

    /// <summary>
    /// How much feedback given for a query with <paramref name="given"/> terms counts for one with
    /// <paramref name="current"/> terms: (cos − t) / (1 − t) clamped to [0, 1], cos over the sorted term sets.
    /// </summary>
    public static double QueryWeight(IReadOnlyList<string> current, IReadOnlyList<string> given, double threshold)
    {
        double cosine;
        if (current.Count == 0 || given.Count == 0)
        {
            cosine = current.Count == given.Count ? 1 : 0;
        }
        else
        {
            var shared = 0;
            for (int a = 0, b = 0; a < current.Count && b < given.Count;)
            {
                var order = string.CompareOrdinal(current[a], given[b]);
                if (order == 0)
                {
                    shared++;
                    a++;
                    b++;
                }
                else if (order < 0)
                {
                    a++;
                }
                else
                {
                    b++;
                }
            }
            cosine = shared / Math.Sqrt((double)current.Count * given.Count);
        }
        return threshold >= 1 ? (cosine >= 1 ? 1 : 0) : Math.Clamp((cosine - threshold) / (1 - threshold), 0, 1);
    }

    // Null when no feedback bears on the query (the entry keeps its rank).
    private static double? Score(Tally tally, string[] queryTerms, double threshold)
    {
        double sum = tally.Sum, weights = tally.Count;
        var queries = tally.Queries ?? [];
        if (queries.Count > 0)
        {
            foreach (var q in queries)
            {
                var w = Math.Max(QueryWeight(queryTerms, q.Terms, threshold), tally.Prior);
                sum += w * q.Score;
                weights += w;
            }
        }
        return weights > 0 ? sum / (weights + 1) : null;
    }

    // Query feedback counts for every query once it comes from at least priorQueries mutually
    // dissimilar queries (greedy groups: a query joins the first group whose first query it
    // resembles), by how much those groups agree: |Σ group mean| / groups.
    private static double Prior(List<QueryFeedback> queries, double threshold, int priorQueries)
    {
        if (priorQueries <= 0 || queries.Count < priorQueries)
        {
            return 0;
        }
        var groups = new List<(string[] Terms, double Sum, int Count)>();
        foreach (var q in queries)
        {
            var index = groups.FindIndex(g => QueryWeight(q.Terms, g.Terms, threshold) > 0);
            if (index < 0)
            {
                groups.Add((q.Terms, q.Score, 1));
            }
            else
            {
                groups[index] = (groups[index].Terms, groups[index].Sum + q.Score, groups[index].Count + 1);
            }
        }
        return groups.Count < priorQueries ? 0 : Math.Abs(groups.Sum(g => g.Sum / g.Count)) / groups.Count;
    }

    private sealed record QueryFeedback(string[] Terms, double Score);

    // Sum and Count: feedback without a query; Queries: the latest feedback given with one; Prior:
    // how much that query feedback counts for every query (see Prior), as of the last feedback.
    private sealed record Tally(double Sum, int Count, List<string> Applied, List<QueryFeedback>? Queries, double Prior = 0);
}
