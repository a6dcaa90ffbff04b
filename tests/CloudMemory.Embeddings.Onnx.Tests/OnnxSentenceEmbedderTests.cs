using System.Numerics.Tensors;

namespace CloudMemory.Embeddings.Onnx.Tests;

[Collection(ModelCollection.Name)]
public sealed class OnnxSentenceEmbedderTests(ModelFixture fixture)
{
    [Fact]
    public async Task EmbedAsync_AnyText_UnitVectorsOfTheModelsDimension()
    {
        var vectors = await fixture.Model.EmbedAsync(["I adopted a puppy last weekend.", "", new string('x', 50_000)]);

        vectors.Should().HaveCount(3);
        foreach (var v in vectors)
        {
            v.Should().HaveCount(384);
            TensorPrimitives.Norm(v).Should().BeApproximately(1f, 1e-3f);
        }
    }

    [Fact]
    public async Task EmbedQueryAsync_Paraphrase_RanksAboveUnrelatedSentences()
    {
        string[] documents =
        [
            "Caroline: I went hiking in the mountains with my dog on Saturday.",
            "Melanie: My daughter just started learning to play the violin.",
            "Caroline: The new recipe for lemon cake turned out really well.",
            "Melanie: We finally repainted the kitchen a pale shade of blue.",
        ];
        (string Query, int Expected)[] cases =
        [
            ("Who took a walk in the hills with a pet?", 0),
            ("Which child is taking music lessons?", 1),
            ("What dessert did someone bake?", 2),
            ("What colour was the kitchen painted?", 3),
        ];
        var stored = await fixture.Model.EmbedAsync(documents);

        foreach (var (query, expected) in cases)
        {
            var q = await fixture.Model.EmbedQueryAsync(query);
            var scores = stored.Select(d => TensorPrimitives.Dot(q, d)).ToList();
            scores.IndexOf(scores.Max()).Should().Be(expected, query);
        }
    }

    [Fact]
    public async Task EmbedQueryAsync_SameText_DiffersFromTheDocumentVector()
    {
        // The retrieval prefix goes on queries only.
        var document = (await fixture.Model.EmbedAsync(["camping trip by the lake"]))[0];
        var query = await fixture.Model.EmbedQueryAsync("camping trip by the lake");

        TensorPrimitives.Dot(document, query).Should().BeLessThan(0.99f).And.BeGreaterThan(0.5f);
    }

    [Fact]
    public async Task EmbedAsync_RepeatedText_RunsTheModelOnce()
    {
        var text = "A sentence embedded twice " + Guid.NewGuid();
        var first = (await fixture.Model.EmbedAsync([text]))[0];
        var runs = fixture.Model.ModelRuns;

        var second = (await ((CloudMemory.Context.Features.Memories.IEmbedder)fixture.Model).EmbedContextAsync([text]))[0];

        fixture.Model.ModelRuns.Should().Be(runs);
        second.Should().Equal(first);
    }
}
