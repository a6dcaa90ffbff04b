using CloudMemory.Context.Features.Memories;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace CloudMemory.Context.Tests.Memories;

/// <summary>Stemmed lexical terms, the learned latent space, min-max fusion, asymmetric enrichment and reply propagation.</summary>
public sealed class RetrievalQualityTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly string[] Music = ["guitar", "band", "concert", "song", "music", "stage", "drummer", "album"];
    private static readonly string[] Dogs = ["puppy", "leash", "park", "walk", "dog", "vet", "fetch", "kennel"];

    [Fact]
    public void LexicalTerms_StemInflectedForms_AndDropStopWords()
    {
        new InMemoryIndexOptions().LexicalStemming.Should().BeTrue("stemming is the default");
        TextAnalysis.LexicalTerms("She painted; he paints. The painting!").Should().Equal("paint", "paint", "paint");
        TextAnalysis.Terms("She painted").Should().Equal("painted");
    }

    [Fact]
    public void LatentSpace_RelatesWordsThatShareContexts()
    {
        var space = LatentSemanticSpace.Train(Corpus(), LocalHashingEmbedder.DefaultDimensions, rank: 4)!;
        space.Should().NotBeNull();
        space.Vocabulary.Should().Be(16);

        var embedder = new LocalHashingEmbedder();
        var query = embedder.Embed("guitar");
        var band = embedder.Embed("drummer album");
        var dogs = embedder.Embed("leash kennel");
        Dot(query, band).Should().BeApproximately(0, 1e-6, "no shared word");

        var expanded = space.Expand(query, 1.0);
        Dot(expanded, band).Should().BeGreaterThan(Dot(expanded, dogs) + 0.05);
        Dot(expanded, expanded).Should().BeApproximately(1, 1e-4);
    }

    [Fact]
    public void LatentSpace_IsDeterministic()
    {
        var embedder = new LocalHashingEmbedder();
        var query = embedder.Embed("puppy walk in the park");
        var a = LatentSemanticSpace.Train(Corpus(), 768, rank: 4)!.Expand(query, 0.5);
        var b = LatentSemanticSpace.Train(Corpus(), 768, rank: 4)!.Expand(query, 0.5);
        a.Should().Equal(b);
    }

    [Fact]
    public void LatentSpace_NeedsEnoughText_AndLeavesUnknownQueriesAlone()
    {
        LatentSemanticSpace.Train(["one text about music", "another about music"], 768, rank: 4).Should().BeNull();

        var space = LatentSemanticSpace.Train(Corpus(), 768, rank: 4)!;
        var unknown = new LocalHashingEmbedder().Embed("zebra");
        space.Expand(unknown, 1.0).Should().BeSameAs(unknown);
        space.Expand(unknown, 0).Should().BeSameAs(unknown);
    }

    [Fact]
    public async Task LatentIndex_LearnsPerTenantFromTheStore()
    {
        var store = new InMemoryMemoryStore();
        var i = 0;
        foreach (var text in Corpus())
        {
            var entry = new MemoryEntry($"e{i}", "acme", null, "c", null, MemoryTypes.Message, text,
                new Dictionary<string, string>(), [], T0.AddSeconds(i), T0.AddSeconds(i), 0, null);
            await store.UpsertAsync(entry, LongTermMemoryService.ContentHash(text));
            i++;
        }
        var index = new LatentSemanticIndex(store, new LocalHashingEmbedder(),
            Options.Create(new EmbeddingOptions { LatentMinTexts = 50, LatentDimensions = 4 }), TimeProvider.System, NullLogger<LatentSemanticIndex>.Instance);

        await index.TrainAsync("acme");

        index.SpaceOf("acme")!.Texts.Should().Be(i);
        index.SpaceOf("other").Should().BeNull();
        var query = new LocalHashingEmbedder().Embed("guitar");
        index.Expand("acme", query).Should().NotEqual(query);
        index.Expand("other", query).Should().BeSameAs(query);

        var disabled = new LatentSemanticIndex(store, new LocalHashingEmbedder(),
            Options.Create(new EmbeddingOptions { LatentWeight = 0 }), TimeProvider.System, NullLogger<LatentSemanticIndex>.Instance);
        await disabled.TrainAsync("acme");
        disabled.Enabled.Should().BeFalse();
        disabled.Expand("acme", query).Should().BeSameAs(query);
    }

    [Fact]
    public void MinMaxFusion_MapsTheWorstCandidateToZero()
    {
        var fused = HybridRanking.Fuse([new("a", 0.9), new("b", 0.5), new("c", 0.1)], [], SearchModes.Semantic, FusionMethods.Weighted, 0.7, 60, minMax: true);
        fused["a"].Fused.Should().BeApproximately(1, 1e-9);
        fused["b"].Fused.Should().BeApproximately(0.5, 1e-9);
        fused["c"].Fused.Should().BeApproximately(0, 1e-9);

        var max = HybridRanking.Fuse([new("a", 0.9), new("c", 0.1)], [], SearchModes.Semantic, FusionMethods.Weighted, 0.7, 60);
        max["c"].Fused.Should().BeApproximately(0.1 / 0.9, 1e-9);
    }

    [Fact]
    public void Enrich_WeighsPrecedingAndFollowingMessagesSeparately()
    {
        var v = EmbeddingPipeline.Enrich([1, 0, 0], [[0, 1, 0]], [[0, 0, 1]], 0.8, 0.2);
        var norm = Math.Sqrt(1 + 0.64 + 0.04);
        v.Should().Equal([(float)(1 / norm), (float)(0.8 / norm), (float)(0.2 / norm)], (a, b) => Math.Abs(a - b) < 1e-6);
    }

    [Fact]
    public async Task HybridSearch_PassesScoreToTheReply()
    {
        // Without neighbour enrichment the reply shares nothing with the query: only reply
        // propagation can lift it above the unrelated messages.
        await using var app = await MemoryApp.StartAsync(configure: s =>
        {
            s.Configure<EmbeddingOptions>(o => o.NeighbourWeight = 0);
            s.Configure<LongTermMemoryOptions>(o => { o.ReplyWeight = 0.15; o.PassageWeight = 0; });
        });
        var memory = app.Services.GetRequiredService<ILongTermMemory>();
        string[] turns =
        [
            "Carol: the weather turned cold today",
            "Alice: how do you usually unwind after work?",
            "Bob: mostly long runs by the river",
            "Carol: my sister visits next month",
            "Dan: the train was late again",
        ];
        for (var i = 0; i < turns.Length; i++)
        {
            await memory.CreateAsync("t", new CreateMemoryRequest(turns[i], MemoryTypes.Message, $"m{i}", ContextId: "c", CreatedAt: T0.AddSeconds(i)));
        }
        await app.EmbeddedAsync();

        var hybrid = (await memory.SearchAsync("t", new MemorySearchRequest("unwind after work", 5, SearchModes.Hybrid, Filters: new MemorySearchFilters(ContextId: "c")))).Hits;
        hybrid.Select(h => h.Entry.Id).Take(2).Should().Equal("m1", "m2");
        hybrid[1].Score.Should().BeGreaterThan(0);

        var lexical = (await memory.SearchAsync("t", new MemorySearchRequest("unwind after work", 5, SearchModes.Lexical, Filters: new MemorySearchFilters(ContextId: "c")))).Hits;
        lexical.Select(h => h.Entry.Id).Should().Equal("m1");
    }

    private static List<string> Corpus()
    {
        var random = new Random(5);
        var texts = new List<string>();
        for (var i = 0; i < 300; i++)
        {
            var topic = i % 2 == 0 ? Music : Dogs;
            texts.Add(string.Join(' ', Enumerable.Range(0, 4).Select(_ => topic[random.Next(topic.Length)])));
        }
        return texts;
    }

    private static double Dot(float[] a, float[] b) => System.Numerics.Tensors.TensorPrimitives.Dot(a, b);
}
