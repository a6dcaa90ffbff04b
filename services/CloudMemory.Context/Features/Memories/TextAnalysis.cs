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
    public static List<string> Terms(string text) => LexicalTerms(text, stem: false);

    /// <summary>The terms the in-memory BM25 index and its queries use: <see cref="Terms"/>, stemmed when <paramref name="stem"/>.</summary>
    public static List<string> LexicalTerms(string text, bool stem = true)
    {
        var terms = new List<string>();
        foreach (var term in EnumerateLexicalTerms(text, stem, stackalloc char[MaxStackToken]))
        {
            terms.Add(term.ToString());
        }
        return terms;
    }

    /// <summary>
    /// The terms of <see cref="LexicalTerms"/>, in order, without a string per token: each term is
    /// lower-cased (and stemmed) into <paramref name="buffer"/> and valid until the next
    /// <c>MoveNext</c> (a longer token gets a buffer of its own).
    /// </summary>
    public static LexicalTermEnumerator EnumerateLexicalTerms(ReadOnlySpan<char> text, bool stem, Span<char> buffer) => new(text, stem, buffer);

    /// <summary>
    /// A light suffix stripper (a small subset of Porter's step 1): enough to let "painted",
    /// "painting" and "paints" meet, without a dictionary.
    /// </summary>
    public static string Stem(string token)
    {
        Span<char> buffer = token.Length <= MaxStackToken ? stackalloc char[MaxStackToken] : new char[token.Length];
        token.CopyTo(buffer);
        var length = Stem(buffer[..token.Length]);
        // Every rule shortens the token: the same length means nothing changed.
        return length == token.Length ? token : new string(buffer[..length]);
    }

    /// <summary>Stems <paramref name="token"/> in place (as <see cref="Stem(string)"/>); returns the stem's length.</summary>
    public static int Stem(Span<char> token)
    {
        var s = token;
        if (s.Length <= 3 || !char.IsLetter(s[^1]))
        {
            return s.Length;
        }
        if (s.EndsWith("ies") && s.Length > 4)
        {
            s[^3] = 'y';
            s = s[..^2];
        }
        else if (s.EndsWith("sses"))
        {
            s = s[..^2];
        }
        else if (s.EndsWith('s') && !s.EndsWith("ss") && !s.EndsWith("us") && !s.EndsWith("is"))
        {
            s = s[..^1];
        }

        if (s.EndsWith("ingly") && s.Length > 7)
        {
            s = s[..^5];
        }
        else if (s.EndsWith("ing") && s.Length > 5 && HasVowel(s[..^3]))
        {
            s = UndoDouble(s[..^3]);
        }
        else if (s.EndsWith("edly") && s.Length > 6)
        {
            s = s[..^4];
        }
        else if (s.EndsWith("ed") && s.Length > 4 && HasVowel(s[..^2]))
        {
            s = UndoDouble(s[..^2]);
        }
        else if (s.EndsWith("ly") && s.Length > 5)
        {
            s = s[..^2];
        }

        // "paint", "painte" and "painted" must meet: drop a trailing e so every form has the same root.
        if (s.Length > 4 && s.EndsWith('e'))
        {
            s = s[..^1];
        }
        return s.Length;
    }

    // Tokens up to this long are lower-cased and stemmed on the stack.
    private const int MaxStackToken = 128;

    private static readonly HashSet<string>.AlternateLookup<ReadOnlySpan<char>> StopWordSpans = StopWords.GetAlternateLookup<ReadOnlySpan<char>>();

    /// <summary>Enumerates <see cref="LexicalTerms"/> as spans (see <see cref="EnumerateLexicalTerms"/>).</summary>
    public ref struct LexicalTermEnumerator
    {
        private readonly ReadOnlySpan<char> _text;
        private readonly bool _stem;
        private Span<char> _buffer;
        private int _position;

        internal LexicalTermEnumerator(ReadOnlySpan<char> text, bool stem, Span<char> buffer)
        {
            _text = text;
            _stem = stem;
            _buffer = buffer;
        }

        /// <summary>The current term (lower-cased, stemmed when asked).</summary>
        public ReadOnlySpan<char> Current { get; private set; }

        /// <summary>This enumerator (for <c>foreach</c>).</summary>
        public readonly LexicalTermEnumerator GetEnumerator() => this;

        /// <summary>Advances to the next term that is not a stop word.</summary>
        public bool MoveNext()
        {
            while (_position < _text.Length)
            {
                // A token: a run of letters and digits.
                var start = _position;
                while (start < _text.Length && !char.IsLetterOrDigit(_text[start]))
                {
                    start++;
                }
                var end = start;
                while (end < _text.Length && char.IsLetterOrDigit(_text[end]))
                {
                    end++;
                }
                _position = end;
                if (end == start)
                {
                    return false;
                }
                var length = end - start;
                if (length > _buffer.Length)
                {
                    _buffer = new char[Math.Max(length, _buffer.Length * 2)];
                }
                var token = _buffer[..length];
                _text[start..end].ToLowerInvariant(token);
                if (StopWordSpans.Contains(token))
                {
                    continue;
                }
                Current = _stem ? token[..Stem(token)] : token;
                return true;
            }
            return false;
        }
    }

    private static readonly System.Buffers.SearchValues<char> Vowels = System.Buffers.SearchValues.Create("aeiouy");

    private static bool HasVowel(ReadOnlySpan<char> s) => s.ContainsAny(Vowels);

    private static Span<char> UndoDouble(Span<char> s) =>
        s.Length > 3 && s[^1] == s[^2] && s[^1] is not ('l' or 's' or 'z' or 'a' or 'e' or 'i' or 'o' or 'u') ? s[..^1] : s;
}
