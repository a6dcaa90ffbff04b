using CloudMemory.Context.Features.Memories;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.Context.Tests.Memories;

/// <summary>Passage-level lexical scoring, query-term coverage re-rank and term proximity.</summary>
public sealed class PassageRankingTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void PassageScores_Sum_PassesDecayedScoreToNeighbours()
    {
        var lexical = new List<ScoredId> { new("b", 10), new("d", 2) };
        var neighbours = new Dictionary<string, IReadOnlyList<(string Id, int Distance)>>
        {
            ["b"] = [("a", 1), ("c", 1), ("d", 2)],
            ["d"] = [("c", 1), ("e", 1), ("b", 2)],
        };

        var scores = PassageRanking.PassageScores(lexical, neighbours, 0.5, 0.5, useMax: false).ToDictionary(s => s.Id, s => s.Score);

        scores["b"].Should().BeApproximately(10 + (0.5 * 0.5 * 2), 1e-9);
        scores["c"].Should().BeApproximately((0.5 * 10) + (0.5 * 2), 1e-9);
        scores["d"].Should().BeApproximately(2 + (0.5 * 0.5 * 10), 1e-9);
        scores["a"].Should().BeApproximately(5, 1e-9);
        scores["e"].Should().BeApproximately(1, 1e-9);
    }

    [Fact]
    public void PassageScores_Max_KeepsTheLargerOfOwnAndReceived()
    {
        var lexical = new List<ScoredId> { new("b", 10), new("c", 6) };
        var neighbours = new Dictionary<string, IReadOnlyList<(string Id, int Distance)>> { ["b"] = [("c", 1), ("a", 1)] };

        var scores = PassageRanking.PassageScores(lexical, neighbours, 0.5, 0.5, useMax: true);

        scores.Select(s => s.Id).Should().Equal("b", "c", "a");
        scores[1].Score.Should().Be(6);
        scores[2].Score.Should().Be(5);
    }

    [Fact]
    public void WindowCoverage_CountsOwnTermsFully_AndNeighboursDecayed()
    {
        // a - b - c - d: b holds "ice", d holds "cream", c holds "family".
        var next = new Dictionary<string, string> { ["a"] = "b", ["b"] = "c", ["c"] = "d" };
        var previous = next.ToDictionary(kv => kv.Value, kv => kv.Key);
        var terms = new Dictionary<string, IReadOnlySet<string>>
        {
            ["a"] = new HashSet<string>(),
            ["b"] = new HashSet<string> { "ice" },
            ["c"] = new HashSet<string> { "family" },
            ["d"] = new HashSet<string> { "cream" },
        };
        var weights = new Dictionary<string, double> { ["ice"] = 1, ["cream"] = 1, ["family"] = 2 };

        var c = PassageRanking.WindowCoverage("c", previous, next, terms, weights, 2, 0.5, 0.5);
        var a = PassageRanking.WindowCoverage("a", previous, next, terms, weights, 2, 0.5, 0.5);
        var aNear = PassageRanking.WindowCoverage("a", previous, next, terms, weights, 1, 0.5, 0.5);

        c.Should().BeApproximately(((2 * 1) + (1 * 0.5) + (1 * 0.5)) / 4, 1e-9);
        a.Should().BeApproximately(((1 * 0.5) + (2 * 0.25)) / 4, 1e-9);
        aNear.Should().BeApproximately(0.5 / 4, 1e-9);
    }

    [Fact]
    public void CoverageReRank_PrefersAResultWithTheMissingTerm()
    {
        var ranked = new List<(string Id, double Score, IReadOnlySet<string> Terms)>
        {
            ("x1", 1.0, new HashSet<string> { "ice", "cream" }),
            ("x2", 0.95, new HashSet<string> { "ice", "cream" }),
            ("y", 0.9, new HashSet<string> { "family" }),
            ("z", 0.1, new HashSet<string> { "family" }),
        };
        var weights = new Dictionary<string, double> { ["ice"] = 1, ["cream"] = 1, ["family"] = 1 };

        PassageRanking.CoverageReRank(ranked, weights, 0.5, 3).Should().Equal("x1", "y", "x2", "z");
        PassageRanking.CoverageReRank(ranked, weights, 0, 3).Should().Equal("x1", "x2", "y", "z");
        PassageRanking.CoverageReRank(ranked, weights, 0.5, 1).Should().Equal("x1", "x2", "y", "z");
    }

    [Fact]
    public void PairProximity_CountsAdjacentQueryPairsNearEachOther()
    {
        string[] query = ["big", "screen", "movi"];

        PassageRanking.PairProximity(query, ["movi", "big", "screen"]).Should().Be(1);
        PassageRanking.PairProximity(query, ["screen", "big"]).Should().Be(0.5);
        PassageRanking.PairProximity(query, ["big", "one", "two", "three", "screen"]).Should().Be(0);
        PassageRanking.PairProximity(["big"], ["big"]).Should().Be(0);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task LexicalSearch_FindsATurnThroughTheWordsAroundIt(bool postgres)
    {
        // m2 answers the question of m1 but shares only "weekend" with the query; the question's
        // other words sit in m1. Passage scoring lifts m2 above m4, which also says "weekend" (the
    // lexical list keeps its length, so m4 may drop out of it).
        await using var app = await MemoryApp.StartAsync(postgres ? TestPostgres.ConnectionString : null, configure: s => s.Configure<LongTermMemoryOptions>(o => o.PassageWeight = 4));
        var memory = app.Services.GetRequiredService<ILongTermMemory>();
        string[] turns =
        [
            "Carol: the weather turned cold today",
            "Alice: will you bake the lemon cake for your parents?",
            "Bob: yes, this weekend",
            "Carol: my sister visits next month",
            "Dan: the weekend train was late again",
        ];
        for (var i = 0; i < turns.Length; i++)
        {
            await memory.CreateAsync("t", new CreateMemoryRequest(turns[i], MemoryTypes.Message, $"m{i}", ContextId: "c", CreatedAt: T0.AddSeconds(i)));
        }
        await app.EmbeddedAsync();
        var request = new MemorySearchRequest("when does Bob bake the lemon cake this weekend", 5, SearchModes.Lexical, Filters: new MemorySearchFilters(ContextId: "c"));

        var hits = (await memory.SearchAsync("t", request)).Hits.Select(h => h.Entry.Id).ToList();

        hits.Take(2).Should().BeEquivalentTo(["m1", "m2"]);
        hits.IndexOf("m4").Should().NotBe(0).And.NotBe(1, "m4 shares only \"weekend\" and no neighbour helps it");
    }

    [Fact]
    public async Task LexicalSearch_WithoutPassageScoring_ReturnsOnlyMatchingTurns()
    {
        await using var app = await MemoryApp.StartAsync(configure: s => s.Configure<LongTermMemoryOptions>(o => { o.PassageWeight = 0; o.CoverageWeight = 0; }));
        var memory = app.Services.GetRequiredService<ILongTermMemory>();
        string[] turns = ["Alice: will you bake the lemon cake?", "Bob: yes, this weekend", "Dan: the train was late"];
        for (var i = 0; i < turns.Length; i++)
        {
            await memory.CreateAsync("t", new CreateMemoryRequest(turns[i], MemoryTypes.Message, $"m{i}", ContextId: "c", CreatedAt: T0.AddSeconds(i)));
        }
        await app.EmbeddedAsync();

        var hits = (await memory.SearchAsync("t", new MemorySearchRequest("lemon cake", 5, SearchModes.Lexical, Filters: new MemorySearchFilters(ContextId: "c")))).Hits;

        hits.Select(h => h.Entry.Id).Should().Equal("m0");
    }

    [Fact]
    public async Task PassageScoring_NeverReturnsNeighboursOutsideTheFilters()
    {
        await using var app = await MemoryApp.StartAsync(configure: s => s.Configure<LongTermMemoryOptions>(o => { o.PassageWeight = 8; o.ReplyWeight = 0.5; }));
        var memory = app.Services.GetRequiredService<ILongTermMemory>();
        await memory.CreateAsync("t", new CreateMemoryRequest("Alice: will you bake the lemon cake?", MemoryTypes.Message, "m0", UserId: "alice", ContextId: "c", CreatedAt: T0));
        await memory.CreateAsync("t", new CreateMemoryRequest("Bob: yes, this weekend", MemoryTypes.Message, "m1", UserId: "bob", ContextId: "c", CreatedAt: T0.AddSeconds(1)));
        await app.EmbeddedAsync();

        foreach (var mode in new[] { SearchModes.Lexical, SearchModes.Hybrid })
        {
            var hits = (await memory.SearchAsync("t", new MemorySearchRequest("lemon cake weekend", 5, mode, Filters: new MemorySearchFilters(ContextId: "c", UserId: "alice")))).Hits;
            hits.Select(h => h.Entry.Id).Should().Equal(["m0"], mode);
        }
    }
}
