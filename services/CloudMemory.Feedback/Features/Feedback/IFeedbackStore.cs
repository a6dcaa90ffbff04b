using CloudMemory.Contracts.Feedback;

namespace CloudMemory.Feedback.Features.Feedback;

/// <summary>Filters of a feedback listing; null fields do not filter.</summary>
public sealed record FeedbackQuery(
    string? TargetType = null,
    string? TargetId = null,
    string? AgentId = null,
    string? Name = null,
    string? Kind = null,
    string? ConversationId = null,
    DateTimeOffset? Since = null,
    DateTimeOffset? Until = null);

/// <summary>A stored record with its position in the tenant's feed (newest has the highest).</summary>
public sealed record StoredFeedback(long Sequence, FeedbackRecord Record);

/// <summary>
/// Feedback records and feedback configs. Every call is scoped to one tenant. Implementations:
/// <see cref="InMemoryFeedbackStore"/> and <see cref="PostgresFeedbackStore"/>; one behavioural suite runs on both.
/// </summary>
public interface IFeedbackStore
{
    /// <summary>Creates the schema (idempotent).</summary>
    Task InitializeAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Stores <paramref name="record"/> unless its id exists; returns the stored record, the
    /// fingerprint it was stored with, and whether this call created it.
    /// </summary>
    Task<(FeedbackRecord Record, string Fingerprint, bool Created)> InsertIfAbsentAsync(string tenantId, FeedbackRecord record, string fingerprint, CancellationToken cancellationToken = default);

    /// <summary>Matching records, newest first, strictly older than <paramref name="beforeSequence"/> when given.</summary>
    Task<IReadOnlyList<StoredFeedback>> ListAsync(string tenantId, FeedbackQuery query, long? beforeSequence, int limit, CancellationToken cancellationToken = default);

    /// <summary>The tenant's own config of <paramref name="name"/>, or null.</summary>
    Task<FeedbackConfig?> GetConfigAsync(string tenantId, string name, CancellationToken cancellationToken = default);

    /// <summary>The tenant's own configs.</summary>
    Task<IReadOnlyList<FeedbackConfig>> ListConfigsAsync(string tenantId, CancellationToken cancellationToken = default);

    /// <summary>Creates or replaces a config.</summary>
    Task UpsertConfigAsync(string tenantId, FeedbackConfig config, CancellationToken cancellationToken = default);

    /// <summary>(tenant, agent) pairs with feedback recorded since <paramref name="since"/>: who a scheduled learning cycle visits.</summary>
    Task<IReadOnlyList<(string TenantId, string AgentId)>> ListActiveAgentsAsync(DateTimeOffset since, CancellationToken cancellationToken = default);

    /// <summary>Deletes the tenant's feedback on the conversations <paramref name="conversationIds"/> (erasure); returns how many.</summary>
    Task<long> DeleteConversationsAsync(string tenantId, IReadOnlyCollection<string> conversationIds, CancellationToken cancellationToken = default);
}
