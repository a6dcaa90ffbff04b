using Xunit.Abstractions;

namespace CloudMemory.Embeddings.Onnx.Tests;

/// <summary>
/// The Chinese retrieval set (Data/chinese-retrieval.tsv, 60 memories and one question each, see
/// Data/README.md): with the onnx provider, Chinese goes to the CJK block and must retrieve at least
/// as well as the local provider did before this provider existed.
/// </summary>
[Collection(ModelCollection.Name)]
public sealed class ChineseRetrievalTests(ModelFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public async Task HybridSearch_ChineseSet_OnnxProviderRetrievesAtLeastAsWellAsLocal()
    {
        _ = fixture;
        var set = ChineseRetrievalSet.Load();
        set.Should().HaveCountGreaterThanOrEqualTo(50);

        var local = await RecallAsync("local", set);
        var onnx = await RecallAsync("onnx", set);

        output.WriteLine($"Chinese set, {set.Count} queries, hybrid recall@1 / @5: local {local.At1:0.000} / {local.At5:0.000}, onnx {onnx.At1:0.000} / {onnx.At5:0.000}");
        onnx.At5.Should().BeGreaterThanOrEqualTo(local.At5);
        onnx.At1.Should().BeGreaterThanOrEqualTo(local.At1);
        onnx.At5.Should().BeGreaterThan(0.5, "CJK unigrams and bigrams match questions worded differently from the memory");
    }

    private static async Task<(double At1, double At5)> RecallAsync(string provider, IReadOnlyList<(string Id, string Memory, string Query)> set)
    {
        await using var host = await MemoryHost.StartAsync(provider);
        var ids = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (id, memory, _) in set)
        {
            ids[await host.WriteAsync("zh", memory)] = id;
        }
        await host.EmbeddedAsync();
        double at1 = 0, at5 = 0;
        foreach (var (id, _, query) in set)
        {
            var hits = (await host.SearchAsync("zh", query)).Select(h => ids[h]).ToList();
            at1 += hits.Take(1).Contains(id) ? 1 : 0;
            at5 += hits.Take(5).Contains(id) ? 1 : 0;
        }
        return (at1 / set.Count, at5 / set.Count);
    }
}

internal static class ChineseRetrievalSet
{
    public static List<(string Id, string Memory, string Query)> Load() =>
        File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "Data", "chinese-retrieval.tsv"))
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => l.Split('\t'))
            .Select(p => (p[0], p[1], p[2]))
            .ToList();
}
