namespace CloudMemory.Context.Features.Memories;

/// <summary>Tokenization shared by BM25, the local embedder and the "why it matched" explanation.</summary>
public static class TextAnalysis
{
    // A common English stop-word list (close to NLTK's): dropping these keeps BM25 and the hashed
    // embedding focused on content words.
    private static readonly HashSet<string> StopWords = new(StringComparer.Ordinal)
    {
        "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at",
        "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could",
        "did", "do", "does", "doing", "don", "down", "during", "each", "few", "for", "from", "further", "had",
        "has", "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i",
        "if", "in", "into", "is", "it", "its", "itself", "just", "ll", "me", "more", "most", "my", "myself",
        "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves",
        "out", "over", "own", "re", "s", "same", "she", "should", "so", "some", "such", "t", "than", "that",
        "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those",
        "through", "to", "too", "under", "until", "up", "ve", "very", "was", "we", "were", "what", "when",
        "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours",
        "yourself", "yourselves", "d", "m", "o", "y", "ain", "aren", "couldn", "didn", "doesn", "hadn", "hasn",
        "haven", "isn", "ma", "mightn", "mustn", "needn", "shan", "shouldn", "wasn", "weren", "won", "wouldn",
    };

    /// <summary>True for an English stop word.</summary>
    public static bool IsStopWord(string token) => StopWords.Contains(token);

    /// <summary>Lower-cased runs of letters and digits, stop words included.</summary>
    public static List<string> RawTokens(string text)
    {
        var tokens = new List<string>();
        var span = text.AsSpan();
        var start = -1;
        for (var i = 0; i <= span.Length; i++)
        {
            var isWord = i < span.Length && char.IsLetterOrDigit(span[i]);
            if (isWord && start < 0)
            {
                start = i;
            }
            else if (!isWord && start >= 0)
            {
                tokens.Add(span[start..i].ToString().ToLowerInvariant());
                start = -1;
            }
        }
        return tokens;
    }

    /// <summary>Lower-cased alphanumeric tokens without stop words (the BM25 analyzer).</summary>
    public static List<string> Terms(string text)
    {
        var tokens = RawTokens(text);
        tokens.RemoveAll(IsStopWord);
        return tokens;
    }

    /// <summary>The terms the in-memory BM25 index and its queries use: <see cref="Terms"/>, stemmed when <paramref name="stem"/>.</summary>
    public static List<string> LexicalTerms(string text, bool stem = true)
    {
        var terms = Terms(text);
        if (stem)
        {
            for (var i = 0; i < terms.Count; i++)
            {
                terms[i] = Stem(terms[i]);
            }
        }
        return terms;
    }

    /// <summary>
    /// A light suffix stripper (a small subset of Porter's step 1): enough to let "painted",
    /// "painting" and "paints" meet, without a dictionary.
    /// </summary>
    public static string Stem(string token)
    {
        if (token.Length <= 3 || !char.IsLetter(token[^1]))
        {
            return token;
        }
        string s = token;
        if (s.EndsWith("ies", StringComparison.Ordinal) && s.Length > 4)
        {
            s = s[..^3] + "y";
        }
        else if (s.EndsWith("sses", StringComparison.Ordinal))
        {
            s = s[..^2];
        }
        else if (s.EndsWith('s') && !s.EndsWith("ss", StringComparison.Ordinal) && !s.EndsWith("us", StringComparison.Ordinal) && !s.EndsWith("is", StringComparison.Ordinal))
        {
            s = s[..^1];
        }

        if (s.EndsWith("ingly", StringComparison.Ordinal) && s.Length > 7)
        {
            s = s[..^5];
        }
        else if (s.EndsWith("ing", StringComparison.Ordinal) && s.Length > 5 && HasVowel(s.AsSpan(0, s.Length - 3)))
        {
            s = UndoDouble(s[..^3]);
        }
        else if (s.EndsWith("edly", StringComparison.Ordinal) && s.Length > 6)
        {
            s = s[..^4];
        }
        else if (s.EndsWith("ed", StringComparison.Ordinal) && s.Length > 4 && HasVowel(s.AsSpan(0, s.Length - 2)))
        {
            s = UndoDouble(s[..^2]);
        }
        else if (s.EndsWith("ly", StringComparison.Ordinal) && s.Length > 5)
        {
            s = s[..^2];
        }

        // "paint", "painte" and "painted" must meet: drop a trailing e so every form has the same root.
        if (s.Length > 4 && s.EndsWith('e'))
        {
            s = s[..^1];
        }
        return s;
    }

    private static readonly System.Buffers.SearchValues<char> Vowels = System.Buffers.SearchValues.Create("aeiouy");

    private static bool HasVowel(ReadOnlySpan<char> s) => s.ContainsAny(Vowels);

    private static string UndoDouble(string s) =>
        s.Length > 3 && s[^1] == s[^2] && s[^1] is not ('l' or 's' or 'z') && !"aeiou".Contains(s[^1], StringComparison.Ordinal) ? s[..^1] : s;
}
