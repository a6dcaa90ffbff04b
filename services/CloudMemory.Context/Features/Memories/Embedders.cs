using System.Numerics.Tensors;

namespace CloudMemory.Context.Features.Memories;

/// <summary>Turns texts into embedding vectors, many at a time.</summary>
public interface IEmbedder
{
    /// <summary>Name shown in diagnostics (provider and model).</summary>
    string Name { get; }

    /// <summary>Vector length.</summary>
    int Dimensions { get; }

    /// <summary>Embeds <paramref name="texts"/>; the result has one L2-normalized vector per text, in order.</summary>
    Task<IReadOnlyList<float[]>> EmbedAsync(IReadOnlyList<string> texts, CancellationToken cancellationToken = default);

    /// <summary>
    /// Embeds texts that are not new documents (conversational neighbours folded into another
    /// entry's vector, re-embeddings): an embedder that keeps corpus statistics must not count them.
    /// By default the same as <see cref="EmbedAsync"/>.
    /// </summary>
    Task<IReadOnlyList<float[]>> EmbedContextAsync(IReadOnlyList<string> texts, CancellationToken cancellationToken = default) =>
        EmbedAsync(texts, cancellationToken);

    /// <summary>Embeds a search query; by default the same as a document.</summary>
    async Task<float[]> EmbedQueryAsync(string query, CancellationToken cancellationToken = default) =>
        (await EmbedAsync([query], cancellationToken))[0];

    /// <summary>
    /// Embeds a retrieved memory's content for pseudo-relevance feedback (the query moves towards
    /// it); by default the same as a query. A model with separate query and document encodings
    /// returns the document vector here (usually cached since the memory was written).
    /// </summary>
    Task<float[]> EmbedFeedbackAsync(string content, CancellationToken cancellationToken = default) =>
        EmbedQueryAsync(content, cancellationToken);
}

/// <summary>Feature weights of <see cref="LocalHashingEmbedder"/>.</summary>
public sealed record LocalEmbedderWeights(double Unigram = 1.0, double Bigram = 0.0, double CharTrigram = 0.0, double QueryIdfExponent = 2.0)
{
    /// <summary>The defaults (tuned on the LoCoMo development split, see docs/benchmarks-locomo.md).</summary>
    public static LocalEmbedderWeights Default { get; } = new();
}

/// <summary>
/// The built-in embedder: no network, no model files. Signed feature hashing of stemmed word
/// unigrams, word bigrams (content words in order) and character trigrams of each word, with
/// sublinear term frequency, L2-normalized. Cosine of two vectors approximates a soft lexical
/// overlap that tolerates inflection and spelling variants, which complements exact BM25.
/// </summary>
public sealed class LocalHashingEmbedder(int dimensions = LocalHashingEmbedder.DefaultDimensions, LocalEmbedderWeights? weights = null) : IEmbedder
{
    /// <summary>Default vector length.</summary>
    public const int DefaultDimensions = 768;

    private readonly LocalEmbedderWeights _weights = weights ?? LocalEmbedderWeights.Default;

    // Document frequency per hash bucket over every document of the tenant embedded so far:
    // queries are weighted by inverse document frequency, so a word that is in half of the
    // memories (a speaker's name, "today") counts little. Documents stay stateless (no
    // re-embedding needed). Per tenant (EmbeddingTenant), so no tenant's writes move another's scores.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, CorpusStatistics> _corpora = new(StringComparer.Ordinal);

    private sealed class CorpusStatistics(int dimensions)
    {
        public readonly long[] DocumentFrequency = new long[dimensions];
        public long Documents;
    }

    private CorpusStatistics Corpus => _corpora.GetOrAdd(EmbeddingTenant.Current ?? "", _ => new CorpusStatistics(Dimensions));

    /// <inheritdoc />
    public string Name => $"local-hashing-{Dimensions}";

    /// <inheritdoc />
    public int Dimensions { get; } = dimensions is >= 16 and <= 8192 ? dimensions : throw new ArgumentOutOfRangeException(nameof(dimensions));

    /// <inheritdoc />
    public Task<IReadOnlyList<float[]>> EmbedAsync(IReadOnlyList<string> texts, CancellationToken cancellationToken = default)
    {
        var result = new float[texts.Count][];
        var corpus = Corpus;
        for (var i = 0; i < texts.Count; i++)
        {
            result[i] = Embed(texts[i]);
            for (var d = 0; d < result[i].Length; d++)
            {
                if (result[i][d] != 0)
                {
                    Interlocked.Increment(ref corpus.DocumentFrequency[d]);
                }
            }
            Interlocked.Increment(ref corpus.Documents);
        }
        return Task.FromResult<IReadOnlyList<float[]>>(result);
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<float[]>> EmbedContextAsync(IReadOnlyList<string> texts, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<float[]>>(texts.Select(Embed).ToArray());

    /// <inheritdoc />
    public Task<float[]> EmbedQueryAsync(string query, CancellationToken cancellationToken = default)
    {
        var vector = Embed(query);
        var corpus = Corpus;
        var n = Interlocked.Read(ref corpus.Documents);
        if (n > 0)
        {
            for (var d = 0; d < vector.Length; d++)
            {
                if (vector[d] != 0)
                {
                    var df = Interlocked.Read(ref corpus.DocumentFrequency[d]);
                    vector[d] *= (float)Math.Pow(Math.Log(1 + ((n - df + 0.5) / (df + 0.5))), _weights.QueryIdfExponent);
                }
            }
            var norm = TensorPrimitives.Norm(vector);
            if (norm > 0)
            {
                TensorPrimitives.Divide(vector, norm, vector);
            }
        }
        return Task.FromResult(vector);
    }

    /// <summary>Embeds one text.</summary>
    public float[] Embed(string text)
    {
        var counts = new Dictionary<(ulong Hash, byte Kind), int>();
        var words = TextAnalysis.Terms(text);
        string? previous = null;
        foreach (var word in words)
        {
            var stem = TextAnalysis.Stem(word);
            Count(counts, Hash(stem, 'u'), 0);
            if (previous is not null)
            {
                Count(counts, Hash(previous + " " + stem, 'b'), 1);
            }
            previous = stem;
            // Boundary-marked trigrams of the word give partial credit to morphological variants.
            var padded = "<" + word + ">";
            for (var i = 0; i + 3 <= padded.Length; i++)
            {
                Count(counts, Hash(padded.Substring(i, 3), 'c'), 2);
            }
        }

        var vector = new float[Dimensions];
        foreach (var ((hash, kind), tf) in counts)
        {
            var weight = kind switch { 0 => _weights.Unigram, 1 => _weights.Bigram, _ => _weights.CharTrigram };
            var value = (float)(weight * (1 + Math.Log(tf)));
            var index = (int)(hash % (ulong)Dimensions);
            vector[index] += (hash >> 63) == 0 ? value : -value;
        }
        var norm = TensorPrimitives.Norm(vector);
        if (norm > 0)
        {
            TensorPrimitives.Divide(vector, norm, vector);
        }
        return vector;
    }

    /// <summary>The bucket and sign a stemmed word's unigram feature takes in a vector of <paramref name="dimensions"/>.</summary>
    public static (int Bucket, bool Negative) UnigramBucket(string stem, int dimensions)
    {
        var hash = Hash(stem, 'u');
        return ((int)(hash % (ulong)dimensions), (hash >> 63) != 0);
    }

    private static void Count(Dictionary<(ulong, byte), int> counts, ulong hash, byte kind)
    {
        var key = (hash, kind);
        counts[key] = counts.TryGetValue(key, out var n) ? n + 1 : 1;
    }

    // FNV-1a over the characters with a class prefix, then murmur3's finalizer for well-mixed bits.
    private static ulong Hash(string feature, char kind)
    {
        var h = 14695981039346656037UL;
        h = (h ^ kind) * 1099511628211UL;
        foreach (var c in feature)
        {
            h = (h ^ c) * 1099511628211UL;
        }
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdUL;
        h ^= h >> 33;
        h *= 0xc4ceb9fe1a85ec53UL;
        h ^= h >> 33;
        return h;
    }
}
