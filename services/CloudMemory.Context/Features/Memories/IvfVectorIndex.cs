using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace CloudMemory.Context.Features.Memories;

/// <summary>Settings of the in-memory store's approximate vector index (IVF-flat over int8 codes).</summary>
public sealed record InMemoryIndexOptions
{
    /// <summary>
    /// Whether the BM25 index stems terms (<c>CloudMemory:LongTermMemory:LexicalStemming</c>, default
    /// true). PostgreSQL's <c>english</c> tsvector stems too, so stemming makes the two stores rank alike.
    /// </summary>
    public bool LexicalStemming { get; init; } = true;

    /// <summary>The index is built once a tenant holds this many vectors; below it every search is an exact scan.</summary>
    public int ApproximateThreshold { get; init; } = 50_000;

    /// <summary>Number of inverted lists (k-means centroids).</summary>
    public int Lists { get; init; } = 256;

    /// <summary>Lists scanned per query (nearest centroids first).</summary>
    public int Probes { get; init; } = 24;

    /// <summary>The int8 scan keeps k × this candidates, re-scored with the exact float vectors.</summary>
    public int RerankFactor { get; init; } = 4;

    /// <summary>k-means iterations when the index is trained.</summary>
    public int TrainingIterations { get; init; } = 8;

    /// <summary>Vectors sampled per list to train k-means.</summary>
    public int TrainingSamplesPerList { get; init; } = 48;

    /// <summary>
    /// Recall@10 the index must reach on a held-out sample of its own vectors when it is trained;
    /// probes are doubled (up to every list) until it does.
    /// </summary>
    public double MinRecall { get; init; } = 0.9;

    /// <summary>
    /// Every this many searches, one is repeated in the background over every list and its top 10
    /// compared; when recall over the last few audits is below <see cref="MinRecall"/> the probes
    /// are raised. 0 turns auditing off.
    /// </summary>
    public int AuditEvery { get; init; } = 8;
}

/// <summary>State of a tenant's approximate vector index.</summary>
internal readonly record struct VectorIndexStatistics(int Vectors, int Lists, int Probes, double EstimatedRecall, bool Sparse, long Bytes);

/// <summary>A row of an <see cref="IvfVectorIndex{TRow}"/>: the index keeps its position in the row.</summary>
internal interface IIvfRow
{
    int IvfList { get; set; }

    int IvfSlot { get; set; }
}

/// <summary>
/// Inverted-file index: spherical k-means centroids trained once on a sample, each vector
/// assigned to its nearest centroid. Dense vectors are stored as int8 codes (symmetric, one
/// scale per vector) in a contiguous array per list (swap-remove); sparse vectors (the local
/// hashing embedder's: a few non-zero buckets out of hundreds) as (index, value) pairs in a CSR
/// layout per list (removal leaves a hole, compacted when a quarter is holes). A query scans the
/// lists of its nearest centroids and returns the best candidates by approximate score; the caller
/// re-scores them exactly. At training, the number of probed lists is raised until recall@10 on a
/// held-out sample reaches <see cref="InMemoryIndexOptions.MinRecall"/>: on data without cluster
/// structure that means every list, i.e. a compact exhaustive scan.
/// </summary>
internal sealed class IvfVectorIndex<TRow>
    where TRow : class, IIvfRow
{
    // Neighbours compared before a decision (4 searches of 10).
    private const int AuditWindow = 40;

    private readonly InMemoryIndexOptions _options;
    private readonly Lock _auditLock = new();
    private int _probes;
    private long _searches;
    private int _auditFound;
    private int _auditTotal;
    private float[] _centroids = [];
    private InvertedList[] _lists = [];

    public IvfVectorIndex(int dimensions, InMemoryIndexOptions options)
    {
        Dimensions = dimensions;
        _options = options;
    }

    public delegate ReadOnlySpan<float> VectorOf(TRow row);

    public int Dimensions { get; }

    public bool IsTrained => _lists.Length > 0;

    public int Count { get; private set; }

    public int ListCount => _lists.Length;

    /// <summary>Lists probed per query: chosen at training, raised by audits.</summary>
    public int Probes => Volatile.Read(ref _probes);

    /// <summary>Recall@10 estimated at training, then measured by the last completed audit window.</summary>
    public double EstimatedRecall { get; private set; }

    /// <summary>True when a search should be audited (sampled; only while not every list is probed).</summary>
    public bool ShouldAudit() =>
        _options.AuditEvery > 0 && Probes < _lists.Length && Interlocked.Increment(ref _searches) % _options.AuditEvery == 0;

    /// <summary>
    /// Repeats a search over every list and records how many of its top 10 the approximate
    /// search found (<paramref name="found"/>, ids); raises the probes when recall is short.
    /// </summary>
    public void Audit(float[] query, IReadOnlySet<TRow> found, Func<TRow, bool> accept, Func<TRow, float> exactScore)
    {
        var truth = Search(query, _lists.Length, 10 * Math.Max(1, _options.RerankFactor), accept)
            .Select(row => (Row: row, Score: exactScore(row))).OrderByDescending(x => x.Score).Take(10).ToList();
        if (truth.Count == 0)
        {
            return;
        }
        lock (_auditLock)
        {
            _auditFound += truth.Count(x => found.Contains(x.Row));
            _auditTotal += truth.Count;
            if (_auditTotal < AuditWindow)
            {
                return;
            }
            var recall = (double)_auditFound / _auditTotal;
            EstimatedRecall = recall;
            _auditFound = 0;
            _auditTotal = 0;
            if (recall < _options.MinRecall)
            {
                // Far short: jump; slightly short: double.
                var factor = recall < _options.MinRecall / 2 ? 4 : 2;
                Volatile.Write(ref _probes, Math.Min(_lists.Length, _probes * factor));
            }
        }
    }

    /// <summary>True when vectors are stored sparse.</summary>
    public bool Sparse { get; private set; }

    /// <summary>Bytes held by codes, scales and centroids.</summary>
    public long ApproximateBytes => ((long)_centroids.Length * sizeof(float)) + _lists.Sum(l => l.Bytes);

    /// <summary>Trains the centroids on a sample of <paramref name="rows"/> and indexes them all.</summary>
    public void Train(IReadOnlyList<TRow> rows, VectorOf vectorOf, int seed = 17)
    {
        var lists = Math.Max(1, Math.Min(_options.Lists, rows.Count / 4));
        var random = new Random(seed);
        var sampleSize = Math.Min(rows.Count, lists * Math.Max(4, _options.TrainingSamplesPerList));
        // Partial Fisher–Yates over indexes: a uniform sample without replacement.
        var order = Enumerable.Range(0, rows.Count).ToArray();
        for (var i = 0; i < sampleSize; i++)
        {
            var j = random.Next(i, order.Length);
            (order[i], order[j]) = (order[j], order[i]);
        }
        var dims = Dimensions;
        var sample = new float[sampleSize * dims];
        for (var i = 0; i < sampleSize; i++)
        {
            vectorOf(rows[order[i]]).CopyTo(sample.AsSpan(i * dims, dims));
        }
        var centroids = new float[lists * dims];
        sample.AsSpan(0, lists * dims).CopyTo(centroids);
        var assignment = new int[sampleSize];
        for (var iteration = 0; iteration < Math.Max(1, _options.TrainingIterations); iteration++)
        {
            var current = centroids;
            Parallel.For(0, sampleSize, i => assignment[i] = Nearest(current, lists, sample.AsSpan(i * dims, dims)));
            var sums = new float[lists * dims];
            var counts = new int[lists];
            for (var i = 0; i < sampleSize; i++)
            {
                var c = assignment[i];
                counts[c]++;
                TensorPrimitives.Add(sums.AsSpan(c * dims, dims), sample.AsSpan(i * dims, dims), sums.AsSpan(c * dims, dims));
            }
            for (var c = 0; c < lists; c++)
            {
                var centroid = sums.AsSpan(c * dims, dims);
                if (counts[c] == 0)
                {
                    // An empty cluster restarts at a random sample vector.
                    sample.AsSpan(random.Next(sampleSize) * dims, dims).CopyTo(centroid);
                    continue;
                }
                var norm = TensorPrimitives.Norm(centroid);
                if (norm > 0)
                {
                    TensorPrimitives.Divide(centroid, norm, centroid);
                }
            }
            centroids = sums;
        }
        _centroids = centroids;
        var nonZero = 0L;
        for (var i = 0; i < sampleSize; i++)
        {
            nonZero += CountNonZero(sample.AsSpan(i * dims, dims));
        }
        Sparse = dims <= ushort.MaxValue && nonZero < (long)sampleSize * dims / 8;
        Parallel.For(0, sampleSize, i => assignment[i] = Nearest(centroids, lists, sample.AsSpan(i * dims, dims)));
        (_probes, EstimatedRecall) = ChooseProbes(sample, sampleSize, assignment, lists);
        _lists = new InvertedList[lists];
        for (var c = 0; c < lists; c++)
        {
            _lists[c] = new InvertedList(dims, Sparse);
        }
        Count = 0;
        var nearest = new int[rows.Count];
        Parallel.For(0, rows.Count, i => nearest[i] = Nearest(_centroids, lists, vectorOf(rows[i])));
        for (var i = 0; i < rows.Count; i++)
        {
            Append(rows[i], nearest[i], vectorOf(rows[i]));
        }
    }

    /// <summary>Indexes one vector (the index must be trained).</summary>
    public void Add(TRow row, ReadOnlySpan<float> vector) => Append(row, Nearest(_centroids, _lists.Length, vector), vector);

    /// <summary>Removes <paramref name="row"/> when it is indexed.</summary>
    public void Remove(TRow row)
    {
        if (row.IvfList < 0 || row.IvfList >= _lists.Length)
        {
            return;
        }
        _lists[row.IvfList].Remove(row);
        row.IvfList = -1;
        row.IvfSlot = -1;
        Count--;
    }

    /// <summary>
    /// Up to <paramref name="candidates"/> accepted rows with the best approximate score among the
    /// <paramref name="probes"/> lists nearest to <paramref name="query"/>.
    /// </summary>
    public List<TRow> Search(float[] query, int probes, int candidates, Func<TRow, bool> accept)
    {
        var lists = _lists.Length;
        probes = Math.Clamp(probes, 1, lists);
        var centroidScores = new float[lists];
        for (var c = 0; c < lists; c++)
        {
            centroidScores[c] = TensorPrimitives.Dot(query, _centroids.AsSpan(c * Dimensions, Dimensions));
        }
        var order = Enumerable.Range(0, lists).ToArray();
        Array.Sort(centroidScores.Select(s => -s).ToArray(), order);
        var probed = order.AsSpan(0, probes).ToArray();

        var codes = new sbyte[Dimensions];
        var queryScale = Quantize(query, codes);
        var chunks = Math.Min(Environment.ProcessorCount, probes);
        var partial = new PriorityQueue<TRow, float>[chunks];
        Parallel.For(0, chunks, part =>
        {
            var heap = new PriorityQueue<TRow, float>(candidates + 1);
            for (var p = part; p < probed.Length; p += chunks)
            {
                _lists[probed[p]].Scan(query, codes, queryScale, heap, candidates, accept);
            }
            partial[part] = heap;
        });
        var merged = new PriorityQueue<TRow, float>(candidates + 1);
        foreach (var heap in partial)
        {
            foreach (var (row, score) in heap.UnorderedItems)
            {
                Offer(merged, candidates, row, score);
            }
        }
        return merged.UnorderedItems.Select(x => x.Element).ToList();
    }

    private static int CountNonZero(ReadOnlySpan<float> vector)
    {
        var count = 0;
        foreach (var x in vector)
        {
            count += x != 0 ? 1 : 0;
        }
        return count;
    }

    // Held-out check: up to 64 sample vectors as queries against the rest of the sample; the
    // smallest probe count (from the configured one, doubling) whose recall@10 reaches the target.
    private (int Probes, double Recall) ChooseProbes(float[] sample, int sampleSize, int[] assignment, int lists)
    {
        var dims = Dimensions;
        var queries = Math.Min(64, sampleSize / 10);
        var probes = Math.Clamp(_options.Probes, 1, lists);
        if (queries < 4)
        {
            return (probes, double.NaN);
        }
        var exact = new int[queries][];
        var rank = new int[queries][];
        Parallel.For(0, queries, q =>
        {
            var query = sample.AsSpan(q * dims, dims);
            var scores = new float[sampleSize];
            for (var i = 0; i < sampleSize; i++)
            {
                scores[i] = i == q ? float.NegativeInfinity : TensorPrimitives.Dot(query, sample.AsSpan(i * dims, dims));
            }
            exact[q] = Enumerable.Range(0, sampleSize).OrderByDescending(i => scores[i]).Take(10).ToArray();
            var centroidScores = new float[lists];
            for (var c = 0; c < lists; c++)
            {
                centroidScores[c] = TensorPrimitives.Dot(query, _centroids.AsSpan(c * dims, dims));
            }
            // rank[q][list] = position of the list in the query's probe order.
            var order = Enumerable.Range(0, lists).OrderByDescending(c => centroidScores[c]).ToArray();
            rank[q] = new int[lists];
            for (var r = 0; r < lists; r++)
            {
                rank[q][order[r]] = r;
            }
        });
        while (true)
        {
            // Exact scores are the same; a neighbour is found when its list is probed.
            var found = 0;
            for (var q = 0; q < queries; q++)
            {
                found += exact[q].Count(i => rank[q][assignment[i]] < probes);
            }
            var recall = found / (queries * 10.0);
            if (recall >= _options.MinRecall || probes >= lists)
            {
                return (probes, recall);
            }
            probes = Math.Min(lists, probes * 2);
        }
    }

    private void Append(TRow row, int list, ReadOnlySpan<float> vector)
    {
        _lists[list].Add(row, vector);
        row.IvfList = list;
        Count++;
    }

    private static int Nearest(float[] centroids, int lists, ReadOnlySpan<float> vector)
    {
        var dims = vector.Length;
        var best = 0;
        var bestScore = float.NegativeInfinity;
        for (var c = 0; c < lists; c++)
        {
            var score = TensorPrimitives.Dot(vector, centroids.AsSpan(c * dims, dims));
            if (score > bestScore)
            {
                bestScore = score;
                best = c;
            }
        }
        return best;
    }

    private static void Offer(PriorityQueue<TRow, float> heap, int k, TRow row, float score)
    {
        if (heap.Count < k)
        {
            heap.Enqueue(row, score);
        }
        else if (heap.TryPeek(out _, out var min) && score > min)
        {
            heap.DequeueEnqueue(row, score);
        }
    }

    // Symmetric int8: code = round(x · 127 / max|x|); x ≈ code · scale.
    internal static float Quantize(ReadOnlySpan<float> vector, Span<sbyte> codes)
    {
        var max = TensorPrimitives.MaxMagnitude(vector);
        if (max == 0 || float.IsNaN(max))
        {
            codes.Clear();
            return 0;
        }
        var inverse = 127f / Math.Abs(max);
        for (var i = 0; i < vector.Length; i++)
        {
            codes[i] = (sbyte)Math.Clamp(MathF.Round(vector[i] * inverse), -127, 127);
        }
        return Math.Abs(max) / 127f;
    }

    // Integer dot product of two int8 vectors: widened to 16 bits (127² · 2 fits), then to 32.
    internal static int DotInt8(ReadOnlySpan<sbyte> a, ReadOnlySpan<sbyte> b)
    {
        var i = 0;
        var sum = 0;
        if (Vector256.IsHardwareAccelerated && a.Length >= Vector256<sbyte>.Count)
        {
            var acc = Vector256<int>.Zero;
            ref var ra = ref MemoryMarshal.GetReference(a);
            ref var rb = ref MemoryMarshal.GetReference(b);
            for (; i <= a.Length - Vector256<sbyte>.Count; i += Vector256<sbyte>.Count)
            {
                var va = Vector256.LoadUnsafe(ref ra, (nuint)i);
                var vb = Vector256.LoadUnsafe(ref rb, (nuint)i);
                var (alo, ahi) = Vector256.Widen(va);
                var (blo, bhi) = Vector256.Widen(vb);
                var products = (alo * blo) + (ahi * bhi);
                var (plo, phi) = Vector256.Widen(products);
                acc += plo + phi;
            }
            sum = Vector256.Sum(acc);
        }
        for (; i < a.Length; i++)
        {
            sum += a[i] * b[i];
        }
        return sum;
    }

    private sealed class InvertedList(int dimensions, bool sparse)
    {
        // Dense: int8 codes, stride = dimensions, one scale per row.
        private sbyte[] _codes = [];
        private float[] _scales = [];

        // Sparse (CSR): row i holds entries _starts[i] .. _starts[i + 1] of _indexes / _values.
        private int[] _starts = [0];
        private ushort[] _indexes = [];
        private float[] _values = [];
        private int _entries;
        private int _holes;

        private TRow?[] _rows = [];

        // Rows including holes (sparse layout).
        private int _count;

        public long Bytes => _codes.Length + ((long)_scales.Length * sizeof(float)) + ((long)_starts.Length * sizeof(int))
            + ((long)_indexes.Length * sizeof(ushort)) + ((long)_values.Length * sizeof(float)) + ((long)_rows.Length * IntPtr.Size);

        public void Add(TRow row, ReadOnlySpan<float> vector)
        {
            if (_count == _rows.Length)
            {
                var capacity = Math.Max(16, _rows.Length * 2);
                Array.Resize(ref _rows, capacity);
                if (sparse)
                {
                    Array.Resize(ref _starts, capacity + 1);
                }
                else
                {
                    Array.Resize(ref _scales, capacity);
                    Array.Resize(ref _codes, capacity * dimensions);
                }
            }
            if (sparse)
            {
                var nonZero = CountNonZero(vector);
                if (_entries + nonZero > _values.Length)
                {
                    var capacity = Math.Max(Math.Max(64, _values.Length * 2), _entries + nonZero);
                    Array.Resize(ref _indexes, capacity);
                    Array.Resize(ref _values, capacity);
                }
                for (var d = 0; d < vector.Length; d++)
                {
                    if (vector[d] != 0)
                    {
                        _indexes[_entries] = (ushort)d;
                        _values[_entries] = vector[d];
                        _entries++;
                    }
                }
                _starts[_count + 1] = _entries;
            }
            else
            {
                _scales[_count] = Quantize(vector, _codes.AsSpan(_count * dimensions, dimensions));
            }
            _rows[_count] = row;
            row.IvfSlot = _count;
            _count++;
        }

        public void Remove(TRow row)
        {
            var slot = row.IvfSlot;
            if (sparse)
            {
                _rows[slot] = null;
                _holes++;
                if (_holes > 32 && _holes * 4 > _count)
                {
                    Compact();
                }
                return;
            }
            var last = _count - 1;
            if (slot != last)
            {
                _codes.AsSpan(last * dimensions, dimensions).CopyTo(_codes.AsSpan(slot * dimensions, dimensions));
                _scales[slot] = _scales[last];
                _rows[slot] = _rows[last];
                _rows[slot]!.IvfSlot = slot;
            }
            _rows[last] = null;
            _count--;
        }

        public void Scan(float[] query, sbyte[] codes, float queryScale, PriorityQueue<TRow, float> heap, int k, Func<TRow, bool> accept)
        {
            // The heap's minimum once full, kept in a local: most rows are rejected by one compare.
            var threshold = heap.Count >= k && heap.TryPeek(out _, out var least) ? least : float.NegativeInfinity;
            for (var i = 0; i < _count; i++)
            {
                var row = _rows[i];
                if (row is null)
                {
                    continue;
                }
                float score;
                if (sparse)
                {
                    score = 0;
                    for (var e = _starts[i]; e < _starts[i + 1]; e++)
                    {
                        score += query[_indexes[e]] * _values[e];
                    }
                }
                else
                {
                    score = DotInt8(codes, _codes.AsSpan(i * dimensions, dimensions)) * _scales[i] * queryScale;
                }
                if (score > threshold && accept(row))
                {
                    Offer(heap, k, row, score);
                    if (heap.Count >= k && heap.TryPeek(out _, out var min))
                    {
                        threshold = min;
                    }
                }
            }
        }

        private void Compact()
        {
            var write = 0;
            var entries = 0;
            for (var i = 0; i < _count; i++)
            {
                if (_rows[i] is not { } row)
                {
                    continue;
                }
                var from = _starts[i];
                var length = _starts[i + 1] - from;
                Array.Copy(_indexes, from, _indexes, entries, length);
                Array.Copy(_values, from, _values, entries, length);
                _rows[write] = row;
                row.IvfSlot = write;
                _starts[write] = entries;
                entries += length;
                write++;
                _starts[write] = entries;
            }
            Array.Clear(_rows, write, _count - write);
            _count = write;
            _entries = entries;
            _holes = 0;
        }
    }
}
