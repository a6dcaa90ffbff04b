using CloudMemory.Conversations.Text;
using Microsoft.ML.Tokenizers;

namespace CloudMemory.Session.Tests.Text;

/// <summary>
/// The hand-written o200k pre-tokenizer must cut ASCII text exactly where the tokenizer's regex does,
/// and the counter that uses it must count exactly what the tokenizer counts.
/// </summary>
public sealed class O200kAsciiSplitterTests
{
    private static readonly TiktokenTokenizer Tokenizer = TiktokenTokenizer.CreateForEncoding(TokenCounters.O200kBase);

    // Letters of both cases (the contraction letters among them), digits, every kind of space and
    // line break, apostrophes and the punctuation that the pattern treats specially ('/', '<', '|').
    private const string Alphabet = "aAbBzZeEsStTmMdDlLrRvV  \t\r\n''0123456789/.,!?-_<>|\"#$%&()*+:;=@[\\]^`{}~";

    [Fact]
    public void Pieces_AreTheTokenizersOwn_OnRandomAsciiText()
    {
        var random = new Random(20261128);
        var compared = 0;
        for (var n = 0; n < 50_000; n++)
        {
            var chars = new char[random.Next(1, 48)];
            for (var i = 0; i < chars.Length; i++)
            {
                chars[i] = Alphabet[random.Next(Alphabet.Length)];
            }
            var text = new string(chars);
            if (!O200kAsciiSplitter.Handles(text))
            {
                continue; // "<|" somewhere: left to the tokenizer
            }
            Pieces(text).Should().Equal(TokenizerPieces(text), "the pieces of {0} must match", Quote(text));
            compared++;
        }
        compared.Should().BeGreaterThan(40_000);
    }

    [Theory]
    [InlineData("Should I go to the hospital today?")]
    [InlineData("I'm sure they'll say it's fine; WE'RE not DONE'S yet.")]
    [InlineData("Call 555-0123 at 10:30pm, or 1234567 after 2026/11/28!\r\n\r\n  next  line\t\ttabbed  ")]
    [InlineData("HTTPServer getURL camelCase ALLCAPS x/y/z ../path //comment\n// next")]
    [InlineData("   leading spaces and trailing   ")]
    [InlineData("\n\n\n")]
    [InlineData("a")]
    public void Counts_AreTheTokenizersCounts(string text)
    {
        O200kAsciiSplitter.Handles(text).Should().BeTrue();
        Pieces(text).Should().Equal(TokenizerPieces(text));
        TokenCounters.Create(TokenCounters.O200kBase).Units(text).Should().Be(Tokenizer.CountTokens(text) * TokenEstimator.UnitsPerToken);
    }

    [Theory]
    [InlineData("我头痛三天了, fever 38.5")]
    [InlineData("café au lait")]
    [InlineData("before <|endoftext|> after")]
    [InlineData("a\u000bvertical tab")]
    public void TextOutsidePlainAscii_IsLeftToTheTokenizer_AndCountsTheSame(string text)
    {
        O200kAsciiSplitter.Handles(text).Should().BeFalse();
        TokenCounters.Create(TokenCounters.O200kBase).Units(text).Should().Be(Tokenizer.CountTokens(text) * TokenEstimator.UnitsPerToken);
    }

    [Fact]
    public void RepeatedCounts_StayExact_OnceThePiecesAreRemembered()
    {
        var counter = TokenCounters.Create(TokenCounters.O200kBase);
        var random = new Random(5);
        for (var n = 0; n < 2_000; n++)
        {
            var words = Enumerable.Range(0, random.Next(1, 30)).Select(_ => Alphabet[random.Next(22)] + new string('e', random.Next(0, 30)));
            var text = string.Join(random.Next(2) == 0 ? " " : "\n", words);
            counter.Units(text).Should().Be(Tokenizer.CountTokens(text) * TokenEstimator.UnitsPerToken, "the count of {0}", Quote(text));
        }
    }

    private static List<(int Start, int Length)> Pieces(string text)
    {
        var pieces = new List<(int, int)>();
        for (var start = 0; start < text.Length;)
        {
            var end = O200kAsciiSplitter.PieceEnd(text, start);
            pieces.Add((start, end - start));
            start = end;
        }
        return pieces;
    }

    private static List<(int Start, int Length)> TokenizerPieces(string text) =>
        Tokenizer.PreTokenizer!.PreTokenize(text).Select(r => (r.Offset, r.Length)).ToList();

    private static string Quote(string text) => System.Text.Json.JsonSerializer.Serialize(text);
}
