namespace CloudMemory.Conversations.Text;

/// <summary>
/// Cheap token estimate for Chinese and English alike: a CJK character (Han, kana, Hangul,
/// full-width forms) counts as one token, any other character as a quarter token.
/// Counting is done in quarter-token "units", which are exactly additive: the units of a
/// concatenation equal the sum of the parts, so running totals never drift from a full re-count.
/// </summary>
public static class TokenEstimator
{
    /// <summary>Units per token.</summary>
    public const int UnitsPerToken = 4;

    /// <summary>Units of <paramref name="text"/>.</summary>
    public static long Units(ReadOnlySpan<char> text)
    {
        // Every CJK range below lies in U+3000..U+FFEF: text without any such character (most
        // English text) is one unit per character, found with one vectorized scan.
        if (text.IndexOfAnyInRange('\u3000', '\uFFEF') < 0)
        {
            return text.Length;
        }
        long units = 0;
        foreach (var c in text)
        {
            units += IsCjk(c) ? UnitsPerToken : 1;
        }
        return units;
    }

    /// <summary>Units of a string (null counts as empty).</summary>
    public static long Units(string? text) => text is null ? 0 : Units(text.AsSpan());

    /// <summary>Tokens for a number of units (rounded up).</summary>
    public static int TokensFromUnits(long units) => (int)Math.Min(int.MaxValue, (units + UnitsPerToken - 1) / UnitsPerToken);

    /// <summary>Estimated tokens of <paramref name="text"/>.</summary>
    public static int Estimate(string? text) => TokensFromUnits(Units(text));

    private static bool IsCjk(char c) =>
        c is >= '\u4E00' and <= '\u9FFF'   // CJK unified ideographs
        or >= '\u3400' and <= '\u4DBF'     // extension A
        or >= '\u3040' and <= '\u30FF'     // hiragana, katakana
        or >= '\uAC00' and <= '\uD7AF'     // Hangul syllables
        or >= '\u3000' and <= '\u303F'     // CJK punctuation
        or >= '\uFF00' and <= '\uFFEF'     // full-width forms
        or >= '\uF900' and <= '\uFAFF';    // compatibility ideographs
}
