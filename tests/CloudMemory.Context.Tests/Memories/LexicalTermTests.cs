using CloudMemory.Context.Features.Memories;

namespace CloudMemory.Context.Tests.Memories;

/// <summary>
/// The in-memory index reads terms as spans (no string per token); they must be exactly the terms
/// of <see cref="TextAnalysis.Terms"/> stemmed by the string stemmer, which queries use.
/// </summary>
public sealed class LexicalTermTests
{
    private static readonly string[] Texts =
    [
        "What did Caroline's dog eat, today?",
        "PAINTED paintings Paints; the STORIES of running dogs hopped and hoped",
        "Ünïcödé Straße İstanbul ÆSIR ΣΊΣΥΦΟΣ naïve café – 東京で会いましょう 123abc 4,5 x",
        "a the of to in and",
        "",
        "   ...   ",
        new string('x', 300) + "ing " + new string('Y', 129) + "ies tail",
        "Turn 7: the headache is back since 3 days, with fever around 38.5. Answer 7: keep resting, drink water.",
        "caresses ponies ties cats feed agreed plastered bled motoring sing conflated troubled sized hopping tanned falling hissing fizzed failing filing happily quickly fully",
    ];

    public static TheoryData<string> Inputs()
    {
        var data = new TheoryData<string>();
        foreach (var text in Texts)
        {
            data.Add(text);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Inputs))]
    public void EnumeratedTerms_AreTheStemmedTerms(string text)
    {
        var expected = TextAnalysis.Terms(text).Select(TextAnalysis.Stem).ToList();

        var enumerated = new List<string>();
        foreach (var term in TextAnalysis.EnumerateLexicalTerms(text, stem: true, stackalloc char[8]))
        {
            enumerated.Add(term.ToString());
        }

        enumerated.Should().Equal(expected);
        TextAnalysis.LexicalTerms(text).Should().Equal(expected);
        TextAnalysis.LexicalTerms(text, stem: false).Should().Equal(TextAnalysis.Terms(text));
    }

    [Fact]
    public void Stem_MatchesTheSuffixRules_OnEveryRootAndSuffix()
    {
        string[] roots = ["paint", "run", "hop", "fall", "fizz", "miss", "stor", "agre", "bl", "sing", "happ", "tie", "pony", "bus", "thesis", "x", "ab", "abc", "quick", "ful"];
        string[] suffixes = ["", "s", "es", "ies", "sses", "ss", "us", "is", "ing", "ingly", "ed", "edly", "ly", "e", "ings", "eds", "lys", "ning", "ped", "ies1", "E"];
        foreach (var root in roots)
        {
            foreach (var suffix in suffixes)
            {
                var word = root + suffix;
                TextAnalysis.Stem(word).Should().Be(ReferenceStem(word), $"'{word}'");
            }
        }
    }

    [Fact]
    public void Stem_UnchangedWord_IsTheSameString()
    {
        var word = new string("paint".ToCharArray());
        TextAnalysis.Stem(word).Should().BeSameAs(word);
    }

    // The string stemmer as it was before the index read spans: the rules the span stemmer must keep.
    private static string ReferenceStem(string token)
    {
        if (token.Length <= 3 || !char.IsLetter(token[^1]))
        {
            return token;
        }
        var s = token;
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
        static bool HasVowel(string v) => v.Any("aeiouy".Contains);
        static string UndoDouble(string v) =>
            v.Length > 3 && v[^1] == v[^2] && v[^1] is not ('l' or 's' or 'z') && !"aeiou".Contains(v[^1], StringComparison.Ordinal) ? v[..^1] : v;
        if (s.EndsWith("ingly", StringComparison.Ordinal) && s.Length > 7)
        {
            s = s[..^5];
        }
        else if (s.EndsWith("ing", StringComparison.Ordinal) && s.Length > 5 && HasVowel(s[..^3]))
        {
            s = UndoDouble(s[..^3]);
        }
        else if (s.EndsWith("edly", StringComparison.Ordinal) && s.Length > 6)
        {
            s = s[..^4];
        }
        else if (s.EndsWith("ed", StringComparison.Ordinal) && s.Length > 4 && HasVowel(s[..^2]))
        {
            s = UndoDouble(s[..^2]);
        }
        else if (s.EndsWith("ly", StringComparison.Ordinal) && s.Length > 5)
        {
            s = s[..^2];
        }
        if (s.Length > 4 && s.EndsWith('e'))
        {
            s = s[..^1];
        }
        return s;
    }
}
