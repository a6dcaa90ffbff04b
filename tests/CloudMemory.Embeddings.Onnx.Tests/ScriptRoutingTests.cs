using System.Numerics.Tensors;
using CloudMemory.Context.Features.Memories;

namespace CloudMemory.Embeddings.Onnx.Tests;

[Collection(ModelCollection.Name)]
public sealed class ScriptRoutingTests(ModelFixture fixture)
{
    [Fact]
    public async Task EmbedAsync_ChineseText_OnlyTheCjkBlockIsSet()
    {
        var routed = fixture.Routed;

        var vector = (await routed.EmbedAsync(["我今天很累，想早点睡觉。"]))[0];

        vector.Should().HaveCount(routed.Dimensions);
        vector.Take(routed.DenseDimensions).Should().OnlyContain(v => v == 0, "Chinese never goes through the model's [UNK] tokens");
        TensorPrimitives.Norm(vector.AsSpan(routed.DenseDimensions)).Should().BeApproximately(1f, 1e-4f);
    }

    [Fact]
    public async Task EmbedQueryAsync_EnglishAndChineseQueries_EachComparesWithItsOwnScriptOnly()
    {
        var routed = fixture.Routed;
        string[] texts =
        [
            "My daughter plays the piano every evening.",
            "We repainted the kitchen blue last spring.",
            "我女儿每天晚上弹钢琴。",
            "去年春天我们把厨房刷成了蓝色。",
            "我对花生过敏。",
        ];
        var documents = await routed.EmbedAsync(texts);

        var english = await routed.EmbedQueryAsync("Who practises a musical instrument?");
        var chinese = await routed.EmbedQueryAsync("谁每天弹钢琴？");

        Best(english, documents).Should().Be(0);
        Best(chinese, documents).Should().Be(2);
        foreach (var i in new[] { 2, 3, 4 })
        {
            TensorPrimitives.Dot(english, documents[i]).Should().Be(0f, "an English query never meets the CJK block");
        }
        foreach (var i in new[] { 0, 1 })
        {
            TensorPrimitives.Dot(chinese, documents[i]).Should().Be(0f, "a Chinese query never meets the model's block");
        }
    }

    [Fact]
    public async Task EmbedAsync_MixedText_FoundFromEitherScript()
    {
        var routed = fixture.Routed;
        const string Mixed = "Meeting notes: 明天下午三点 review the budget with finance";
        var documents = await routed.EmbedAsync([Mixed, "The dog needs a walk after dinner.", "我周末想去爬山。", "今天的晚饭是饺子。"]);

        var english = await routed.EmbedQueryAsync("When is the budget review?");
        var chinese = await routed.EmbedQueryAsync("明天下午几点开会");

        ScriptRoutedEmbedder.Weights(Mixed).Should().Be((MathF.Sqrt(0.5f), MathF.Sqrt(0.5f)));
        Best(english, documents).Should().Be(0);
        Best(chinese, documents).Should().Be(0);
    }

    private static int Best(float[] query, IReadOnlyList<float[]> documents)
    {
        var scores = documents.Select(d => TensorPrimitives.Dot(query, d)).ToList();
        return scores.IndexOf(scores.Max());
    }

    [Theory]
    [InlineData("Hello world", 0.0)]
    [InlineData("我今天很累", 1.0)]
    [InlineData("12345 !!!", 0.0)]
    [InlineData("東京で寿司を食べた", 1.0)]
    public void CjkShare_CountsLettersOnly(string text, double expected) =>
        ScriptRoutedEmbedder.CjkShare(text).Should().BeApproximately(expected, 1e-9);
}
