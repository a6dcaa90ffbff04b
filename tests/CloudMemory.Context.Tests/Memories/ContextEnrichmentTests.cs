using CloudMemory.Context.Features.Memories;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.Context.Tests.Memories;

/// <summary>Conversational context enrichment of message vectors and pseudo-relevance feedback.</summary>
public sealed class ContextEnrichmentTests : IAsyncLifetime
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);
    private MemoryApp _app = null!;

    public async Task InitializeAsync() => _app = await MemoryApp.StartAsync();

    public async Task DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public void Enrich_AddsNeighboursWithHalvingWeights_AndNormalizes()
    {
        float[] self = [1, 0, 0];
        float[] near = [0, 1, 0];
        float[] far = [0, 0, 1];

        var v = EmbeddingPipeline.Enrich(self, [near, far], [], 0.5);

        // self + 0.5·near + 0.25·far, normalized.
        var norm = Math.Sqrt(1 + 0.25 + 0.0625);
        v.Should().Equal([(float)(1 / norm), (float)(0.5 / norm), (float)(0.25 / norm)], (a, b) => Math.Abs(a - b) < 1e-6);
        self.Should().Equal(1f, 0f, 0f);
    }

    [Fact]
    public void Enrich_WeightZero_KeepsTheOwnVector()
    {
        float[] self = [0.6f, 0.8f];
        EmbeddingPipeline.Enrich(self, [[1, 0]], [[0, 1]], 0).Should().Equal(0.6f, 0.8f);
    }

    [Fact]
    public async Task PronounTurn_IsFoundByItsNeighboursTopic_UntilTheNeighbourIsDeleted()
    {
        var memory = _app.Services.GetRequiredService<ILongTermMemory>();
        await WriteAsync(memory, "t1", "Mel: Filler about the weather today", 0);
        await WriteAsync(memory, "t2", "Caroline: I adopted a greyhound puppy from the shelter", 1);
        await WriteAsync(memory, "t3", "Mel: That is wonderful, congratulations", 2);
        await WriteAsync(memory, "t4", "Caroline: Thanks so much", 3);
        await _app.EmbeddedAsync();

        var before = await SemanticAsync(memory, "greyhound puppy shelter");
        var withNeighbour = Score(before, "t3");
        withNeighbour.Should().BeGreaterThan(0.1, "the reply's vector includes the turn it answers");

        (await memory.DeleteAsync("t", "t2")).Should().BeTrue();
        await _app.EmbeddedAsync();

        var after = await SemanticAsync(memory, "greyhound puppy shelter");
        Score(after, "t3").Should().BeLessThan(0.05, "the deleted turn no longer enriches its neighbour");
    }

    [Fact]
    public async Task LaterTurn_RefreshesItsPredecessor()
    {
        var memory = _app.Services.GetRequiredService<ILongTermMemory>();
        await WriteAsync(memory, "a1", "Jon: Guess what happened", 0);
        await _app.EmbeddedAsync();
        Score(await SemanticAsync(memory, "marathon"), "a1").Should().BeLessThan(0.05);

        await WriteAsync(memory, "a2", "Gina: You ran the marathon in Boston", 1);
        await _app.EmbeddedAsync();

        Score(await SemanticAsync(memory, "marathon"), "a1").Should().BeGreaterThan(0.1, "its successor was folded into its vector");
    }

    [Fact]
    public async Task NonMessageEntries_AreNotEnriched()
    {
        var memory = _app.Services.GetRequiredService<ILongTermMemory>();
        await memory.CreateAsync("t", new CreateMemoryRequest("likes tea", MemoryTypes.Preference, "p1", ContextId: "c", CreatedAt: T0));
        await memory.CreateAsync("t", new CreateMemoryRequest("kayaking on the lake", MemoryTypes.Preference, "p2", ContextId: "c", CreatedAt: T0.AddSeconds(1)));
        await _app.EmbeddedAsync();

        Score(await SemanticAsync(memory, "kayaking lake"), "p1").Should().BeLessThan(0.05);
    }

    [Fact]
    public async Task HybridSearch_WithFeedback_IsDeterministic()
    {
        var memory = _app.Services.GetRequiredService<ILongTermMemory>();
        await WriteAsync(memory, "f1", "Ann: We went camping near the lake with the kids", 0);
        await WriteAsync(memory, "f2", "Bob: The tent leaked during the storm at the campsite", 1);
        await WriteAsync(memory, "f3", "Ann: Work has been busy with deadlines", 2);
        await _app.EmbeddedAsync();

        var request = new MemorySearchRequest("camping trip", 3, SearchModes.Hybrid, Filters: new MemorySearchFilters(ContextId: "c"));
        var first = await memory.SearchAsync("t", request);
        var second = await memory.SearchAsync("t", request);

        // Same order; scores equal up to the usage boost (≤ 1 %), since the first search's accesses are
        // recorded in the background and may land before the second search.
        first.Hits.Select(h => h.Entry.Id).Should().Equal(second.Hits.Select(h => h.Entry.Id));
        first.Hits.Zip(second.Hits).Should().OnlyContain(p => Math.Abs(p.First.Score - p.Second.Score) <= 0.01 * p.First.Score);
        first.Hits[0].Entry.Id.Should().Be("f1");
    }

    private static double Score(IReadOnlyList<MemoryHit> hits, string id) =>
        hits.Where(h => h.Entry.Id == id).Select(h => h.SemanticScore).DefaultIfEmpty(0).Single();

    private static Task WriteAsync(ILongTermMemory memory, string id, string content, int second) =>
        memory.CreateAsync("t", new CreateMemoryRequest(content, MemoryTypes.Message, id, ContextId: "c", CreatedAt: T0.AddSeconds(second)));

    private static async Task<IReadOnlyList<MemoryHit>> SemanticAsync(ILongTermMemory memory, string query) =>
        (await memory.SearchAsync("t", new MemorySearchRequest(query, 10, SearchModes.Semantic, Filters: new MemorySearchFilters(ContextId: "c")))).Hits;
}
