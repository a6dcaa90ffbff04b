using System.Collections.Concurrent;
using System.Numerics.Tensors;
using CloudMemory.BuildingBlocks.Hosting;

namespace CloudMemory.Context.Features.Memories;

/// <summary>
/// The embedded store: per tenant, a dictionary of entries, secondary indexes by context, trace
/// and user (lookups, not scans), an Okapi BM25 inverted index (k1 1.2, b 0.75) and contiguous
/// vector segments per context scored with SIMD dot products (vectors are L2-normalized, so the
/// dot product is the cosine). A tenant-wide vector search over at least
/// <see cref="InMemoryIndexOptions.ApproximateThreshold"/> vectors goes through an IVF index
/// (<see cref="IvfVectorIndex{TRow}"/>, int8 codes, exact re-rank); a tenant-wide BM25 search
/// skips postings that cannot reach the top k (MaxScore with per-term score bounds; the result
/// equals exhaustive scoring). Its size is bounded by <see cref="MaxBytes"/> (an estimate:
/// <see cref="EstimatedBytes"/>): near the cap expired entries are evicted, and past it a new or
/// growing entry is refused with 507 <c>store-full</c> and nothing changes.
/// </summary>
public sealed class InMemoryMemoryStore : IMemoryStore
{
    private const double K1 = 1.2;
    private const double B = 0.75;

    // Entries written under one lock by UpsertManyAsync.
    private const int WriteRun = 64;

    // Above this many rows a scan is split across cores.
    private const int ParallelScanThreshold = 65_536;

    /// <summary>Estimated bytes of an entry besides its text, terms and vector: the entry, its record and the index nodes that point at it.</summary>
    public const int EntryOverheadBytes = 900;

    /// <summary>Estimated bytes per distinct term of an entry (its posting and forward-index slots).</summary>
    public const int TermBytes = 56;

    /// <summary>Estimated bytes per vector dimension (the float, and the int8 code once the IVF index is built).</summary>
    public const int VectorBytesPerDimension = 5;

    // Eviction of expired entries scans the store: at most this often while the store is full.
    private static readonly TimeSpan EvictionInterval = TimeSpan.FromSeconds(1);

    private readonly ConcurrentDictionary<string, Partition> _partitions = new(StringComparer.Ordinal);
    private readonly Budget _budget = new();
    private long _lastEvictionTicks;

    /// <summary>A store with the default index settings.</summary>
    public InMemoryMemoryStore()
        : this(new InMemoryIndexOptions())
    {
    }

    /// <summary>A store with the given index settings.</summary>
    public InMemoryMemoryStore(InMemoryIndexOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        IndexOptions = options;
    }

    /// <summary>Index settings; replace them only before the first write.</summary>
    public InMemoryIndexOptions IndexOptions { get; set; }

    /// <summary>Cap of <see cref="EstimatedBytes"/> (unbounded by default; the host sets <c>CloudMemory:Embedded:MaxMemoryMegabytes</c>).</summary>
    public long MaxBytes
    {
        get => _budget.Max;
        init => _budget.Max = value;
    }

    /// <summary>
    /// Dimensions of the embedder's vectors. An entry waiting for its embedding is charged for a vector
    /// of this size when it is admitted (settled when the vector arrives), so the background embedding
    /// never takes the store past <see cref="MaxBytes"/>. 0: no reservation.
    /// </summary>
    public int ExpectedVectorDimensions { get; init; }

    /// <summary>The clock that decides which entries have expired when the store is full.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Estimated memory held by the entries, their indexes and vectors.</summary>
    public long EstimatedBytes => Interlocked.Read(ref _budget.Bytes);

    /// <summary>The estimate for one entry without its vector (<see cref="EntryOverheadBytes"/> + 2 bytes per character + <see cref="TermBytes"/> per distinct term).</summary>
    public static long CostOf(MemoryEntry entry, int distinctTerms)
    {
        long characters = entry.Id.Length + entry.Content.Length + entry.Type.Length + (entry.UserId?.Length ?? 0) + (entry.ContextId?.Length ?? 0) + (entry.TraceId?.Length ?? 0);
        foreach (var (key, value) in entry.Metadata)
        {
            characters += key.Length + value.Length + 16;
        }
        foreach (var tag in entry.Tags)
        {
            characters += tag.Length + 12;
        }
        return EntryOverheadBytes + 2 * characters + (long)TermBytes * distinctTerms;
    }

    /// <inheritdoc />
    public Task InitializeAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

    /// <inheritdoc />
    public Task<bool> UpsertAsync(MemoryEntry entry, string contentHash, CancellationToken cancellationToken = default)
    {
        return Task.FromResult(WriteEvictingWhenFull(entry.TenantId, p => p.Upsert(entry, contentHash, VectorReservation(awaitEmbedding: true))));
    }

    /// <inheritdoc />
    public Task UpsertManyAsync(IReadOnlyList<(MemoryEntry Entry, string ContentHash)> entries, bool awaitEmbedding, CancellationToken cancellationToken = default)
    {
        // One lock per run of at most WriteRun entries of one tenant instead of one per entry (searches
        // wait at most for one run). A refusal stops at the refused entry: those before it are written,
        // as when they are upserted one by one.
        var reservation = VectorReservation(awaitEmbedding);
        var next = 0;
        while (next < entries.Count)
        {
            var tenantId = entries[next].Entry.TenantId;
            var end = next + 1;
            while (end < entries.Count && end - next < WriteRun && entries[end].Entry.TenantId == tenantId)
            {
                end++;
            }
            WriteEvictingWhenFull(tenantId, p =>
            {
                // After an eviction the run is tried again from the refused entry.
                for (; next < end; next++)
                {
                    if (!p.IsErased(entries[next].Entry))
                    {
                        p.Upsert(entries[next].Entry, entries[next].ContentHash, reservation);
                    }
                }
                return true;
            });
        }
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task RecordErasureAsync(string tenantId, IReadOnlyCollection<string> contextIds, string? userId, DateTimeOffset erasedAt, CancellationToken cancellationToken = default)
    {
        var p = PartitionOf(tenantId);
        p.Lock.EnterWriteLock();
        try
        {
            foreach (var key in contextIds.Select(c => ('c', c)).Concat(userId is null ? [] : [('u', userId)]))
            {
                p.Erased[key] = p.Erased.TryGetValue(key, out var earlier) && earlier > erasedAt ? earlier : erasedAt;
            }
        }
        finally
        {
            p.Lock.ExitWriteLock();
        }
        return Task.CompletedTask;
    }

    // Bytes charged for a vector not yet delivered; null: the entry is keyword-only.
    private long? VectorReservation(bool awaitEmbedding) =>
        awaitEmbedding ? (long)VectorBytesPerDimension * ExpectedVectorDimensions : null;

    /// <inheritdoc />
    public Task<(MemoryEntry Entry, bool Created)> InsertIfAbsentAsync(MemoryEntry entry, string contentHash, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        return Task.FromResult(WriteEvictingWhenFull(entry.TenantId, p =>
        {
            if (p.Entries.TryGetValue(entry.Id, out var existing) && !IsExpired(existing.Entry, now))
            {
                return (existing.Entry, false);
            }
            p.Upsert(entry, contentHash, VectorReservation(awaitEmbedding: true));
            return (entry, true);
        }));
    }

    /// <inheritdoc />
    public Task<MemoryEntry?> GetAsync(string tenantId, string id, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        if (!_partitions.TryGetValue(tenantId, out var p))
        {
            return Task.FromResult<MemoryEntry?>(null);
        }
        p.Lock.EnterReadLock();
        try
        {
            return Task.FromResult(p.Entries.TryGetValue(id, out var s) && !IsExpired(s.Entry, now) ? s.Entry : null);
        }
        finally
        {
            p.Lock.ExitReadLock();
        }
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<MemoryEntry>> GetManyAsync(string tenantId, IReadOnlyCollection<string> ids, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        if (!_partitions.TryGetValue(tenantId, out var p))
        {
            return Task.FromResult<IReadOnlyList<MemoryEntry>>([]);
        }
        p.Lock.EnterReadLock();
        try
        {
            var found = new List<MemoryEntry>(ids.Count);
            foreach (var id in ids.Distinct(StringComparer.Ordinal))
            {
                if (p.Entries.TryGetValue(id, out var s) && !IsExpired(s.Entry, now))
                {
                    found.Add(s.Entry);
                }
            }
            return Task.FromResult<IReadOnlyList<MemoryEntry>>(found);
        }
        finally
        {
            p.Lock.ExitReadLock();
        }
    }

    /// <inheritdoc />
    public Task<bool> DeleteAsync(string tenantId, string id, CancellationToken cancellationToken = default)
    {
        if (!_partitions.TryGetValue(tenantId, out var p))
        {
            return Task.FromResult(false);
        }
        p.Lock.EnterWriteLock();
        try
        {
            return Task.FromResult(p.Remove(id));
        }
        finally
        {
            p.Lock.ExitWriteLock();
        }
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<MemoryEntry>> ListAsync(string tenantId, MemoryFilter filter, int limit, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        if (!_partitions.TryGetValue(tenantId, out var p))
        {
            return Task.FromResult<IReadOnlyList<MemoryEntry>>([]);
        }
        p.Lock.EnterReadLock();
        try
        {
            var result = p.Candidates(filter)
                .Select(s => s.Entry)
                .Where(e => filter.Matches(e) && !IsExpired(e, now))
                .OrderByDescending(e => e.CreatedAt).ThenBy(e => e.Id, StringComparer.Ordinal)
                .Take(limit)
                .ToList();
            return Task.FromResult<IReadOnlyList<MemoryEntry>>(result);
        }
        finally
        {
            p.Lock.ExitReadLock();
        }
    }

    /// <inheritdoc />
    public Task<MemoryNeighbours> ListNeighboursAsync(MemoryEntry entry, int before, int after, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        if (entry.ContextId is not { } context || !_partitions.TryGetValue(entry.TenantId, out var p))
        {
            return Task.FromResult(MemoryNeighbours.None);
        }
        p.Lock.EnterReadLock();
        try
        {
            // The context's entries in (created, id) order: walk outwards from the entry's position.
            var preceding = new List<MemoryEntry>();
            var following = new List<MemoryEntry>();
            if (p.ContextOrder.TryGetValue(context, out var ordered) && ordered.Count > 0)
            {
                var probe = new Stored(entry, "");
                if (before > 0 && CreatedOrder.Instance.Compare(ordered.Min!, probe) < 0)
                {
                    Walk(ordered.GetViewBetween(ordered.Min, probe).Reverse(), preceding, before);
                }
                if (after > 0 && CreatedOrder.Instance.Compare(probe, ordered.Max!) < 0)
                {
                    Walk(ordered.GetViewBetween(probe, ordered.Max), following, after);
                }
            }

            void Walk(IEnumerable<Stored> side, List<MemoryEntry> into, int limit)
            {
                foreach (var s in side)
                {
                    var e = s.Entry;
                    if (e.Type == entry.Type && e.Id != entry.Id && !IsExpired(e, now))
                    {
                        into.Add(e);
                        if (into.Count == limit)
                        {
                            return;
                        }
                    }
                }
            }
            return Task.FromResult(new MemoryNeighbours(preceding, following));
        }
        finally
        {
            p.Lock.ExitReadLock();
        }
    }

    /// <inheritdoc />
    public Task SetEmbeddingsAsync(IReadOnlyList<EmbeddingUpdate> updates, CancellationToken cancellationToken = default)
    {
        foreach (var group in updates.GroupBy(u => u.TenantId, StringComparer.Ordinal))
        {
            if (!_partitions.TryGetValue(group.Key, out var p))
            {
                continue;
            }
            p.Lock.EnterWriteLock();
            try
            {
                foreach (var u in group)
                {
                    if (p.Entries.TryGetValue(u.Id, out var s) && s.ContentHash == u.ContentHash)
                    {
                        p.SetVector(s, u.Vector);
                    }
                }
            }
            finally
            {
                p.Lock.ExitWriteLock();
            }
        }
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<PendingEmbedding>> ListPendingEmbeddingsAsync(int limit, CancellationToken cancellationToken = default)
    {
        var pending = new List<PendingEmbedding>();
        foreach (var p in _partitions.Values)
        {
            p.Lock.EnterReadLock();
            try
            {
                pending.AddRange(p.Entries.Values.Where(s => s.Segment is null && s.AwaitsVector)
                    .Take(limit - pending.Count)
                    .Select(s => new PendingEmbedding(s.Entry.TenantId, s.Entry.Id, s.ContentHash, s.Entry.Content)));
            }
            finally
            {
                p.Lock.ExitReadLock();
            }
            if (pending.Count >= limit)
            {
                break;
            }
        }
        return Task.FromResult<IReadOnlyList<PendingEmbedding>>(pending);
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<ScoredId>> SearchVectorAsync(string tenantId, float[] query, MemoryFilter filter, int k, DateTimeOffset now, CancellationToken cancellationToken = default) =>
        Task.FromResult(SearchVector(tenantId, query, filter, k, now, approximate: true));

    /// <summary>The exhaustive vector search (the reference the approximate index is measured against).</summary>
    internal IReadOnlyList<ScoredId> SearchVectorExact(string tenantId, float[] query, MemoryFilter filter, int k, DateTimeOffset now) =>
        SearchVector(tenantId, query, filter, k, now, approximate: false);

    /// <summary>The approximate index of <paramref name="tenantId"/> (all zero when it is not built).</summary>
    internal VectorIndexStatistics VectorIndexStats(string tenantId)
    {
        if (!_partitions.TryGetValue(tenantId, out var p))
        {
            return default;
        }
        p.Lock.EnterReadLock();
        try
        {
            return p.Ivf is { IsTrained: true } ivf
                ? new VectorIndexStatistics(ivf.Count, ivf.ListCount, ivf.Probes, ivf.EstimatedRecall, ivf.Sparse, ivf.ApproximateBytes)
                : default;
        }
        finally
        {
            p.Lock.ExitReadLock();
        }
    }

    private static void AuditVectorIndex(Partition p, IvfVectorIndex<Stored> ivf, float[] query, HashSet<Stored> found, Func<Stored, bool> accept)
    {
        p.Lock.EnterReadLock();
        try
        {
            if (ReferenceEquals(p.Ivf, ivf))
            {
                ivf.Audit(query, found, accept, row => row.Segment is { } segment ? TensorPrimitives.Dot(query, segment.Vector(row)) : float.NegativeInfinity);
            }
        }
        finally
        {
            p.Lock.ExitReadLock();
        }
    }

    private IReadOnlyList<ScoredId> SearchVector(string tenantId, float[] query, MemoryFilter filter, int k, DateTimeOffset now, bool approximate)
    {
        if (!_partitions.TryGetValue(tenantId, out var p) || k <= 0)
        {
            return [];
        }
        p.Lock.EnterReadLock();
        try
        {
            // Tenant-wide searches use the index; a context, trace or user filter is selective,
            // so an approximate search could miss its few rows: those stay exact.
            if (approximate && p.Ivf is { IsTrained: true } ivf && ivf.Dimensions == query.Length
                && filter.ContextId is null && filter.TraceId is null && filter.UserId is null)
            {
                bool Accept(Stored row) => filter.Matches(row.Entry) && !IsExpired(row.Entry, now);
                static float Exact(float[] query, Stored row) => row.Segment is { } segment ? TensorPrimitives.Dot(query, segment.Vector(row)) : float.NegativeInfinity;
                var candidates = ivf.Search(query, ivf.Probes, k * Math.Max(1, p.Options.RerankFactor), Accept);
                var exact = new TopK(k);
                foreach (var row in candidates)
                {
                    if (row.Segment is not null)
                    {
                        exact.Offer(row.Entry.Id, Exact(query, row));
                    }
                }
                if (ivf.ShouldAudit())
                {
                    // Off the caller's path: compare this search's top 10 with a search of every list.
                    var found = candidates.OrderByDescending(row => Exact(query, row)).Take(10).ToHashSet();
                    _ = Task.Run(() => AuditVectorIndex(p, ivf, query, found, Accept));
                }
                return exact.Result();
            }
            IEnumerable<VectorSegment> segments = filter.ContextId is { } contextId
                ? p.Segments.TryGetValue(contextId, out var one) ? [one] : []
                : p.Segments.Values;
            // Only the context is implied by the segment; anything else is checked per row.
            var checkRows = filter with { ContextId = null } != MemoryFilter.None;
            var heap = new TopK(k);
            foreach (var segment in segments)
            {
                if (segment.Dimensions != query.Length)
                {
                    continue;
                }
                segment.Scan(query, heap, row => (!checkRows || filter.Matches(row.Entry)) && !IsExpired(row.Entry, now));
            }
            return heap.Result();
        }
        finally
        {
            p.Lock.ExitReadLock();
        }
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<ScoredId>> SearchLexicalAsync(string tenantId, string query, MemoryFilter filter, int k, DateTimeOffset now, CancellationToken cancellationToken = default) =>
        Task.FromResult(SearchLexical(tenantId, query, filter, k, now, prune: true));

    /// <summary>BM25 scoring every posting of every query term (the reference for the pruned search).</summary>
    internal IReadOnlyList<ScoredId> SearchLexicalExact(string tenantId, string query, MemoryFilter filter, int k, DateTimeOffset now) =>
        SearchLexical(tenantId, query, filter, k, now, prune: false);

    private IReadOnlyList<ScoredId> SearchLexical(string tenantId, string query, MemoryFilter filter, int k, DateTimeOffset now, bool prune)
    {
        if (!_partitions.TryGetValue(tenantId, out var p) || k <= 0)
        {
            return [];
        }
        p.Lock.EnterReadLock();
        try
        {
            var n = p.Entries.Count;
            if (n == 0)
            {
                return [];
            }
            var avgLength = Math.Max(1.0, (double)p.TotalLength / n);
            var terms = new List<(string Term, PostingList Postings, double Idf)>();
            foreach (var term in TextAnalysis.LexicalTerms(query, p.Options.LexicalStemming).Distinct(StringComparer.Ordinal))
            {
                if (p.Postings.TryGetValue(term, out var postings))
                {
                    terms.Add((term, postings, Math.Log(1 + ((n - postings.Count + 0.5) / (postings.Count + 0.5)))));
                }
            }
            double Score(Stored stored, int tf, double idf) => idf * tf * (K1 + 1) / (tf + (K1 * (1 - B + (B * stored.Length / avgLength))));

            var scores = new Dictionary<Stored, double>();
            // Statistics are tenant-wide; the walk is over whichever is smaller: the postings of the
            // query terms, or the entries of the filtered context / trace / user.
            var candidates = p.Candidates(filter);
            var postingCount = terms.Sum(t => (long)t.Postings.Count);
            if (candidates is HashSet<Stored> subset && subset.Count < postingCount)
            {
                foreach (var stored in subset)
                {
                    var total = 0.0;
                    foreach (var (_, postings, idf) in terms)
                    {
                        if (stored.TermFrequency(postings) is var tf and > 0)
                        {
                            total += Score(stored, tf, idf);
                        }
                    }
                    if (total > 0)
                    {
                        scores[stored] = total;
                    }
                }
            }
            else if (prune)
            {
                return MaxScore(terms, k, avgLength, stored => filter.Matches(stored.Entry) && !IsExpired(stored.Entry, now));
            }
            else
            {
                foreach (var (_, postings, idf) in terms)
                {
                    foreach (var (stored, tf) in postings.Docs())
                    {
                        var s = Score(stored, tf, idf);
                        scores[stored] = scores.TryGetValue(stored, out var acc) ? acc + s : s;
                    }
                }
            }
            var heap = new TopK(k);
            foreach (var (stored, score) in scores)
            {
                if (filter.Matches(stored.Entry) && !IsExpired(stored.Entry, now))
                {
                    heap.Offer(stored.Entry.Id, (float)score);
                }
            }
            return heap.Result();
        }
        finally
        {
            p.Lock.ExitReadLock();
        }
    }

    // MaxScore over a forward index. Each term's postings are split in two tiers (tf = 1 and
    // tf ≥ 2, each with its own score bound, so the bound of a frequent word is not set by its
    // rare repeated occurrences); the (term, tier) units are walked by decreasing bound. An entry
    // is scored in full (all query terms, from its own term counts, summed in query order like the
    // exhaustive path, so scores are bit-identical) the first time one of its units is walked.
    // Before walking a unit, an entry not yet seen can only be in this and later units, so when the
    // sum of their bounds cannot beat the k-th score the search stops: the long posting lists of
    // frequent words (low idf, low bound) are usually never walked.
    private static IReadOnlyList<ScoredId> MaxScore(List<(string Term, PostingList Postings, double Idf)> terms, int k, double avgLength, Func<Stored, bool> accept)
    {
        double Score(Stored stored, int tf, double idf) => idf * tf * (K1 + 1) / (tf + (K1 * (1 - B + (B * stored.Length / avgLength))));
        double Bound(double idf, int tf, int minLength) => idf * tf * (K1 + 1) / (tf + (K1 * (1 - B + (B * minLength / avgLength))));
        double ScoreOf(int length, int tf, double idf) => idf * tf * (K1 + 1) / (tf + (K1 * (1 - B + (B * length / avgLength))));

        var m = terms.Count;
        // Bound per unit: the highest term frequency of the tier in the shortest entry seen in it
        // (a removal leaves the bound as it was, which stays an upper bound).
        var units = new List<(int Term, bool Many, PostingTier Docs, double Bound)>();
        for (var q = 0; q < m; q++)
        {
            var (_, postings, idf) = terms[q];
            if (postings.Ones.Count > 0)
            {
                units.Add((q, false, postings.Ones, Bound(idf, 1, postings.MinLengthOnes)));
            }
            if (postings.Many.Count > 0)
            {
                units.Add((q, true, postings.Many, Bound(idf, postings.MaxTf, postings.MinLengthMany)));
            }
        }
        units = units.OrderByDescending(u => u.Bound).ThenBy(u => u.Docs.Count).ToList();
        var rest = new double[units.Count + 1];
        for (var i = units.Count - 1; i >= 0; i--)
        {
            rest[i] = rest[i + 1] + units[i].Bound;
        }
        // Slack against rounding: a bound is only trusted to prune when clearly below the threshold.
        static bool Below(double bound, float threshold) => (bound * (1 + 1e-9)) + 1e-12 < threshold;

        var heap = new TopK(k);
        var lists = terms.Select(t => t.Postings).ToArray();
        var tfs = new int[m];
        for (var step = 0; step < units.Count; step++)
        {
            if (heap.IsFull && Below(rest[step], heap.Min))
            {
                break;
            }
            var (_, many, docs, _) = units[step];
            var idf = terms[units[step].Term].Idf;
            var threshold = heap.IsFull ? heap.Min : float.NegativeInfinity;
            foreach (var (stored, value) in docs)
            {
                // The tf = 1 tier holds each entry's length: the bound check needs no entry access.
                if (heap.IsFull && Below(ScoreOf(many ? stored.Length : value, many ? value : 1, idf) + rest[step + 1], threshold))
                {
                    continue;
                }
                // One pass over the entry's terms: its frequency of each query term.
                Array.Clear(tfs);
                foreach (var (list, count) in stored.Terms)
                {
                    for (var q = 0; q < lists.Length; q++)
                    {
                        if (ReferenceEquals(lists[q], list))
                        {
                            tfs[q] = count;
                            break;
                        }
                    }
                }
                var seen = false;
                for (var j = 0; j < step && !seen; j++)
                {
                    var earlier = units[j];
                    seen = earlier.Many ? tfs[earlier.Term] >= 2 : tfs[earlier.Term] == 1;
                }
                if (seen)
                {
                    continue;
                }
                var total = 0.0;
                for (var q = 0; q < m; q++)
                {
                    if (tfs[q] > 0)
                    {
                        total += Score(stored, tfs[q], terms[q].Idf);
                    }
                }
                if (heap.WouldAccept((float)total) && accept(stored))
                {
                    heap.Offer(stored.Entry.Id, (float)total);
                    threshold = heap.IsFull ? heap.Min : float.NegativeInfinity;
                }
            }
        }
        return heap.Result();
    }

    /// <inheritdoc />
    public Task TouchAsync(string tenantId, IReadOnlyCollection<string> ids, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        if (!_partitions.TryGetValue(tenantId, out var p))
        {
            return Task.CompletedTask;
        }
        p.Lock.EnterWriteLock();
        try
        {
            foreach (var id in ids)
            {
                if (p.Entries.TryGetValue(id, out var s))
                {
                    s.Entry = s.Entry with { AccessCount = s.Entry.AccessCount + 1, LastAccessedAt = now };
                }
            }
        }
        finally
        {
            p.Lock.ExitWriteLock();
        }
        return Task.CompletedTask;
    }

    private Partition PartitionOf(string tenantId) => _partitions.GetOrAdd(tenantId, _ => new Partition(IndexOptions, _budget));

    // A write the cap refuses changes nothing; expired entries (invisible to reads already) are then
    // removed to make room and the write is tried once more. The scan takes one partition lock at a
    // time and runs at most once per EvictionInterval, so a store full of live entries refuses
    // writes cheaply instead of rescanning on each.
    private T WriteEvictingWhenFull<T>(string tenantId, Func<Partition, T> write)
    {
        var p = PartitionOf(tenantId);
        try
        {
            return Locked(p, write);
        }
        catch (ProblemException refused) when (refused.Status == 507)
        {
            // Not in the filter: it runs before the partition lock is released.
            if (!EvictExpired())
            {
                throw;
            }
            return Locked(p, write);
        }

        static T Locked(Partition p, Func<Partition, T> write)
        {
            p.Lock.EnterWriteLock();
            try
            {
                return write(p);
            }
            finally
            {
                p.Lock.ExitWriteLock();
            }
        }
    }

    private bool EvictExpired()
    {
        var now = Time.GetUtcNow();
        var last = Interlocked.Read(ref _lastEvictionTicks);
        if (now.UtcTicks - last < EvictionInterval.Ticks || Interlocked.CompareExchange(ref _lastEvictionTicks, now.UtcTicks, last) != last)
        {
            return false;
        }
        var evicted = false;
        foreach (var p in _partitions.Values)
        {
            p.Lock.EnterWriteLock();
            try
            {
                foreach (var id in p.Entries.Where(e => IsExpired(e.Value.Entry, now)).Select(e => e.Key).ToList())
                {
                    evicted |= p.Remove(id);
                }
            }
            finally
            {
                p.Lock.ExitWriteLock();
            }
        }
        return evicted;
    }

    // The store-wide estimate all partitions charge.
    private sealed class Budget
    {
        public long Bytes;
        public long Max = long.MaxValue;

        public void Charge(long delta, string what)
        {
            if (delta > 0 && Interlocked.Read(ref Bytes) + delta > Max)
            {
                throw new ProblemException(507, "store-full",
                    $"The in-memory long-term memory store is at its cap ({Max / (1024 * 1024)} MiB, {MemoryServiceCollectionExtensions.MaxMemoryMegabytesKey}) and holds no expired entries to evict; {what} was not stored. " +
                    "Delete memories, set ConnectionStrings:CloudMemory to use PostgreSQL, or raise the cap.");
            }
            Interlocked.Add(ref Bytes, delta);
        }
    }

    private static bool IsExpired(MemoryEntry entry, DateTimeOffset now) => entry.ExpiresAt is { } at && at <= now;

    // Created time, then id: the order a conversation's turns were written in.
    private sealed class CreatedOrder : IComparer<Stored>
    {
        public static readonly CreatedOrder Instance = new();

        public int Compare(Stored? a, Stored? b)
        {
            var c = a!.Entry.CreatedAt.CompareTo(b!.Entry.CreatedAt);
            return c != 0 ? c : string.CompareOrdinal(a.Entry.Id, b.Entry.Id);
        }
    }

    private sealed class Stored(MemoryEntry entry, string contentHash) : IIvfRow
    {
        private static int _lastHash;

        // Stored objects are keys of the posting, context, trace and user sets: a hash of their own
        // spares the runtime's object hash on every insert (equality stays by reference).
        private readonly int _hash = Interlocked.Increment(ref _lastHash);

        public MemoryEntry Entry { get; set; } = entry;
        public string ContentHash { get; set; } = contentHash;
        // The entry's distinct terms (as their posting lists) with their frequencies: a forward
        // index compact enough for a million entries and compared by reference, not by string.
        public TermCount[] Terms { get; set; } = [];

        public int TermFrequency(PostingList postings)
        {
            foreach (var (list, tf) in Terms)
            {
                if (ReferenceEquals(list, postings))
                {
                    return tf;
                }
            }
            return 0;
        }
        public int Length { get; set; }
        // Estimated bytes charged, including Reserved.
        public long Cost { get; set; }
        // Bytes charged for the vector this entry waits for (settled when it arrives).
        public long Reserved { get; set; }
        // False for a keyword-only entry: without a vector it is not pending.
        public bool AwaitsVector { get; set; } = true;
        public VectorSegment? Segment { get; set; }
        public int Slot { get; set; } = -1;
        public int IvfList { get; set; } = -1;
        public int IvfSlot { get; set; } = -1;

        public override int GetHashCode() => _hash;

        public override bool Equals(object? obj) => ReferenceEquals(this, obj);
    }

    // Postings of one term with bounds for MaxScore: the largest term frequency and the shortest
    // entry ever indexed with the term (never lowered on removal, so they stay upper bounds).
    // Slot: where the entry is in the posting list's tier (tf 1 or tf ≥ 2), so a removal needs no search.
    private record struct TermCount(PostingList List, int Tf)
    {
        public int Slot { get; set; }
    }

    private sealed class PostingList(string term)
    {
        public string Term { get; } = term;
        // Entries with tf 1, valued by their length (tf is implied); entries with tf ≥ 2, valued by tf.
        public PostingTier Ones { get; } = new();
        public PostingTier Many { get; } = new();
        public int Count => Ones.Count + Many.Count;
        public int MaxTf { get; private set; }
        public int MinLengthOnes { get; private set; } = int.MaxValue;
        public int MinLengthMany { get; private set; } = int.MaxValue;

        // Scratch of Partition.CountTerms (under the write lock): the entry being counted, and the term's frequency in it.
        public int CountedFor { get; set; }
        public int CountedTf { get; set; }

        // (entry, tf) for every entry.
        public IEnumerable<(Stored Stored, int Tf)> Docs()
        {
            foreach (var (stored, _) in Ones)
            {
                yield return (stored, 1);
            }
            foreach (var doc in Many)
            {
                yield return doc;
            }
        }

        // Returns the entry's slot in its tier.
        public int Add(Stored stored, int tf)
        {
            if (tf == 1)
            {
                MinLengthOnes = Math.Min(MinLengthOnes, stored.Length);
                return Ones.Add(stored, stored.Length);
            }
            MaxTf = Math.Max(MaxTf, tf);
            MinLengthMany = Math.Min(MinLengthMany, stored.Length);
            return Many.Add(stored, tf);
        }

        public void Remove(TermCount term)
        {
            var tier = term.Tf == 1 ? Ones : Many;
            if (tier.RemoveAt(term.Slot) is not { } moved)
            {
                return;
            }
            // The tier's last entry took the slot: its own forward index learns where it is now.
            var terms = moved.Terms;
            for (var i = 0; i < terms.Length; i++)
            {
                if (ReferenceEquals(terms[i].List, this))
                {
                    terms[i].Slot = term.Slot;
                    return;
                }
            }
        }
    }

    // One tier of a posting list: (entry, value) pairs in fixed chunks, so it grows without copying
    // and never allocates a large-object array (a common word is in most entries); a removal moves
    // the last pair into the freed slot.
    private sealed class PostingTier
    {
        private const int ChunkBits = 10;
        private const int ChunkSize = 1 << ChunkBits;
        private readonly List<Stored[]> _docs = [];
        private readonly List<int[]> _values = [];

        public int Count { get; private set; }

        public int Add(Stored stored, int value)
        {
            var slot = Count;
            if ((slot >> ChunkBits) == _docs.Count)
            {
                // The first chunk starts small: most terms are rare.
                var size = slot == 0 ? 4 : ChunkSize;
                _docs.Add(new Stored[size]);
                _values.Add(new int[size]);
            }
            else if (slot < ChunkSize && slot == _docs[0].Length)
            {
                var size = Math.Min(ChunkSize, slot * 2);
                var docs = _docs[0];
                var values = _values[0];
                Array.Resize(ref docs, size);
                Array.Resize(ref values, size);
                _docs[0] = docs;
                _values[0] = values;
            }
            _docs[slot >> ChunkBits][slot & (ChunkSize - 1)] = stored;
            _values[slot >> ChunkBits][slot & (ChunkSize - 1)] = value;
            Count++;
            return slot;
        }

        // Removes the pair at slot; returns the entry moved into it (null when slot was the last).
        public Stored? RemoveAt(int slot)
        {
            var last = Count - 1;
            Stored? moved = null;
            if (slot != last)
            {
                moved = _docs[last >> ChunkBits][last & (ChunkSize - 1)];
                _docs[slot >> ChunkBits][slot & (ChunkSize - 1)] = moved;
                _values[slot >> ChunkBits][slot & (ChunkSize - 1)] = _values[last >> ChunkBits][last & (ChunkSize - 1)];
            }
            _docs[last >> ChunkBits][last & (ChunkSize - 1)] = null!;
            Count--;
            if ((last & (ChunkSize - 1)) == 0 && last > 0)
            {
                _docs.RemoveAt(_docs.Count - 1);
                _values.RemoveAt(_values.Count - 1);
            }
            return moved;
        }

        public Enumerator GetEnumerator() => new(this);

        public struct Enumerator(PostingTier tier)
        {
            private int _next = -1;

            public readonly (Stored Stored, int Value) Current =>
                (tier._docs[_next >> ChunkBits][_next & (ChunkSize - 1)], tier._values[_next >> ChunkBits][_next & (ChunkSize - 1)]);

            public bool MoveNext() => ++_next < tier.Count;
        }
    }

    private sealed class Partition(InMemoryIndexOptions options, Budget budget)
    {
        public InMemoryIndexOptions Options { get; } = options;
        public IvfVectorIndex<Stored>? Ivf { get; private set; }
        public int VectorCount { get; private set; }
        public ReaderWriterLockSlim Lock { get; } = new(LockRecursionPolicy.NoRecursion);
        public Dictionary<string, Stored> Entries { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, HashSet<Stored>> ByContext { get; } = new(StringComparer.Ordinal);
        // Each context's entries in (created, id) order, for neighbour look-ups in O(log n).
        public Dictionary<string, SortedSet<Stored>> ContextOrder { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, HashSet<Stored>> ByTrace { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, HashSet<Stored>> ByUser { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, PostingList> Postings { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, VectorSegment> Segments { get; } = new(StringComparer.Ordinal);
        public long TotalLength { get; set; }
        // Erased contexts ('c') and users ('u') with when (RecordErasureAsync); read and written under Lock.
        public Dictionary<(char Kind, string Id), DateTimeOffset> Erased { get; } = [];

        public bool IsErased(MemoryEntry entry) =>
            Erased.Count > 0
            && ((entry.ContextId is { } context && Erased.TryGetValue(('c', context), out var at) && entry.CreatedAt <= at)
                || (entry.UserId is { } user && Erased.TryGetValue(('u', user), out at) && entry.CreatedAt <= at));

        // Scratch of CountTerms (under the write lock): the distinct terms of the entry being written,
        // with their frequencies in PostingList.CountedTf, and the terms new to the partition.
        private readonly List<PostingList> _counted = [];
        private readonly Dictionary<string, PostingList> _newTerms = new(StringComparer.Ordinal);
        private int _counting;

        // reservation: bytes to charge for the vector the entry will wait for; null: keyword-only.
        public bool Upsert(MemoryEntry entry, string contentHash, long? reservation)
        {
            var length = CountTerms(entry.Content);
            var found = Entries.TryGetValue(entry.Id, out var existing);
            // Same content keeps the vector (moved along if the context changed): nothing to wait for.
            var keepsVector = found && existing!.ContentHash == contentHash && existing.Segment is not null;
            var reserved = keepsVector ? 0 : reservation ?? 0;
            var cost = CostOf(entry, _counted.Count) + reserved;
            // Refused before anything changes: a write past the cap leaves the store as it was.
            budget.Charge(cost - (found ? existing!.Cost : 0), $"memory '{entry.Id}'");
            if (found)
            {
                existing!.Cost = cost;
                existing.Reserved = reserved;
                existing.AwaitsVector = reservation is not null;
                var contentChanged = existing.ContentHash != contentHash;
                var contextChanged = existing.Entry.ContextId != entry.ContextId;
                // Same content in another context: the vector moves to the new context's segment.
                var moved = !contentChanged && contextChanged ? existing.Segment?.Copy(existing) : null;
                Unindex(existing, removeVector: contentChanged || contextChanged);
                existing.Entry = entry;
                existing.ContentHash = contentHash;
                Index(existing, length);
                if (moved is not null)
                {
                    SetVector(existing, moved);
                }
                return false;
            }
            var stored = new Stored(entry, contentHash) { Cost = cost, Reserved = reserved, AwaitsVector = reservation is not null };
            Entries[entry.Id] = stored;
            Index(stored, length);
            return true;
        }

        // Counts the terms of content into _counted without a string per token: a term is looked up
        // by its span (a string is made only for a term new to the partition). Nothing of the index
        // changes, so a write the cap then refuses leaves it as it was. Returns the number of terms.
        private int CountTerms(string content)
        {
            _counted.Clear();
            _newTerms.Clear();
            // A fresh PostingList has CountedFor 0: never a counting number.
            var counting = _counting = _counting == int.MaxValue ? 1 : _counting + 1;
            var postings = Postings.GetAlternateLookup<ReadOnlySpan<char>>();
            var newTerms = _newTerms.GetAlternateLookup<ReadOnlySpan<char>>();
            var length = 0;
            foreach (var term in TextAnalysis.EnumerateLexicalTerms(content, Options.LexicalStemming, stackalloc char[128]))
            {
                length++;
                if (!postings.TryGetValue(term, out var list) && !newTerms.TryGetValue(term, out list))
                {
                    list = new PostingList(term.ToString());
                    _newTerms[list.Term] = list;
                }
                if (list.CountedFor != counting)
                {
                    list.CountedFor = counting;
                    list.CountedTf = 0;
                    _counted.Add(list);
                }
                list.CountedTf++;
            }
            return length;
        }

        public bool Remove(string id)
        {
            if (!Entries.Remove(id, out var stored))
            {
                return false;
            }
            Unindex(stored, removeVector: true);
            budget.Charge(-stored.Cost, "");
            return true;
        }

        public void SetVector(Stored stored, float[] vector)
        {
            var key = stored.Entry.ContextId ?? string.Empty;
            RemoveVector(stored);
            if (!Segments.TryGetValue(key, out var segment))
            {
                segment = new VectorSegment(vector.Length);
                Segments[key] = segment;
            }
            if (segment.Dimensions == vector.Length)
            {
                // Never refused: the entry was accepted, and its vector is part of its price (reserved
                // at admission, so this settles the reservation: no change when the size was expected).
                Interlocked.Add(ref budget.Bytes, (long)VectorBytesPerDimension * vector.Length - stored.Reserved);
                stored.Cost -= stored.Reserved;
                stored.Reserved = 0;
                segment.Add(stored, vector);
                VectorCount++;
                IndexVector(stored, vector);
            }
        }

        private void IndexVector(Stored stored, float[] vector)
        {
            if (Ivf is { IsTrained: true } ivf)
            {
                if (ivf.Dimensions == vector.Length)
                {
                    ivf.Add(stored, vector);
                }
                return;
            }
            if (VectorCount < Options.ApproximateThreshold)
            {
                return;
            }
            // Built once, from the vectors of the dimension of the one that crossed the threshold.
            var rows = Segments.Values.Where(s => s.Dimensions == vector.Length).SelectMany(s => s.Rows).ToList();
            if (rows.Count < Options.ApproximateThreshold)
            {
                return;
            }
            Ivf = new IvfVectorIndex<Stored>(vector.Length, Options);
            Ivf.Train(rows, row => row.Segment!.Vector(row));
        }

        private void RemoveVector(Stored stored)
        {
            if (stored.Segment is null)
            {
                return;
            }
            Interlocked.Add(ref budget.Bytes, -(long)VectorBytesPerDimension * stored.Segment.Dimensions);
            stored.Segment.Remove(stored);
            VectorCount--;
            Ivf?.Remove(stored);
        }

        public IEnumerable<Stored> Candidates(MemoryFilter filter) =>
            filter.ContextId is { } c ? Lookup(ByContext, c)
            : filter.TraceId is { } t ? Lookup(ByTrace, t)
            : filter.UserId is { } u ? Lookup(ByUser, u)
            : Entries.Values;

        private static IEnumerable<Stored> Lookup(Dictionary<string, HashSet<Stored>> index, string key) =>
            index.TryGetValue(key, out var set) ? set : new HashSet<Stored>();

        // Indexes stored with the terms CountTerms counted (length: their number).
        private void Index(Stored stored, int length)
        {
            var e = stored.Entry;
            Add(ByContext, e.ContextId, stored);
            if (e.ContextId is { } context)
            {
                if (!ContextOrder.TryGetValue(context, out var ordered))
                {
                    ordered = new SortedSet<Stored>(CreatedOrder.Instance);
                    ContextOrder[context] = ordered;
                }
                ordered.Add(stored);
            }
            Add(ByTrace, e.TraceId, stored);
            Add(ByUser, e.UserId, stored);
            stored.Length = length;
            TotalLength += length;
            var forward = new TermCount[_counted.Count];
            for (var i = 0; i < forward.Length; i++)
            {
                var postings = _counted[i];
                if (postings.Count == 0)
                {
                    // New to the partition, or emptied by the Unindex of the entry's previous version.
                    Postings[postings.Term] = postings;
                }
                forward[i] = new TermCount(postings, postings.CountedTf) { Slot = postings.Add(stored, postings.CountedTf) };
            }
            stored.Terms = forward;
        }

        private void Unindex(Stored stored, bool removeVector)
        {
            var e = stored.Entry;
            Drop(ByContext, e.ContextId, stored);
            if (e.ContextId is { } context && ContextOrder.TryGetValue(context, out var ordered))
            {
                ordered.Remove(stored);
                if (ordered.Count == 0)
                {
                    ContextOrder.Remove(context);
                }
            }
            Drop(ByTrace, e.TraceId, stored);
            Drop(ByUser, e.UserId, stored);
            TotalLength -= stored.Length;
            foreach (var term in stored.Terms)
            {
                var postings = term.List;
                postings.Remove(term);
                if (postings.Count == 0 && Postings.TryGetValue(postings.Term, out var current) && ReferenceEquals(current, postings))
                {
                    Postings.Remove(postings.Term);
                }
            }
            stored.Terms = [];
            if (removeVector)
            {
                RemoveVector(stored);
            }
        }

        private static void Add(Dictionary<string, HashSet<Stored>> index, string? key, Stored stored)
        {
            if (key is null)
            {
                return;
            }
            if (!index.TryGetValue(key, out var set))
            {
                set = [];
                index[key] = set;
            }
            set.Add(stored);
        }

        private static void Drop(Dictionary<string, HashSet<Stored>> index, string? key, Stored stored)
        {
            if (key is not null && index.TryGetValue(key, out var set))
            {
                set.Remove(stored);
                if (set.Count == 0)
                {
                    index.Remove(key);
                }
            }
        }
    }

    // Vectors of one context in one contiguous array, so a scan walks memory linearly.
    private sealed class VectorSegment(int dimensions)
    {
        private float[] _data = new float[dimensions * 16];
        private Stored[] _rows = new Stored[16];

        public int Dimensions { get; } = dimensions;

        public int Count { get; private set; }

        public void Add(Stored stored, float[] vector)
        {
            if (Count == _rows.Length)
            {
                Array.Resize(ref _rows, _rows.Length * 2);
                Array.Resize(ref _data, _rows.Length * Dimensions);
            }
            vector.CopyTo(_data.AsSpan(Count * Dimensions, Dimensions));
            _rows[Count] = stored;
            stored.Segment = this;
            stored.Slot = Count;
            Count++;
        }

        public float[] Copy(Stored stored) => Vector(stored).ToArray();

        public ReadOnlySpan<float> Vector(Stored stored) => _data.AsSpan(stored.Slot * Dimensions, Dimensions);

        public IEnumerable<Stored> Rows => _rows.Take(Count);

        // Swap-remove keeps the array dense.
        public void Remove(Stored stored)
        {
            var slot = stored.Slot;
            var last = Count - 1;
            if (slot != last)
            {
                _data.AsSpan(last * Dimensions, Dimensions).CopyTo(_data.AsSpan(slot * Dimensions, Dimensions));
                _rows[slot] = _rows[last];
                _rows[slot].Slot = slot;
            }
            _rows[last] = null!;
            Count--;
            stored.Segment = null;
            stored.Slot = -1;
        }

        public void Scan(float[] query, TopK heap, Func<Stored, bool> accept)
        {
            if (Count < ParallelScanThreshold)
            {
                ScanRange(query, 0, Count, heap, accept);
                return;
            }
            var chunks = Environment.ProcessorCount;
            var partial = new TopK[chunks];
            var size = (Count + chunks - 1) / chunks;
            Parallel.For(0, chunks, c =>
            {
                partial[c] = new TopK(heap.K);
                ScanRange(query, c * size, Math.Min(Count, (c + 1) * size), partial[c], accept);
            });
            foreach (var part in partial)
            {
                part.MergeInto(heap);
            }
        }

        private void ScanRange(float[] query, int from, int to, TopK heap, Func<Stored, bool> accept)
        {
            var q = query.AsSpan();
            for (var i = from; i < to; i++)
            {
                var score = TensorPrimitives.Dot(q, _data.AsSpan(i * Dimensions, Dimensions));
                if (heap.WouldAccept(score) && accept(_rows[i]))
                {
                    heap.Offer(_rows[i].Entry.Id, score);
                }
            }
        }
    }

    // Bounded min-heap: keeps the k best scores seen.
    private sealed class TopK(int k)
    {
        private readonly PriorityQueue<string, float> _queue = new();

        public int K { get; } = k;

        public bool IsFull => _queue.Count >= K;

        // The k-th best score (only meaningful when full).
        public float Min => _queue.TryPeek(out _, out var min) ? min : float.NegativeInfinity;

        public bool WouldAccept(float score) => _queue.Count < K || (_queue.TryPeek(out _, out var min) && score > min);

        public void Offer(string id, float score)
        {
            if (_queue.Count < K)
            {
                _queue.Enqueue(id, score);
            }
            else if (_queue.TryPeek(out _, out var min) && score > min)
            {
                _queue.DequeueEnqueue(id, score);
            }
        }

        public void MergeInto(TopK other)
        {
            foreach (var (id, score) in _queue.UnorderedItems)
            {
                other.Offer(id, score);
            }
        }

        public IReadOnlyList<ScoredId> Result() =>
            _queue.UnorderedItems.OrderByDescending(x => x.Priority).ThenBy(x => x.Element, StringComparer.Ordinal)
                .Select(x => new ScoredId(x.Element, x.Priority)).ToList();
    }
}
