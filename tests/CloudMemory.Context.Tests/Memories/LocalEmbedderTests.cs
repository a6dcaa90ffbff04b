using System.Numerics.Tensors;
using CloudMemory.Context.Features.Memories;

namespace CloudMemory.Context.Tests.Memories;

public sealed class LocalEmbedderTests
{
    private readonly LocalHashingEmbedder _embedder = new();

    [Fact]
    public void Embed_AnyText_IsUnitLengthAndDeterministic()
    {
        var a = _embedder.Embed("Caroline painted a sunrise last year");

        a.Should().HaveCount(LocalHashingEmbedder.DefaultDimensions);
        TensorPrimitives.Norm(a).Should().BeApproximately(1f, 1e-4f);
        new LocalHashingEmbedder().Embed("Caroline painted a sunrise last year").Should().Equal(a);
        _embedder.Embed("the of and").Should().OnlyContain(v => v == 0);
    }

    [Fact]
    public void Embed_InflectedForms_AreCloserThanUnrelatedText()
    {
        var query = _embedder.Embed("painting sunrises");

        var related = TensorPrimitives.Dot(query, _embedder.Embed("She painted a sunrise"));
        var unrelated = TensorPrimitives.Dot(query, _embedder.Embed("The invoice was paid by bank transfer"));

        related.Should().BeGreaterThan(0.5f);
        unrelated.Should().BeLessThan(0.1f);
    }

    [Fact]
    public async Task EmbedQuery_CommonWords_WeighLessThanRareOnes()
    {
        await _embedder.EmbedAsync(Enumerable.Range(0, 50).Select(i => $"Caroline: message number {i}").Append("Caroline: I adopted a puppy").ToList());
        var query = await ((IEmbedder)_embedder).EmbedQueryAsync("Caroline puppy");

        var rare = TensorPrimitives.Dot(query, _embedder.Embed("puppy"));
        var common = TensorPrimitives.Dot(query, _embedder.Embed("Caroline"));

        rare.Should().BeGreaterThan(common);
    }

    [Theory]
    [InlineData("painted", "paint")]
    [InlineData("painting", "paint")]
    [InlineData("paints", "paint")]
    [InlineData("stories", "story")]
    [InlineData("running", "run")]
    public void Stem_InflectedForms_ShareARoot(string word, string root) =>
        TextAnalysis.Stem(word).Should().Be(TextAnalysis.Stem(root));

    [Fact]
    public void Terms_DropStopWordsAndPunctuation() =>
        TextAnalysis.Terms("What did Caroline's dog eat, today?").Should().Equal("caroline", "dog", "eat", "today");
}

public sealed class HybridRankingTests
{
    [Fact]
    public void Fuse_Weighted_NormalizesEachSidePerQuery()
    {
        var fused = HybridRanking.Fuse([new("a", 0.8), new("b", 0.4)], [new("b", 10), new("c", 5)], SearchModes.Hybrid, FusionMethods.Weighted, 0.7, 60);

        fused["a"].Fused.Should().BeApproximately(0.7, 1e-9);
        fused["b"].Fused.Should().BeApproximately((0.7 * 0.5) + 0.3, 1e-9);
        fused["c"].Fused.Should().BeApproximately(0.15, 1e-9);
        fused["b"].Semantic.Should().Be(0.4);
        fused["b"].Lexical.Should().Be(10);
    }

    [Fact]
    public void Fuse_Rrf_AddsReciprocalRanks()
    {
        var fused = HybridRanking.Fuse([new("a", 0.9), new("b", 0.1)], [new("b", 3)], SearchModes.Hybrid, FusionMethods.Rrf, 0.5, 60);

        fused["a"].Fused.Should().BeApproximately(0.5 / 61, 1e-12);
        fused["b"].Fused.Should().BeApproximately((0.5 / 62) + (0.5 / 61), 1e-12);
    }

    [Fact]
    public void ReRankFactor_NewAndPopularEntries_RankSlightlyHigher()
    {
        var now = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var options = new LongTermMemoryOptions();
        var entry = new MemoryEntry("a", "t", null, null, null, MemoryTypes.LongTerm, "x", new Dictionary<string, string>(), [], now, now, 0, null);

        var fresh = HybridRanking.ReRankFactor(entry, now, options);
        var old = HybridRanking.ReRankFactor(entry with { CreatedAt = now.AddDays(-365) }, now, options);
        var popular = HybridRanking.ReRankFactor(entry with { AccessCount = 100 }, now, options);

        fresh.Should().BeApproximately(1.05, 1e-9);
        old.Should().BeLessThan(fresh).And.BeGreaterThanOrEqualTo(1);
        popular.Should().BeApproximately(1.10, 1e-9);
    }
}
