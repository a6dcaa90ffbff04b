using CloudMemory.Context.Features.Memories;
using CloudMemory.Testing;

namespace CloudMemory.Embeddings.Onnx.Tests;

/// <summary>The onnx provider's vectors through both stores: the same hits in memory and in PostgreSQL.</summary>
[Collection(ModelCollection.Name)]
public sealed class PostgresOnnxTests(ModelFixture fixture)
{
    public static TheoryData<bool> Stores => new() { false, true };

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task SemanticSearch_ParaphrasedQuestion_FindsTheMemoryInEitherScript(bool postgres)
    {
        _ = fixture;
        await using var host = await MemoryHost.StartAsync("onnx", postgres ? PostgresTestServer.ConnectionString : null);
        var hiking = await host.WriteAsync("acme", "Caroline went hiking in the mountains with her dog on Saturday.");
        var violin = await host.WriteAsync("acme", "Melanie's daughter just started violin lessons.");
        var cake = await host.WriteAsync("acme", "The lemon cake recipe turned out really well.");
        var tired = await host.WriteAsync("acme", "我今天加班到很晚，特别累。");
        var other = await host.WriteAsync("other-tenant", "Caroline went hiking in the mountains with her dog on Saturday.");
        await host.EmbeddedAsync();

        var english = await host.SearchAsync("acme", "Who took a walk in the hills with a pet?", SearchModes.Semantic, 3);
        var music = await host.SearchAsync("acme", "Which child is taking music lessons?", SearchModes.Semantic, 3);
        var chinese = await host.HitsAsync("acme", "谁今天很累？", SearchModes.Semantic, 3);

        english[0].Should().Be(hiking);
        english.Should().NotContain(tired, "a Chinese memory shares no vector block with an English query").And.NotContain(other);
        music[0].Should().Be(violin);
        chinese[0].Entry.Id.Should().Be(tired);
        chinese[0].SemanticScore.Should().BeGreaterThan(0);
        chinese.Skip(1).Should().OnlyContain(h => h.SemanticScore == 0, "English memories ({0}, ...) have no CJK block", cake);
    }
}
