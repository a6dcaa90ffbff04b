using System.Text.Json;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.BuildingBlocks.State;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Feedback;

namespace CloudMemory.Context.Features.Memories;

/// <summary>
/// Feedback on memory entries changes their retrieval: the feedback app publishes
/// <c>feedback-recorded</c>; for a memory target this adds the record's score to the entry's tally in
/// the state store, and search multiplies an entry's score by <c>1 + UserFeedbackWeight · s</c>, where
/// <c>s = sum / (count + 1)</c> lies in (-1, 1): negative feedback demotes, positive promotes.
/// Redeliveries are recognized by feedback id, concurrent ones settled by ETag.
/// </summary>
public sealed class MemoryFeedbackScores(IStateStore state)
{
    private const int MaxAppliedIds = 256;
    private const int MaxAttempts = 8;

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
        await ApplyAsync(recorded.TenantId, recorded.TargetId, recorded.FeedbackId, score, cancellationToken);
        return DeliveryStatus.Success;
    }

    /// <summary>Adds <paramref name="score"/> to the entry's tally once per feedback id.</summary>
    public async Task ApplyAsync(string tenantId, string entryId, string feedbackId, double score, CancellationToken cancellationToken)
    {
        var key = Key(tenantId, entryId);
        for (var attempt = 1; ; attempt++)
        {
            var current = await state.GetJsonAsync<Tally>(key, cancellationToken);
            var tally = current?.Value ?? new Tally(0, 0, []);
            if (tally.Applied.Contains(feedbackId))
            {
                return;
            }
            var applied = tally.Applied.Append(feedbackId).TakeLast(MaxAppliedIds).ToList();
            try
            {
                await state.SaveJsonAsync(key, new Tally(tally.Sum + score, tally.Count + 1, applied), current?.ETag,
                    current is null ? new StateWriteOptions(StateConcurrency.FirstWrite) : null, cancellationToken);
                return;
            }
            catch (StateConcurrencyException) when (attempt < MaxAttempts)
            {
                // Another feedback on the same entry landed first: read again and re-apply.
            }
        }
    }

    /// <summary>The feedback score s in (-1, 1) of each entry that has feedback.</summary>
    public async Task<IReadOnlyDictionary<string, double>> ScoresAsync(string tenantId, IReadOnlyCollection<string> entryIds, CancellationToken cancellationToken)
    {
        if (entryIds.Count == 0)
        {
            return new Dictionary<string, double>();
        }
        var ids = entryIds.ToList();
        var entries = await state.GetBulkAsync(ids.Select(id => Key(tenantId, id)).ToList(), cancellationToken);
        var scores = new Dictionary<string, double>(StringComparer.Ordinal);
        for (var i = 0; i < entries.Count && i < ids.Count; i++)
        {
            if (entries[i].Value is { } value && JsonSerializer.Deserialize<Tally>(value.Span, ContractsJson.Options) is { Count: > 0 } tally)
            {
                scores[ids[i]] = tally.Sum / (tally.Count + 1);
            }
        }
        return scores;
    }

    /// <summary>The ranking factor of an entry with feedback score <paramref name="score"/>.</summary>
    public static double Factor(double score, double weight) => Math.Max(0.05, 1 + (weight * score));

    private sealed record Tally(double Sum, int Count, List<string> Applied);
}
