using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace CloudMemory.Context.Features.Memories;

/// <summary>Settings of the in-memory store's approximate vector index (IVF-flat over int8 codes).</summary>
public sealed record InMemoryIndexOptions
{
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
}

/// <summary>A row of an <see cref="IvfVectorIndex{TRow}"/>: the index keeps its position in the row.</summary>
internal interface IIvfRow
{
    int IvfList { get; set; }

    int IvfSlot { get; set; }
}

/// <summary>
/// Inverted-file index: spherical k-means centroids trained once on a sample, each vector
/// assigned to its nearest centroid and stored there as int8 codes (symmetric, one scale per
/// vector) in a contiguous array. A query scans the lists of its <c>probes</c> nearest centroids
/// and returns the best candidates by approximate score; the caller re-scores them exactly.
/// Add and remove are O(lists · dims) and O(dims) (swap-remove).
/// </summary>
internal sealed class IvfVectorIndex<TRow>
    where TRow : class, IIvfRow
{
    private readonly InMemoryIndexOptions _options;
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

    /// <summary>Bytes held by codes, scales and centroids.</summary>
    public long ApproximateBytes => (long)_centroids.Length * sizeof(float)
        + _lists.Sum(l => ((long)l.Codes.Length * sizeof(sbyte)) + ((long)l.Scales.Length * sizeof(float)) + ((long)l.Rows.Length * IntPtr.Size));

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
        _lists = new InvertedList[lists];
        for (var c = 0; c < lists; c++)
        {
            _lists[c] = new InvertedList(dims);
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
    public List<TRow> Search(ReadOnlySpan<float> query, int probes, int candidates, Func<TRow, bool> accept)
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
                _lists[probed[p]].Scan(codes, queryScale, heap, candidates, accept);
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

    private sealed class InvertedList(int dimensions)
    {
        public sbyte[] Codes { get; private set; } = [];

        public float[] Scales { get; private set; } = [];

        public TRow[] Rows { get; private set; } = [];

        public int Count { get; private set; }

        public void Add(TRow row, ReadOnlySpan<float> vector)
        {
            if (Count == Rows.Length)
            {
                var capacity = Math.Max(16, Rows.Length * 2);
                var rows = Rows;
                var scales = Scales;
                var codes = Codes;
                Array.Resize(ref rows, capacity);
                Array.Resize(ref scales, capacity);
                Array.Resize(ref codes, capacity * dimensions);
                Rows = rows;
                Scales = scales;
                Codes = codes;
            }
            Scales[Count] = Quantize(vector, Codes.AsSpan(Count * dimensions, dimensions));
            Rows[Count] = row;
            row.IvfSlot = Count;
            Count++;
        }

        public void Remove(TRow row)
        {
            var slot = row.IvfSlot;
            var last = Count - 1;
            if (slot != last)
            {
                Codes.AsSpan(last * dimensions, dimensions).CopyTo(Codes.AsSpan(slot * dimensions, dimensions));
                Scales[slot] = Scales[last];
                Rows[slot] = Rows[last];
                Rows[slot].IvfSlot = slot;
            }
            Rows[last] = null!;
            Count--;
        }

        public void Scan(sbyte[] query, float queryScale, PriorityQueue<TRow, float> heap, int k, Func<TRow, bool> accept)
        {
            for (var i = 0; i < Count; i++)
            {
                var score = DotInt8(query, Codes.AsSpan(i * dimensions, dimensions)) * Scales[i] * queryScale;
                if ((heap.Count < k || (heap.TryPeek(out _, out var min) && score > min)) && accept(Rows[i]))
                {
                    Offer(heap, k, Rows[i], score);
                }
            }
        }
    }
}
