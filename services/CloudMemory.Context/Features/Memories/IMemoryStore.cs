namespace CloudMemory.Context.Features.Memories;

/// <summary>
/// Storage of memory entries with their two search indexes (vector and lexical). Every call is
/// scoped to one tenant. Implementations: <see cref="InMemoryMemoryStore"/> and
/// <see cref="PostgresMemoryStore"/>; one behavioural suite runs against both.
/// </summary>
public interface IMemoryStore
{
    /// <summary>Creates the schema (idempotent).</summary>
    Task InitializeAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Inserts or replaces <paramref name="entry"/>; returns true when it was created. A replace whose
    /// content hash differs drops the stored embedding (the entry is pending again).
    /// </summary>
    Task<bool> UpsertAsync(MemoryEntry entry, string contentHash, CancellationToken cancellationToken = default);

    /// <summary>
    /// Upserts several entries as <see cref="UpsertAsync"/> does, in one round trip (PostgreSQL) or
    /// under one lock (in memory). With <paramref name="awaitEmbedding"/> false the entries are
    /// keyword-only (conversation turns of a <c>lexical</c> tenant): an entry without an embedding
    /// is then not pending and is never listed by <see cref="ListPendingEmbeddingsAsync"/>.
    /// Entries of a context or user erased at or after their creation (<see cref="RecordErasureAsync"/>)
    /// are not written: an indexer that read a conversation's turns before its erasure, in this
    /// process or another replica, cannot write them back after it.
    /// </summary>
    Task UpsertManyAsync(IReadOnlyList<(MemoryEntry Entry, string ContentHash)> entries, bool awaitEmbedding, CancellationToken cancellationToken = default);

    /// <summary>
    /// Records durably that the contexts <paramref name="contextIds"/> and the user
    /// <paramref name="userId"/> of the tenant were erased at <paramref name="erasedAt"/>, before their
    /// entries are deleted: from then on <see cref="UpsertManyAsync"/> refuses their entries created
    /// until then. A write in flight is waited for, so it is either refused or done before this
    /// returns (and then deleted by the erasure). Later entries (a new conversation with the same id)
    /// are written as usual.
    /// </summary>
    Task RecordErasureAsync(string tenantId, IReadOnlyCollection<string> contextIds, string? userId, DateTimeOffset erasedAt, CancellationToken cancellationToken = default);

    /// <summary>Inserts <paramref name="entry"/> unless its id exists; returns the stored entry and whether it was created.</summary>
    Task<(MemoryEntry Entry, bool Created)> InsertIfAbsentAsync(MemoryEntry entry, string contentHash, DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>The entry, or null when unknown or expired at <paramref name="now"/>.</summary>
    Task<MemoryEntry?> GetAsync(string tenantId, string id, DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>Live entries among <paramref name="ids"/>, each once however often its id is given (any order).</summary>
    Task<IReadOnlyList<MemoryEntry>> GetManyAsync(string tenantId, IReadOnlyCollection<string> ids, DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>Removes the entry from storage and every index; false when unknown.</summary>
    Task<bool> DeleteAsync(string tenantId, string id, CancellationToken cancellationToken = default);

    /// <summary>Live entries matching <paramref name="filter"/>, newest first.</summary>
    Task<IReadOnlyList<MemoryEntry>> ListAsync(string tenantId, MemoryFilter filter, int limit, DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>Stores embeddings; an update whose content hash no longer matches is ignored (the content changed meanwhile).</summary>
    Task SetEmbeddingsAsync(IReadOnlyList<EmbeddingUpdate> updates, CancellationToken cancellationToken = default);

    /// <summary>Entries waiting for their embedding (recovery after a restart); keyword-only entries are not listed.</summary>
    Task<IReadOnlyList<PendingEmbedding>> ListPendingEmbeddingsAsync(int limit, CancellationToken cancellationToken = default);

    /// <summary>Top <paramref name="k"/> by cosine similarity to the normalized <paramref name="query"/>.</summary>
    Task<IReadOnlyList<ScoredId>> SearchVectorAsync(string tenantId, float[] query, MemoryFilter filter, int k, DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>Top <paramref name="k"/> by lexical relevance (BM25 in memory, ts_rank_cd in PostgreSQL).</summary>
    Task<IReadOnlyList<ScoredId>> SearchLexicalAsync(string tenantId, string query, MemoryFilter filter, int k, DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>
    /// Up to <paramref name="before"/> live entries preceding and <paramref name="after"/> following
    /// <paramref name="entry"/> in its context (same context and type; order createdAt, then id
    /// ordinal), nearest first. None when the entry has no context.
    /// </summary>
    Task<MemoryNeighbours> ListNeighboursAsync(MemoryEntry entry, int before, int after, DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>Records an access of each id (access count + 1, last accessed = <paramref name="now"/>).</summary>
    Task TouchAsync(string tenantId, IReadOnlyCollection<string> ids, DateTimeOffset now, CancellationToken cancellationToken = default);
}
