using System.Numerics.Tensors;

namespace CloudMemory.Context.Features.Memories;

/// <summary>
/// A corpus-adaptive semantic space learned from a tenant's own texts, with no model files and no
/// network: word vectors from a PPMI word–word co-occurrence matrix (co-occurrence within one
/// text, context-distribution smoothing 0.75) reduced by a seeded randomized truncated SVD (LSA,
/// eigenvalue weighting √σ, rows L2-normalized), SIF-weighted (<c>a / (a + p(w))</c>) with the
/// corpus's common component removed, and folded onto the hashing embedder's buckets:
/// <c>M[bucket(w)] += sign(w) · sif(w) · e_w</c>.
/// Because a stored hashing vector <c>d</c> is a (signed, sublinear-tf) sum of its words' buckets,
/// <c>Mᵀd</c> is the text's SIF-weighted latent vector (up to hash collisions), so
/// <see cref="Expand"/> can add latent similarity to a query vector alone:
/// <c>q' = normalize(q + w · x)</c>, <c>x = normalize(M · normalize(Mᵀq))</c>, and
/// <c>q'·d ∝ q·d + w · (latent similarity)</c>. Stored vectors never change, so neither store
/// re-embeds when the space is retrained. Deterministic for the same texts in the same order.
/// </summary>
public sealed class LatentSemanticSpace
{
    private const double SifA = 1e-3;
    private const double ContextSmoothing = 0.75;
    private const int MaxTermsPerText = 256;

    private readonly float[] _matrix; // bucket-major: [bucket * Rank + j]

    private LatentSemanticSpace(float[] matrix, int buckets, int rank, int vocabulary, int texts)
    {
        _matrix = matrix;
        Buckets = buckets;
        Rank = rank;
        Vocabulary = vocabulary;
        Texts = texts;
    }

    /// <summary>Length of the hashing vectors it applies to.</summary>
    public int Buckets { get; }

    /// <summary>Latent dimensions actually learned (≤ the requested rank, ≤ vocabulary).</summary>
    public int Rank { get; }

    /// <summary>Words with a vector (stems in at least two texts).</summary>
    public int Vocabulary { get; }

    /// <summary>Texts it was trained on.</summary>
    public int Texts { get; }

    /// <summary>
    /// Learns a space from <paramref name="texts"/>; null when there is too little text (fewer than
    /// 2 × rank + 2 words occurring in at least two texts, rank at least 2).
    /// </summary>
    /// <param name="texts">The corpus, in a fixed order.</param>
    /// <param name="buckets">Hashing-vector length (<see cref="LocalHashingEmbedder.Dimensions"/>).</param>
    /// <param name="rank">Latent dimensions (e.g. 128).</param>
    /// <param name="seed">Seed of the randomized SVD.</param>
    /// <param name="maxVocabulary">Most frequent words kept.</param>
    public static LatentSemanticSpace? Train(IReadOnlyList<string> texts, int buckets, int rank = 128, int seed = 17, int maxVocabulary = 20_000) =>
        Train([texts], buckets, rank, seed, maxVocabulary, 0);

    /// <summary>
    /// Learns a space from sequences of texts (e.g. the messages of each conversation in order): a
    /// word's contexts are the words of its own text and of the <paramref name="textWindow"/> texts on
    /// each side within the same sequence.
    /// </summary>
    public static LatentSemanticSpace? Train(IReadOnlyList<IReadOnlyList<string>> sequences, int buckets, int rank, int seed, int maxVocabulary, int textWindow)
    {
        var texts = sequences.SelectMany(t => t).ToList();
        // Tokens exactly as the hashing embedder's unigrams: stop words dropped, stemmed.
        var docs = new List<string[]>(texts.Count);
        var df = new Dictionary<string, int>(StringComparer.Ordinal);
        var tf = new Dictionary<string, long>(StringComparer.Ordinal);
        long tokens = 0;
        foreach (var text in texts)
        {
            var terms = TextAnalysis.Terms(text);
            var stems = new string[Math.Min(terms.Count, MaxTermsPerText)];
            for (var i = 0; i < stems.Length; i++)
            {
                stems[i] = TextAnalysis.Stem(terms[i]);
                tf[stems[i]] = tf.GetValueOrDefault(stems[i]) + 1;
                tokens++;
            }
            docs.Add(stems);
            foreach (var s in stems.Distinct(StringComparer.Ordinal))
            {
                df[s] = df.GetValueOrDefault(s) + 1;
            }
        }
        var vocab = df.Where(kv => kv.Value >= 2)
            .OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal)
            .Take(maxVocabulary).Select(kv => kv.Key).ToArray();
        var v = vocab.Length;
        if (rank < 2 || v < (2 * rank) + 2)
        {
            return null;
        }
        var index = new Dictionary<string, int>(v, StringComparer.Ordinal);
        for (var i = 0; i < v; i++)
        {
            index[vocab[i]] = i;
        }

        // Co-occurrence of distinct vocabulary words within a text.
        var pairs = new Dictionary<long, float>();
        var wordTotals = new double[v];
        double total = 0;
        var docIds = docs.Select(doc => doc.Where(index.ContainsKey).Select(s => index[s]).Distinct().ToArray()).ToArray();
        var offset = 0;
        foreach (var sequence in sequences)
        {
            for (var d = offset; d < offset + sequence.Count; d++)
            {
                var ids = docIds[d];
                var contexts = new HashSet<int>(ids);
                for (var n = Math.Max(offset, d - textWindow); n <= Math.Min(offset + sequence.Count - 1, d + textWindow); n++)
                {
                    contexts.UnionWith(docIds[n]);
                }
                var ordered = contexts.Order().ToArray();
                foreach (var w in ids)
                {
                    foreach (var c in ordered)
                    {
                        if (c != w)
                        {
                            var key = ((long)w * v) + c;
                            pairs[key] = pairs.GetValueOrDefault(key) + 1;
                            wordTotals[w]++;
                            total++;
                        }
                    }
                }
            }
            offset += sequence.Count;
        }
        if (total == 0)
        {
            return null;
        }
        var contextTotals = wordTotals.Select(c => Math.Pow(c, ContextSmoothing)).ToArray();
        var contextSum = contextTotals.Sum();

        // PPMI rows (sparse, sorted by column for determinism).
        var rows = new List<(int Col, float Val)>[v];
        for (var i = 0; i < v; i++)
        {
            rows[i] = [];
        }
        foreach (var (key, count) in pairs.OrderBy(p => p.Key))
        {
            var w = (int)(key / v);
            var c = (int)(key % v);
            var pmi = Math.Log(count * contextSum / (wordTotals[w] * contextTotals[c]));
            if (pmi > 0)
            {
                rows[w].Add((c, (float)pmi));
            }
        }

        var (u, sigma) = RandomizedSvd(rows, v, Math.Min(rank, v / 2), seed);
        var k = sigma.Length;

        // Word vectors: U √Σ, unit rows.
        var words = new float[v][];
        for (var i = 0; i < v; i++)
        {
            var e = new float[k];
            for (var j = 0; j < k; j++)
            {
                e[j] = (float)(u[i][j] * Math.Sqrt(sigma[j]));
            }
            var norm = TensorPrimitives.Norm(e);
            if (norm > 0)
            {
                TensorPrimitives.Divide(e, norm, e);
            }
            words[i] = e;
        }

        // SIF weights and the common component (first principal direction of the SIF-weighted
        // text vectors), which mostly encodes "frequent in this corpus" rather than meaning.
        var sif = new double[v];
        for (var i = 0; i < v; i++)
        {
            sif[i] = SifA / (SifA + ((double)tf[vocab[i]] / tokens));
        }
        var common = CommonComponent(docs, index, words, sif, k, seed);
        foreach (var e in words)
        {
            TensorPrimitives.MultiplyAdd(common, -TensorPrimitives.Dot(e, common), e, e);
        }

        var matrix = new float[buckets * k];
        for (var i = 0; i < v; i++)
        {
            var (bucket, negative) = LocalHashingEmbedder.UnigramBucket(vocab[i], buckets);
            var row = matrix.AsSpan(bucket * k, k);
            TensorPrimitives.MultiplyAdd(words[i], (float)(negative ? -sif[i] : sif[i]), row, row);
        }
        return new LatentSemanticSpace(matrix, buckets, k, v, texts.Count);
    }

    /// <summary>The latent vector <c>Mᵀh</c> of a hashing vector (not normalized).</summary>
    public float[] Project(ReadOnlySpan<float> hashing)
    {
        var z = new float[Rank];
        for (var b = 0; b < Buckets && b < hashing.Length; b++)
        {
            if (hashing[b] != 0)
            {
                TensorPrimitives.MultiplyAdd(_matrix.AsSpan(b * Rank, Rank), hashing[b], z, z);
            }
        }
        return z;
    }

    /// <summary>
    /// <c>normalize(q + weight · normalize(M · normalize(Mᵀq)))</c>; <paramref name="query"/> unchanged
    /// when its words are unknown to the space or the lengths differ.
    /// </summary>
    public float[] Expand(float[] query, double weight)
    {
        if (weight <= 0 || query.Length != Buckets)
        {
            return query;
        }
        var z = Project(query);
        var zn = TensorPrimitives.Norm(z);
        if (zn <= 0)
        {
            return query;
        }
        var x = new float[Buckets];
        for (var b = 0; b < Buckets; b++)
        {
            x[b] = TensorPrimitives.Dot(_matrix.AsSpan(b * Rank, Rank), z) / zn;
        }
        var xn = TensorPrimitives.Norm(x);
        if (xn <= 0)
        {
            return query;
        }
        var result = (float[])query.Clone();
        TensorPrimitives.MultiplyAdd(x, (float)(weight / xn), result, result);
        var norm = TensorPrimitives.Norm(result);
        if (norm > 0)
        {
            TensorPrimitives.Divide(result, norm, result);
        }
        return result;
    }

    private static float[] CommonComponent(List<string[]> docs, Dictionary<string, int> index, float[][] words, double[] sif, int k, int seed)
    {
        var cov = new double[k, k];
        var t = new float[k];
        foreach (var doc in docs)
        {
            Array.Clear(t);
            foreach (var s in doc)
            {
                if (index.TryGetValue(s, out var i))
                {
                    TensorPrimitives.MultiplyAdd(words[i], (float)sif[i], t, t);
                }
            }
            for (var a = 0; a < k; a++)
            {
                if (t[a] == 0)
                {
                    continue;
                }
                for (var b = 0; b < k; b++)
                {
                    cov[a, b] += t[a] * t[b];
                }
            }
        }
        var random = new Random(seed + 1);
        var vec = new double[k];
        for (var a = 0; a < k; a++)
        {
            vec[a] = random.NextDouble() - 0.5;
        }
        for (var iteration = 0; iteration < 50; iteration++)
        {
            var next = new double[k];
            for (var a = 0; a < k; a++)
            {
                for (var b = 0; b < k; b++)
                {
                    next[a] += cov[a, b] * vec[b];
                }
            }
            var norm = Math.Sqrt(next.Sum(x => x * x));
            if (norm <= 0)
            {
                return new float[k];
            }
            vec = next.Select(x => x / norm).ToArray();
        }
        return vec.Select(x => (float)x).ToArray();
    }

    // Halko–Martinsson–Tropp: range finder with 2 power iterations, then the SVD of the small
    // projected matrix through the eigen-decomposition (Jacobi) of B·Bᵀ.
    private static (double[][] U, double[] Sigma) RandomizedSvd(List<(int Col, float Val)>[] rows, int n, int rank, int seed)
    {
        var l = Math.Min(n, rank + 10);
        var random = new Random(seed);
        var omega = new double[n][];
        for (var i = 0; i < n; i++)
        {
            omega[i] = new double[l];
            for (var j = 0; j < l; j++)
            {
                // Box–Muller Gaussian.
                omega[i][j] = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
            }
        }
        var y = Multiply(rows, omega, l);
        Orthonormalize(y, l);
        for (var p = 0; p < 2; p++)
        {
            var z = MultiplyTransposed(rows, y, n, l);
            Orthonormalize(z, l);
            y = Multiply(rows, z, l);
            Orthonormalize(y, l);
        }
        // B = Qᵀ A (l × n) as its transpose Bt = Aᵀ Q (n × l); then B Bᵀ = Btᵀ Bt (l × l).
        var bt = MultiplyTransposed(rows, y, n, l);
        var gram = new double[l, l];
        foreach (var row in bt)
        {
            for (var a = 0; a < l; a++)
            {
                if (row[a] == 0)
                {
                    continue;
                }
                for (var b = 0; b < l; b++)
                {
                    gram[a, b] += row[a] * row[b];
                }
            }
        }
        var (values, vectors) = Jacobi(gram, l);
        var order = Enumerable.Range(0, l).OrderByDescending(i => values[i]).ThenBy(i => i).Take(rank).Where(i => values[i] > 1e-9).ToArray();
        var sigma = order.Select(i => Math.Sqrt(values[i])).ToArray();
        var u = new double[n][];
        for (var i = 0; i < n; i++)
        {
            u[i] = new double[order.Length];
            for (var j = 0; j < order.Length; j++)
            {
                double sum = 0;
                for (var a = 0; a < l; a++)
                {
                    sum += y[i][a] * vectors[a, order[j]];
                }
                u[i][j] = sum;
            }
        }
        return (u, sigma);
    }

    private static double[][] Multiply(List<(int Col, float Val)>[] rows, double[][] x, int l)
    {
        var result = new double[rows.Length][];
        for (var i = 0; i < rows.Length; i++)
        {
            var r = new double[l];
            foreach (var (c, val) in rows[i])
            {
                var xc = x[c];
                for (var j = 0; j < l; j++)
                {
                    r[j] += val * xc[j];
                }
            }
            result[i] = r;
        }
        return result;
    }

    private static double[][] MultiplyTransposed(List<(int Col, float Val)>[] rows, double[][] x, int n, int l)
    {
        var result = new double[n][];
        for (var i = 0; i < n; i++)
        {
            result[i] = new double[l];
        }
        for (var i = 0; i < rows.Length; i++)
        {
            var xi = x[i];
            foreach (var (c, val) in rows[i])
            {
                var r = result[c];
                for (var j = 0; j < l; j++)
                {
                    r[j] += val * xi[j];
                }
            }
        }
        return result;
    }

    // Modified Gram–Schmidt over the columns of an n × l matrix stored as rows.
    private static void Orthonormalize(double[][] m, int l)
    {
        var n = m.Length;
        for (var j = 0; j < l; j++)
        {
            for (var p = 0; p < j; p++)
            {
                double dot = 0;
                for (var i = 0; i < n; i++)
                {
                    dot += m[i][j] * m[i][p];
                }
                for (var i = 0; i < n; i++)
                {
                    m[i][j] -= dot * m[i][p];
                }
            }
            double norm = 0;
            for (var i = 0; i < n; i++)
            {
                norm += m[i][j] * m[i][j];
            }
            norm = Math.Sqrt(norm);
            for (var i = 0; i < n; i++)
            {
                m[i][j] = norm > 1e-12 ? m[i][j] / norm : 0;
            }
        }
    }

    // Cyclic Jacobi eigen-decomposition of a small symmetric matrix.
    private static (double[] Values, double[,] Vectors) Jacobi(double[,] a, int n)
    {
        var v = new double[n, n];
        for (var i = 0; i < n; i++)
        {
            v[i, i] = 1;
        }
        for (var sweep = 0; sweep < 60; sweep++)
        {
            double off = 0;
            for (var p = 0; p < n; p++)
            {
                for (var q = p + 1; q < n; q++)
                {
                    off += a[p, q] * a[p, q];
                }
            }
            if (off < 1e-18)
            {
                break;
            }
            for (var p = 0; p < n; p++)
            {
                for (var q = p + 1; q < n; q++)
                {
                    if (Math.Abs(a[p, q]) < 1e-300)
                    {
                        continue;
                    }
                    var theta = (a[q, q] - a[p, p]) / (2 * a[p, q]);
                    var t = Math.Sign(theta == 0 ? 1 : theta) / (Math.Abs(theta) + Math.Sqrt((theta * theta) + 1));
                    var c = 1 / Math.Sqrt((t * t) + 1);
                    var s = t * c;
                    for (var k = 0; k < n; k++)
                    {
                        var akp = a[k, p];
                        var akq = a[k, q];
                        a[k, p] = (c * akp) - (s * akq);
                        a[k, q] = (s * akp) + (c * akq);
                    }
                    for (var k = 0; k < n; k++)
                    {
                        var apk = a[p, k];
                        var aqk = a[q, k];
                        a[p, k] = (c * apk) - (s * aqk);
                        a[q, k] = (s * apk) + (c * aqk);
                    }
                    for (var k = 0; k < n; k++)
                    {
                        var vkp = v[k, p];
                        var vkq = v[k, q];
                        v[k, p] = (c * vkp) - (s * vkq);
                        v[k, q] = (s * vkp) + (c * vkq);
                    }
                }
            }
        }
        var values = new double[n];
        for (var i = 0; i < n; i++)
        {
            values[i] = a[i, i];
        }
        return (values, v);
    }
}
