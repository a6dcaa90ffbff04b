using System.Numerics.Tensors;

namespace CloudMemory.Context.Features.Memories;

/// <summary>
/// Combines a dense model that only knows Latin-script text (its vocabulary has a few hundred CJK
/// characters; "我今天很累" tokenises to <c>我 [UNK]</c>) with the local hashing embedder run over
/// CJK character unigrams and bigrams, in one vector space of two blocks:
/// <c>[ a · dense(text) | b · cjk(text) ]</c>. The weights come from the text's script: no CJK
/// letters → (1, 0); CJK-heavy (at least <see cref="CjkHeavyShare"/> of its letters) → (0, 1);
/// anything between → (1/√2, 1/√2). Queries are routed the same way, so a dot product is
/// <c>a_q·a_d·cos_dense + b_q·b_d·cos_cjk</c>: an English query is compared with the dense part of
/// every stored vector only, a Chinese query with the CJK part only, and the two spaces are never
/// mixed within one term. One vector per entry keeps both stores, the IVF index and pgvector
/// unchanged.
/// </summary>
public sealed class ScriptRoutedEmbedder : IEmbedder
{
    /// <summary>Share of CJK letters among all letters from which a text is embedded by the CJK block alone.</summary>
    public const double CjkHeavyShare = 0.3;

    /// <summary>Default length of the CJK block.</summary>
    public const int DefaultCjkDimensions = 512;

    private static readonly float Half = (float)Math.Sqrt(0.5);
    private readonly IEmbedder _dense;
    private readonly LocalHashingEmbedder _cjk;

    /// <summary>Routes Latin-script text to <paramref name="dense"/> and CJK text to a hashing block of <paramref name="cjkDimensions"/>.</summary>
    public ScriptRoutedEmbedder(IEmbedder dense, int cjkDimensions = DefaultCjkDimensions)
    {
        if (dense.Dimensions <= 0)
        {
            throw new ArgumentException("The dense embedder must know its dimension.", nameof(dense));
        }
        _dense = dense;
        _cjk = new LocalHashingEmbedder(cjkDimensions);
    }

    /// <summary>The dense (Latin-script) embedder.</summary>
    public IEmbedder Dense => _dense;

    /// <summary>Length of the dense block (the first <see cref="DenseDimensions"/> components).</summary>
    public int DenseDimensions => _dense.Dimensions;

    /// <summary>Length of the CJK block (the last components).</summary>
    public int CjkDimensions => _cjk.Dimensions;

    /// <inheritdoc />
    public string Name => $"{_dense.Name}+cjk-hashing-{_cjk.Dimensions}";

    /// <inheritdoc />
    public int Dimensions => _dense.Dimensions + _cjk.Dimensions;

    /// <inheritdoc />
    public Task<IReadOnlyList<float[]>> EmbedAsync(IReadOnlyList<string> texts, CancellationToken cancellationToken = default) =>
        EmbedAsync(texts, document: true, cancellationToken);

    /// <inheritdoc />
    public Task<IReadOnlyList<float[]>> EmbedContextAsync(IReadOnlyList<string> texts, CancellationToken cancellationToken = default) =>
        EmbedAsync(texts, document: false, cancellationToken);

    /// <inheritdoc />
    public async Task<float[]> EmbedQueryAsync(string query, CancellationToken cancellationToken = default)
    {
        var (dense, cjk) = Weights(query);
        var denseVector = dense > 0 ? await _dense.EmbedQueryAsync(query, cancellationToken) : null;
        var cjkVector = cjk > 0 ? await _cjk.EmbedQueryAsync(CjkTerms(query), cancellationToken) : null;
        return Compose(denseVector, dense, cjkVector, cjk);
    }

    /// <inheritdoc />
    /// <remarks>The memory's document vector (the model caches what it embedded at write time), not a query embedding of it.</remarks>
    public async Task<float[]> EmbedFeedbackAsync(string content, CancellationToken cancellationToken = default) =>
        (await EmbedAsync([content], document: false, cancellationToken))[0];

    /// <summary>
    /// The block weights of a text: (dense, CJK). Only letters count (digits, punctuation and spaces
    /// are neutral); a text without letters goes to the dense block.
    /// </summary>
    public static (float Dense, float Cjk) Weights(string text)
    {
        var share = CjkShare(text);
        return share switch
        {
            0 => (1f, 0f),
            >= CjkHeavyShare => (0f, 1f),
            _ => (Half, Half),
        };
    }

    /// <summary>Share of CJK letters (Han, kana, Hangul) among the letters of <paramref name="text"/>.</summary>
    public static double CjkShare(string text)
    {
        int letters = 0, cjk = 0;
        foreach (var c in text)
        {
            if (char.IsLetter(c))
            {
                letters++;
                if (IsCjk(c))
                {
                    cjk++;
                }
            }
        }
        return letters == 0 ? 0 : (double)cjk / letters;
    }

    /// <summary>
    /// The text the CJK block hashes: every CJK character and every pair of adjacent CJK characters
    /// as separate words (Chinese has no spaces, and a two-character word is the common case), the
    /// rest of the text as it is.
    /// </summary>
    public static string CjkTerms(string text)
    {
        var builder = new System.Text.StringBuilder(text.Length * 4);
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (!IsCjk(c))
            {
                builder.Append(c);
                continue;
            }
            builder.Append(' ').Append(c);
            if (i + 1 < text.Length && IsCjk(text[i + 1]))
            {
                builder.Append(' ').Append(c).Append(text[i + 1]);
            }
            builder.Append(' ');
        }
        return builder.ToString();
    }

    private static bool IsCjk(char c) =>
        c is (>= '\u4E00' and <= '\u9FFF') or (>= '\u3400' and <= '\u4DBF') or (>= '\uF900' and <= '\uFAFF')
            or (>= '\u3040' and <= '\u30FF') or (>= '\uAC00' and <= '\uD7AF');

    private async Task<IReadOnlyList<float[]>> EmbedAsync(IReadOnlyList<string> texts, bool document, CancellationToken cancellationToken)
    {
        var weights = texts.Select(Weights).ToList();
        var denseIndex = Enumerable.Range(0, texts.Count).Where(i => weights[i].Dense > 0).ToList();
        var cjkIndex = Enumerable.Range(0, texts.Count).Where(i => weights[i].Cjk > 0).ToList();
        var denseTexts = denseIndex.Select(i => texts[i]).ToList();
        var cjkTexts = cjkIndex.Select(i => CjkTerms(texts[i])).ToList();
        var denseVectors = denseTexts.Count == 0 ? [] : document
            ? await _dense.EmbedAsync(denseTexts, cancellationToken)
            : await _dense.EmbedContextAsync(denseTexts, cancellationToken);
        var cjkVectors = cjkTexts.Count == 0 ? [] : document
            ? await _cjk.EmbedAsync(cjkTexts, cancellationToken)
            : await _cjk.EmbedContextAsync(cjkTexts, cancellationToken);
        var dense = new float[texts.Count][];
        var cjk = new float[texts.Count][];
        for (var i = 0; i < denseIndex.Count; i++)
        {
            dense[denseIndex[i]] = denseVectors[i];
        }
        for (var i = 0; i < cjkIndex.Count; i++)
        {
            cjk[cjkIndex[i]] = cjkVectors[i];
        }
        var result = new float[texts.Count][];
        for (var i = 0; i < texts.Count; i++)
        {
            result[i] = Compose(dense[i], weights[i].Dense, cjk[i], weights[i].Cjk);
        }
        return result;
    }

    private float[] Compose(float[]? dense, float denseWeight, float[]? cjk, float cjkWeight)
    {
        var result = new float[Dimensions];
        if (dense is not null)
        {
            if (dense.Length != _dense.Dimensions)
            {
                throw new InvalidOperationException($"The dense embedder returned {dense.Length} dimensions, not {_dense.Dimensions}.");
            }
            TensorPrimitives.Multiply(dense, denseWeight, result.AsSpan(0, dense.Length));
        }
        if (cjk is not null)
        {
            TensorPrimitives.Multiply(cjk, cjkWeight, result.AsSpan(_dense.Dimensions, cjk.Length));
        }
        // Either block may be all zeros (a text of stop words only): renormalize what is there.
        var norm = TensorPrimitives.Norm(result);
        if (norm > 0 && Math.Abs(norm - 1) > 1e-6)
        {
            TensorPrimitives.Divide(result, norm, result);
        }
        return result;
    }
}
