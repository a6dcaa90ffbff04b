using CloudMemory.Contracts.Feedback;
namespace CloudMemory.Feedback.Features.Experiences;

/// <summary>
/// Experiences and the running totals of their patterns. Every call is scoped to one tenant.
/// Implementations: <see cref="InMemoryExperienceStore"/> and <see cref="PostgresExperienceStore"/>.
/// </summary>
public interface IExperienceStore
{
    /// <summary>Creates the schema (idempotent).</summary>
    Task InitializeAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Stores <paramref name="experience"/> and adds it to its pattern's totals, atomically, unless
    /// its id exists; returns the stored experience and whether this call created it.
    /// </summary>
    Task<(Experience Experience, bool Created)> InsertIfAbsentAsync(string tenantId, Experience experience, CancellationToken cancellationToken = default);

    /// <summary>
    /// Patterns sharing at least <see cref="CandidateQuery.MinShared"/> (at least 1) index tokens
    /// with <see cref="CandidateQuery.Tokens"/> and, when <see cref="CandidateQuery.AllOf"/> is
    /// given, holding all tokens of one of its sets; those sharing most first (at most <paramref name="limit"/>).
    /// </summary>
    Task<IReadOnlyList<PatternStats>> FindCandidatesAsync(string tenantId, CandidateQuery query, int limit, CancellationToken cancellationToken = default);

    /// <summary>The experiences among <paramref name="ids"/> (any order).</summary>
    Task<IReadOnlyList<Experience>> GetManyAsync(string tenantId, IReadOnlyCollection<string> ids, CancellationToken cancellationToken = default);

    /// <summary>
    /// Erasure: deletes the experiences of the named conversations and, when <paramref name="userId"/>
    /// is given, of that user; their patterns' totals are recounted from what is left (a pattern with
    /// nothing left is removed). Returns how many experiences were deleted.
    /// </summary>
    Task<long> DeleteAsync(string tenantId, IReadOnlyCollection<string> conversationIds, string? userId, CancellationToken cancellationToken = default);
}
