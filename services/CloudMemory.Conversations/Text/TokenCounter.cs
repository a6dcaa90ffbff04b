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

    private sealed class TiktokenCounter(string encoding) : ITokenCounter
    {
        private readonly TiktokenTokenizer _tokenizer = TiktokenTokenizer.CreateForEncoding(encoding);

        public string Name => encoding;

        public long Units(string? text) =>
            string.IsNullOrEmpty(text) ? 0 : (long)_tokenizer.CountTokens(text) * TokenEstimator.UnitsPerToken;
    }
}
