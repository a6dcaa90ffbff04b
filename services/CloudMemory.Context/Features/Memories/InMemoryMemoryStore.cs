using System.Collections.Concurrent;
using System.Numerics.Tensors;

namespace CloudMemory.Context.Features.Memories;

/// <summary>
/// The embedded store: per tenant, a dictionary of entries, secondary indexes by context, trace
/// and user (lookups, not scans), an Okapi BM25 inverted index (k1 1.2, b 0.75) and contiguous
/// vector segments per context scored with SIMD dot products (vectors are L2-normalized, so the
/// dot product is the cosine).
/// </summary>
public sealed class InMemoryMemoryStore : IMemoryStore
{
    private const double K1 = 1.2;
    private const double B = 0.75;

    // Above this many rows a scan is split across cores.
    private const int ParallelScanThreshold = 65_536;

    private readonly ConcurrentDictionary<string, Partition> _partitions = new(StringComparer.Ordinal);

    /// <inheritdoc />
    public Task InitializeAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

    /// <inheritdoc />
    public Task<bool> UpsertAsync(MemoryEntry entry, string contentHash, CancellationToken cancellationToken = default)
    {
        var p = PartitionOf(entry.TenantId);
        p.Lock.EnterWriteLock();
        try
        {
            return Task.FromResult(p.Upsert(entry, contentHash));
        }
        finally
        {
            p.Lock.ExitWriteLock();
        }
    }

    /// <inheritdoc />
    public Task<(MemoryEntry Entry, bool Created)> InsertIfAbsentAsync(MemoryEntry entry, string contentHash, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        var p = PartitionOf(entry.TenantId);
        p.Lock.EnterWriteLock();
        try
        {
            if (p.Entries.TryGetValue(entry.Id, out var existing) && !IsExpired(existing.Entry, now))
            {
                return Task.FromResult((existing.Entry, false));
            }
            p.Upsert(entry, contentHash);
            return Task.FromResult((entry, true));
        }
        finally
        {
            p.Lock.ExitWriteLock();
        }
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
            foreach (var id in ids)
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
            // A linear pass over the context: the nearest `before` smaller and `after` larger keys.
            var preceding = new List<MemoryEntry>();
            var following = new List<MemoryEntry>();
            foreach (var s in p.Candidates(new MemoryFilter(ContextId: context)))
            {
                var e = s.Entry;
                if (e.Type != entry.Type || IsExpired(e, now) || e.Id == entry.Id)
                {
                    continue;
                }
                var order = CompareOrder(e, entry);
                if (order < 0 && before > 0)
                {
                    Keep(preceding, e, before, (a, b) => CompareOrder(b, a));
                }
                else if (order > 0 && after > 0)
                {
                    Keep(following, e, after, CompareOrder);
                }
            }
            return Task.FromResult(new MemoryNeighbours(preceding, following));
        }
        finally
        {
            p.Lock.ExitReadLock();
        }
    }

    private static int CompareOrder(MemoryEntry a, MemoryEntry b)
    {
        var c = a.CreatedAt.CompareTo(b.CreatedAt);
        return c != 0 ? c : string.CompareOrdinal(a.Id, b.Id);
    }

    // Keeps the `limit` smallest entries of `list` under `compare`, sorted (insertion; limits are tiny).
    private static void Keep(List<MemoryEntry> list, MemoryEntry e, int limit, Comparison<MemoryEntry> compare)
    {
        var i = list.Count;
        while (i > 0 && compare(e, list[i - 1]) < 0)
        {
            i--;
        }
        if (i < limit)
        {
            list.Insert(i, e);
            if (list.Count > limit)
            {
                list.RemoveAt(list.Count - 1);
            }
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
                pending.AddRange(p.Entries.Values.Where(s => s.Segment is null)
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
    public Task<IReadOnlyList<ScoredId>> SearchVectorAsync(string tenantId, float[] query, MemoryFilter filter, int k, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        if (!_partitions.TryGetValue(tenantId, out var p) || k <= 0)
        {
            return Task.FromResult<IReadOnlyList<ScoredId>>([]);
        }
        p.Lock.EnterReadLock();
        try
        {
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
            return Task.FromResult(heap.Result());
        }
        finally
        {
            p.Lock.ExitReadLock();
        }
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<ScoredId>> SearchLexicalAsync(string tenantId, string query, MemoryFilter filter, int k, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        if (!_partitions.TryGetValue(tenantId, out var p) || k <= 0)
        {
            return Task.FromResult<IReadOnlyList<ScoredId>>([]);
        }
        p.Lock.EnterReadLock();
        try
        {
            var n = p.Entries.Count;
            if (n == 0)
            {
                return Task.FromResult<IReadOnlyList<ScoredId>>([]);
            }
            var avgLength = Math.Max(1.0, (double)p.TotalLength / n);
            var terms = new List<(string Term, Dictionary<Stored, int> Postings, double Idf)>();
            foreach (var term in TextAnalysis.LexicalTerms(query).Distinct(StringComparer.Ordinal))
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
                    foreach (var (term, _, idf) in terms)
                    {
                        if (stored.Terms.TryGetValue(term, out var tf))
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
            else
            {
                foreach (var (_, postings, idf) in terms)
                {
                    foreach (var (stored, tf) in postings)
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
            return Task.FromResult(heap.Result());
        }
        finally
        {
            p.Lock.ExitReadLock();
        }
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

    private Partition PartitionOf(string tenantId) => _partitions.GetOrAdd(tenantId, _ => new Partition());

    private static bool IsExpired(MemoryEntry entry, DateTimeOffset now) => entry.ExpiresAt is { } at && at <= now;

    private sealed class Stored(MemoryEntry entry, string contentHash)
    {
        public MemoryEntry Entry { get; set; } = entry;
        public string ContentHash { get; set; } = contentHash;
        public Dictionary<string, int> Terms { get; set; } = [];
        public int Length { get; set; }
        public VectorSegment? Segment { get; set; }
        public int Slot { get; set; } = -1;
    }

    private sealed class Partition
    {
        public ReaderWriterLockSlim Lock { get; } = new(LockRecursionPolicy.NoRecursion);
        public Dictionary<string, Stored> Entries { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, HashSet<Stored>> ByContext { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, HashSet<Stored>> ByTrace { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, HashSet<Stored>> ByUser { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, Dictionary<Stored, int>> Postings { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, VectorSegment> Segments { get; } = new(StringComparer.Ordinal);
        public long TotalLength { get; set; }

        public bool Upsert(MemoryEntry entry, string contentHash)
        {
            if (Entries.TryGetValue(entry.Id, out var existing))
            {
                var contentChanged = existing.ContentHash != contentHash;
                var contextChanged = existing.Entry.ContextId != entry.ContextId;
                // Same content in another context: the vector moves to the new context's segment.
                var moved = !contentChanged && contextChanged ? existing.Segment?.Copy(existing) : null;
                Unindex(existing, removeVector: contentChanged || contextChanged);
                existing.Entry = entry;
                existing.ContentHash = contentHash;
                Index(existing);
                if (moved is not null)
                {
                    SetVector(existing, moved);
                }
                return false;
            }
            var stored = new Stored(entry, contentHash);
            Entries[entry.Id] = stored;
            Index(stored);
            return true;
        }

        public bool Remove(string id)
        {
            if (!Entries.Remove(id, out var stored))
            {
                return false;
            }
            Unindex(stored, removeVector: true);
            return true;
        }

        public void SetVector(Stored stored, float[] vector)
        {
            var key = stored.Entry.ContextId ?? string.Empty;
            if (stored.Segment is not null)
            {
                stored.Segment.Remove(stored);
            }
            if (!Segments.TryGetValue(key, out var segment))
            {
                segment = new VectorSegment(vector.Length);
                Segments[key] = segment;
            }
            if (segment.Dimensions == vector.Length)
            {
                segment.Add(stored, vector);
            }
        }

        public IEnumerable<Stored> Candidates(MemoryFilter filter) =>
            filter.ContextId is { } c ? Lookup(ByContext, c)
            : filter.TraceId is { } t ? Lookup(ByTrace, t)
            : filter.UserId is { } u ? Lookup(ByUser, u)
            : Entries.Values;

        private static IEnumerable<Stored> Lookup(Dictionary<string, HashSet<Stored>> index, string key) =>
            index.TryGetValue(key, out var set) ? set : new HashSet<Stored>();

        private void Index(Stored stored)
        {
            var e = stored.Entry;
            Add(ByContext, e.ContextId, stored);
            Add(ByTrace, e.TraceId, stored);
            Add(ByUser, e.UserId, stored);
            var terms = TextAnalysis.LexicalTerms(e.Content);
            stored.Length = terms.Count;
            TotalLength += terms.Count;
            stored.Terms = terms.GroupBy(t => t, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
            foreach (var (term, tf) in stored.Terms)
            {
                if (!Postings.TryGetValue(term, out var postings))
                {
                    postings = [];
                    Postings[term] = postings;
                }
                postings[stored] = tf;
            }
        }

        private void Unindex(Stored stored, bool removeVector)
        {
            var e = stored.Entry;
            Drop(ByContext, e.ContextId, stored);
            Drop(ByTrace, e.TraceId, stored);
            Drop(ByUser, e.UserId, stored);
            TotalLength -= stored.Length;
            foreach (var term in stored.Terms.Keys)
            {
                if (Postings.TryGetValue(term, out var postings))
                {
                    postings.Remove(stored);
                    if (postings.Count == 0)
                    {
                        Postings.Remove(term);
                    }
                }
            }
            if (removeVector && stored.Segment is not null)
            {
                stored.Segment.Remove(stored);
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

        public float[] Copy(Stored stored) => _data.AsSpan(stored.Slot * Dimensions, Dimensions).ToArray();

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
