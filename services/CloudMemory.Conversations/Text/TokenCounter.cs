using System.Collections.Concurrent;
using Microsoft.ML.Tokenizers;

namespace CloudMemory.Conversations.Text;

/// <summary>
/// Counts the tokens of one logged message, once, when it is written; the log stores the count with
/// the message and keeps running totals, so a query never re-tokenizes the history. Counts are in
/// the log's quarter-token units (<see cref="TokenEstimator.UnitsPerToken"/>): a tokenizer's count
/// times four, or the estimator's units.
/// </summary>
public interface ITokenCounter
{
    /// <summary>The <see cref="MemoryPolicyOptions.Tokenizer"/> name of this counter.</summary>
    string Name { get; }

    /// <summary>Units of one message's rendering (null counts as empty).</summary>
    long Units(string? text);
}

/// <summary>The token counters <see cref="MemoryPolicyOptions.Tokenizer"/> can name.</summary>
public static class TokenCounters
{
    /// <summary>GPT-4o / GPT-4.1 / o-series encoding (the default).</summary>
    public const string O200kBase = "o200k_base";

    /// <summary>GPT-4 / GPT-3.5 encoding.</summary>
    public const string Cl100kBase = "cl100k_base";

    /// <summary><see cref="TokenEstimator"/>: no vocabulary, one token per CJK character, a quarter per other character.</summary>
    public const string Estimate = "estimate";

    /// <summary>Every name <see cref="Create"/> accepts.</summary>
    public static readonly IReadOnlyList<string> Names = [O200kBase, Cl100kBase, Estimate];

    private static readonly ConcurrentDictionary<string, Lazy<ITokenCounter>> Loaded = new(StringComparer.Ordinal);

    /// <summary>The estimator as a counter.</summary>
    public static ITokenCounter Estimator { get; } = new EstimatedTokenCounter();

    /// <summary>True when <paramref name="name"/> is one of <see cref="Names"/>.</summary>
    public static bool IsKnown(string? name) => name is not null && Names.Contains(name, StringComparer.Ordinal);

    /// <summary>
    /// The counter named <paramref name="name"/>. A tokenizer's vocabulary (a few MB, from its data
    /// package) loads once per process and is shared: the tokenizers are thread-safe.
    /// </summary>
    public static ITokenCounter Create(string name) => name switch
    {
        Estimate => Estimator,
        O200kBase or Cl100kBase => Loaded.GetOrAdd(name, n => new Lazy<ITokenCounter>(() => new TiktokenCounter(n))).Value,
        _ => throw new ArgumentException($"Unknown tokenizer '{name}'; use one of {string.Join(", ", Names)}.", nameof(name)),
    };

    /// <summary>
    /// Units of <paramref name="parts"/> joined by the log's one-unit separator: what the running
    /// totals hold for those messages. For the estimator it equals the units of the joined text.
    /// </summary>
    public static long JoinedUnits(this ITokenCounter counter, IEnumerable<string> parts)
    {
        long units = 0;
        var count = 0;
        foreach (var part in parts)
        {
            units += counter.Units(part);
            count++;
        }
        return count == 0 ? 0 : units + count - 1;
    }

    private sealed class EstimatedTokenCounter : ITokenCounter
    {
        public string Name => Estimate;

        public long Units(string? text) => TokenEstimator.Units(text);
    }

    private sealed class TiktokenCounter : ITokenCounter
    {
        // Piece counts remembered by the ASCII path: words repeat, and the tokenizer's own cache costs
        // about as much per piece as this whole lookup. Bounded; pieces past the bound are counted
        // each time. Pieces longer than MaxCachedPiece are not remembered.
        private const int MaxCachedPieces = 50_000;
        private const int MaxCachedPiece = 24;

        private readonly TiktokenTokenizer _tokenizer;
        private readonly bool _asciiSplitter;
        private readonly ConcurrentDictionary<string, int> _pieces = new(StringComparer.Ordinal);
        private readonly ConcurrentDictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _pieceLookup;
        private int _cached;

        public TiktokenCounter(string encoding)
        {
            Name = encoding;
            _tokenizer = TiktokenTokenizer.CreateForEncoding(encoding);
            _asciiSplitter = encoding == O200kBase;
            _pieceLookup = _pieces.GetAlternateLookup<ReadOnlySpan<char>>();
        }

        public string Name { get; }

        public long Units(string? text) =>
            string.IsNullOrEmpty(text) ? 0 : (long)Count(text) * TokenEstimator.UnitsPerToken;

        // Plain ASCII skips the tokenizer's regex (O200kAsciiSplitter); each piece is still counted by the tokenizer.
        private int Count(string text)
        {
            if (!_asciiSplitter || !O200kAsciiSplitter.Handles(text))
            {
                return _tokenizer.CountTokens(text);
            }
            var count = 0;
            for (var start = 0; start < text.Length;)
            {
                var end = O200kAsciiSplitter.PieceEnd(text, start);
                count += CountPiece(text.AsSpan(start, end - start));
                start = end;
            }
            return count;
        }

        private int CountPiece(ReadOnlySpan<char> piece)
        {
            if (_pieceLookup.TryGetValue(piece, out var known))
            {
                return known;
            }
            var count = _tokenizer.CountTokens(piece, considerPreTokenization: false, considerNormalization: false);
            if (piece.Length <= MaxCachedPiece && Volatile.Read(ref _cached) < MaxCachedPieces && _pieceLookup.TryAdd(piece, count))
            {
                Interlocked.Increment(ref _cached);
            }
            return count;
        }
    }
}
