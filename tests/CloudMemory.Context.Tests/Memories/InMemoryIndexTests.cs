using System.Numerics.Tensors;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Context.Features.Memories;

namespace CloudMemory.Context.Tests.Memories;

/// <summary>
/// The in-memory store's search accelerators against its exhaustive scorers: pruned BM25 must
/// return exactly the exhaustive top k; the IVF index must find most of the exact top k and
/// forget deleted or re-written entries.
/// </summary>
public sealed class InMemoryIndexTests
{
    private const string Tenant = "t";
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);

    private static MemoryEntry Entry(string id, string content, string? context = null, string type = MemoryTypes.LongTerm) =>
        new(id, Tenant, null, context, null, type, content, new Dictionary<string, string>(), [], T0, T0, 0, null);

    private static string[] Vocabulary(int size) => Enumerable.Range(0, size).Select(i => "w" + i.ToString("x", System.Globalization.CultureInfo.InvariantCulture)).ToArray();

    // Zipf-like: word i with probability ~ 1/(i+1).
    private static string Word(Random random, string[] vocabulary) =>
        vocabulary[Math.Min(vocabulary.Length - 1, (int)Math.Floor(Math.Pow(vocabulary.Length + 1, random.NextDouble())) - 1)];

    private static string Sentence(Random random, string[] vocabulary, int min, int max) =>
        string.Join(' ', Enumerable.Range(0, random.Next(min, max + 1)).Select(_ => Word(random, vocabulary)));

    // Equal up to the order of equal scores: same scores in the same order, and the same ids for
    // every score above the last one (which entries fill a tie at the cut is unspecified).
    private static void ShouldMatchTopK(IReadOnlyList<ScoredId> actual, IReadOnlyList<ScoredId> expected, string because)
    {
        actual.Select(s => s.Score).Should().Equal(expected.Select(s => s.Score), because);
        if (expected.Count == 0)
        {
            return;
        }
        var cut = expected[^1].Score;
        actual.Where(s => s.Score > cut).Select(s => s.Id).Should().Equal(expected.Where(s => s.Score > cut).Select(s => s.Id), because);
    }

    [Fact]
    public async Task Pruned_bm25_returns_the_exhaustive_top_k_on_a_random_corpus()
    {
        var random = new Random(7);
        var vocabulary = Vocabulary(300);
        var store = new InMemoryMemoryStore();
        for (var i = 0; i < 4000; i++)
        {
            var type = i % 3 == 0 ? MemoryTypes.Semantic : MemoryTypes.LongTerm;
            await store.UpsertAsync(Entry($"e{i}", Sentence(random, vocabulary, 1, 30), $"c{i % 7}", type), $"h{i}");
        }
        // Deletions and rewrites leave stale (still valid) bounds behind.
        for (var i = 0; i < 400; i++)
        {
            await store.DeleteAsync(Tenant, $"e{random.Next(4000)}");
            var id = $"e{random.Next(4000)}";
            await store.UpsertAsync(Entry(id, Sentence(random, vocabulary, 1, 30)), $"r{i}");
        }

        var typeFilter = new MemoryFilter(Types: [MemoryTypes.Semantic]);
        var compared = 0;
        for (var q = 0; q < 300; q++)
        {
            var query = Sentence(random, vocabulary, 1, 8);
            var k = new[] { 1, 3, 10, 50 }[q % 4];
            var filter = q % 5 == 0 ? typeFilter : MemoryFilter.None;
            var pruned = await store.SearchLexicalAsync(Tenant, query, filter, k, T0);
            var exact = store.SearchLexicalExact(Tenant, query, filter, k, T0);
            ShouldMatchTopK(pruned, exact, $"query '{query}', k {k}");
            compared += exact.Count;
        }
        compared.Should().BeGreaterThan(1000);
    }

    [Fact]
    public async Task Lexical_postings_follow_writes_deletions_and_rewrites_of_thousands_of_entries()
    {
        var random = new Random(11);
        var vocabulary = Enumerable.Range(0, 40).Select(i => $"v{i}").ToArray();
        var store = new InMemoryMemoryStore { IndexOptions = new InMemoryIndexOptions { LexicalStemming = false } };
        var live = new Dictionary<string, string>();
        async Task PutAsync(string id)
        {
            var content = Sentence(random, vocabulary, 1, 12);
            await store.UpsertManyAsync([(Entry(id, content), content)], awaitEmbedding: true);
            live[id] = content;
        }
        for (var i = 0; i < 5000; i++)
        {
            await PutAsync($"e{i}");
        }
        // Common words are in thousands of entries (more than one chunk of a posting tier, with tf 1 and tf ≥ 2).
        for (var i = 0; i < 3000; i++)
        {
            var id = $"e{random.Next(5000)}";
            if (i % 2 == 0)
            {
                await store.DeleteAsync(Tenant, id);
                live.Remove(id);
            }
            else
            {
                await PutAsync(id);
            }
        }

        foreach (var word in vocabulary)
        {
            var expected = live.Where(e => e.Value.Split(' ').Contains(word)).Select(e => e.Key).Order(StringComparer.Ordinal).ToList();
            var found = store.SearchLexicalExact(Tenant, word, MemoryFilter.None, 10_000, T0).Select(h => h.Id).Order(StringComparer.Ordinal).ToList();
            found.Should().Equal(expected, $"the entries holding '{word}'");
        }
        live.Values.Count(c => c.Split(' ').Contains(vocabulary[0])).Should().BeGreaterThan(2048, "the test must span several chunks");
    }

    [Fact]
    public async Task Approximate_vector_search_finds_most_of_the_exact_top_10()
    {
        var random = new Random(11);
        var store = new InMemoryMemoryStore(new InMemoryIndexOptions { ApproximateThreshold = 1000, Lists = 32, Probes = 8, MinRecall = 0, AuditEvery = 0 });
        var centers = Enumerable.Range(0, 40).Select(_ => RandomUnit(random, 64, null, 0)).ToArray();
        for (var i = 0; i < 3000; i++)
        {
            await PutVectorAsync(store, $"v{i}", RandomUnit(random, 64, centers[random.Next(centers.Length)], 0.6f), $"c{i % 10}");
        }
        store.VectorIndexStats(Tenant).Vectors.Should().Be(3000, "the index is built past the threshold and kept up to date");
        store.VectorIndexStats(Tenant).Probes.Should().Be(8);
        store.VectorIndexStats(Tenant).Sparse.Should().BeFalse();

        var hits = 0;
        for (var q = 0; q < 50; q++)
        {
            var query = RandomUnit(random, 64, centers[random.Next(centers.Length)], 0.6f);
            var approximate = await store.SearchVectorAsync(Tenant, query, MemoryFilter.None, 10, T0);
            var exact = store.SearchVectorExact(Tenant, query, MemoryFilter.None, 10, T0);
            hits += approximate.Select(s => s.Id).Intersect(exact.Select(s => s.Id)).Count();
            // Candidates are re-scored with the float vectors: scores are exact cosines.
            foreach (var hit in approximate.Where(h => exact.Any(e => e.Id == h.Id)))
            {
                hit.Score.Should().Be(exact.First(e => e.Id == hit.Id).Score);
            }
        }
        (hits / 500.0).Should().BeGreaterThan(0.9);

        // A context filter stays exact.
        var contextQuery = RandomUnit(random, 64, centers[0], 0.6f);
        var inContext = new MemoryFilter(ContextId: "c3");
        ShouldMatchTopK(await store.SearchVectorAsync(Tenant, contextQuery, inContext, 10, T0), store.SearchVectorExact(Tenant, contextQuery, inContext, 10, T0), "context search");
    }

    [Fact]
    public async Task Probing_every_list_equals_exact_search()
    {
        var random = new Random(5);
        var store = new InMemoryMemoryStore(new InMemoryIndexOptions { ApproximateThreshold = 200, Lists = 8, Probes = 8, RerankFactor = 20 });
        for (var i = 0; i < 800; i++)
        {
            await PutVectorAsync(store, $"v{i}", RandomUnit(random, 32, null, 0), null);
        }
        for (var q = 0; q < 20; q++)
        {
            var query = RandomUnit(random, 32, null, 0);
            ShouldMatchTopK(await store.SearchVectorAsync(Tenant, query, MemoryFilter.None, 5, T0), store.SearchVectorExact(Tenant, query, MemoryFilter.None, 5, T0), $"query {q}");
        }
    }

    [Fact]
    public async Task Deleted_and_rewritten_entries_leave_the_vector_index()
    {
        var random = new Random(3);
        var store = new InMemoryMemoryStore(new InMemoryIndexOptions { ApproximateThreshold = 100, Lists = 8, Probes = 8 });
        var vectors = new Dictionary<string, float[]>();
        for (var i = 0; i < 400; i++)
        {
            vectors[$"v{i}"] = RandomUnit(random, 32, null, 0);
            await PutVectorAsync(store, $"v{i}", vectors[$"v{i}"], $"c{i % 4}");
        }
        store.VectorIndexStats(Tenant).Vectors.Should().Be(400);

        // Each entry is its own nearest neighbour; once deleted it must not come back.
        for (var i = 0; i < 100; i++)
        {
            (await store.DeleteAsync(Tenant, $"v{i}")).Should().BeTrue();
        }
        // New content drops the vector until the new embedding arrives.
        for (var i = 100; i < 150; i++)
        {
            await store.UpsertAsync(Entry($"v{i}", "changed", $"c{i % 4}"), $"changed-{i}");
        }
        // Same content moved to another context keeps its vector (moved, indexed once).
        for (var i = 150; i < 200; i++)
        {
            await store.UpsertAsync(Entry($"v{i}", "content", "elsewhere"), $"hash-v{i}");
        }
        store.VectorIndexStats(Tenant).Vectors.Should().Be(250);

        for (var i = 0; i < 200; i++)
        {
            var found = await store.SearchVectorAsync(Tenant, vectors[$"v{i}"], MemoryFilter.None, 3, T0);
            if (i < 150)
            {
                found.Should().NotContain(s => s.Id == $"v{i}");
            }
            else
            {
                found[0].Id.Should().Be($"v{i}");
            }
        }
        for (var i = 200; i < 400; i++)
        {
            (await store.SearchVectorAsync(Tenant, vectors[$"v{i}"], MemoryFilter.None, 1, T0))[0].Id.Should().Be($"v{i}");
        }
    }

    [Fact]
    public async Task Sparse_vectors_are_indexed_sparse_and_survive_deletions_and_compaction()
    {
        var random = new Random(9);
        var vocabulary = Vocabulary(2000);
        var embedder = new LocalHashingEmbedder(256);
        var store = new InMemoryMemoryStore(new InMemoryIndexOptions { ApproximateThreshold = 300, Lists = 8, Probes = 8 });
        var texts = new Dictionary<string, string>();
        for (var i = 0; i < 1200; i++)
        {
            var id = $"s{i}";
            texts[id] = Sentence(random, vocabulary, 5, 14);
            var hash = "hash-" + id;
            await store.UpsertAsync(Entry(id, texts[id], $"c{i % 5}"), hash);
            await store.SetEmbeddingsAsync([new EmbeddingUpdate(Tenant, id, hash, embedder.Embed(texts[id]))]);
        }
        store.VectorIndexStats(Tenant).Sparse.Should().BeTrue("hashing vectors have a few non-zero buckets");

        // Enough deletions that every list compacts its holes at least once.
        for (var i = 0; i < 1200; i += 2)
        {
            await store.DeleteAsync(Tenant, $"s{i}");
        }
        store.VectorIndexStats(Tenant).Vectors.Should().Be(600);

        for (var q = 0; q < 60; q++)
        {
            var query = embedder.Embed(texts[$"s{random.Next(1200)}"]);
            var approximate = await store.SearchVectorAsync(Tenant, query, MemoryFilter.None, 10, T0);
            var deleted = approximate.Select(s => int.Parse(s.Id.AsSpan(1), System.Globalization.CultureInfo.InvariantCulture)).Where(i => i % 2 == 0);
            deleted.Should().BeEmpty();
            // Every list probed: the sparse scan is exact up to rounding, then re-scored exactly.
            ShouldMatchTopK(approximate, store.SearchVectorExact(Tenant, query, MemoryFilter.None, 10, T0), $"query {q}");
        }
        for (var i = 1; i < 1200; i += 2)
        {
            if (i % 50 == 1)
            {
                var self = await store.SearchVectorAsync(Tenant, embedder.Embed(texts[$"s{i}"]), MemoryFilter.None, 1, T0);
                self[0].Score.Should().BeApproximately(1f, 1e-5f);
            }
        }
    }

    [Fact]
    public async Task UpsertMany_past_the_cap_writes_the_entries_before_the_refused_one_and_nothing_of_it()
    {
        var store = new InMemoryMemoryStore { MaxBytes = 40_000 };
        var entries = Enumerable.Range(0, 100)
            .Select(i => Entry($"e{i}", $"entry{i} " + string.Join(' ', Enumerable.Range(0, 100).Select(w => $"w{w}")), context: "c"))
            .Select(e => (e, "h"))
            .ToList();

        var act = () => store.UpsertManyAsync(entries, awaitEmbedding: true);

        (await act.Should().ThrowAsync<CloudMemory.BuildingBlocks.Hosting.ProblemException>()).Which.Status.Should().Be(507);
        store.EstimatedBytes.Should().BeLessThanOrEqualTo(40_000);
        var stored = (await store.ListAsync(Tenant, MemoryFilter.None, 200, T0)).Select(e => e.Id).ToHashSet();
        stored.Should().NotBeEmpty();
        var written = Enumerable.Range(0, 100).TakeWhile(i => stored.Contains($"e{i}")).Count();
        stored.Should().HaveCount(written, "the entries after the refused one are not written either");
        (await store.SearchLexicalAsync(Tenant, $"entry{written}", MemoryFilter.None, 10, T0)).Should().BeEmpty("the refused entry left no term behind");
        (await store.SearchLexicalAsync(Tenant, $"entry{written - 1}", MemoryFilter.None, 10, T0)).Select(h => h.Id).Should().Equal($"e{written - 1}");
        (await store.SearchLexicalAsync(Tenant, "w7", MemoryFilter.None, 200, T0)).Should().HaveCount(written);
    }

    [Fact]
    public void Int8_dot_product_matches_the_scalar_sum()
    {
        var random = new Random(1);
        foreach (var length in new[] { 1, 31, 32, 33, 100, 768 })
        {
            var a = Enumerable.Range(0, length).Select(_ => (sbyte)random.Next(-127, 128)).ToArray();
            var b = Enumerable.Range(0, length).Select(_ => (sbyte)random.Next(-127, 128)).ToArray();
            IvfVectorIndex<Row>.DotInt8(a, b).Should().Be(a.Zip(b, (x, y) => x * y).Sum());
        }
        var vector = RandomUnit(random, 768, null, 0);
        var codes = new sbyte[768];
        var scale = IvfVectorIndex<Row>.Quantize(vector, codes);
        for (var i = 0; i < vector.Length; i++)
        {
            (codes[i] * scale).Should().BeApproximately(vector[i], scale);
        }
    }

    [Fact]
    public async Task Cap_ChargesAPendingEntrysVectorAtAdmission_SoArrivingVectorsNeverExceedIt()
    {
        var embedder = new LocalHashingEmbedder(256);
        var store = new InMemoryMemoryStore { MaxBytes = 256 * 1024, ExpectedVectorDimensions = embedder.Dimensions };
        var admitted = new List<MemoryEntry>();
        ProblemException? refused = null;
        for (var i = 0; i < 10_000 && refused is null; i++)
        {
            var entry = Entry($"e{i}", $"entry {i} about sailing boats, lighthouses and the ferry timetable");
            try
            {
                await store.UpsertAsync(entry, LongTermMemoryService.ContentHash(entry.Content));
                admitted.Add(entry);
            }
            catch (ProblemException e)
            {
                refused = e;
            }
        }
        refused.Should().NotBeNull();
        refused!.Status.Should().Be(507);
        var atAdmission = store.EstimatedBytes;

        await store.SetEmbeddingsAsync(admitted.Select(e => new EmbeddingUpdate(Tenant, e.Id, LongTermMemoryService.ContentHash(e.Content), embedder.Embed(e.Content))).ToList());

        (await store.ListPendingEmbeddingsAsync(100_000)).Should().BeEmpty();
        store.EstimatedBytes.Should().Be(atAdmission, "the vectors were paid for when their entries were admitted");
        store.EstimatedBytes.Should().BeLessThanOrEqualTo(store.MaxBytes);
    }

    [Fact]
    public async Task Cap_KeywordOnlyEntriesReserveNoVector()
    {
        var store = new InMemoryMemoryStore { ExpectedVectorDimensions = 256 };
        var entry = Entry("turn", "we sailed to the lighthouse", type: MemoryTypes.Message);
        var hash = LongTermMemoryService.ContentHash(entry.Content);

        await store.UpsertManyAsync([(entry, hash)], awaitEmbedding: false);
        var keywordOnly = store.EstimatedBytes;
        await store.UpsertManyAsync([(entry with { Content = entry.Content + " again" }, LongTermMemoryService.ContentHash(entry.Content + " again"))], awaitEmbedding: true);

        keywordOnly.Should().Be(InMemoryMemoryStore.CostOf(entry, DistinctTerms(entry.Content)));
        store.EstimatedBytes.Should().Be(InMemoryMemoryStore.CostOf(entry with { Content = entry.Content + " again" }, DistinctTerms(entry.Content + " again")) + (InMemoryMemoryStore.VectorBytesPerDimension * 256));

        static int DistinctTerms(string text) => TextAnalysis.LexicalTerms(text).Distinct(StringComparer.Ordinal).Count();
    }

    private static async Task PutVectorAsync(InMemoryMemoryStore store, string id, float[] vector, string? context)
    {
        var hash = "hash-" + id;
        await store.UpsertAsync(Entry(id, "content", context), hash);
        await store.SetEmbeddingsAsync([new EmbeddingUpdate(Tenant, id, hash, vector)]);
    }

    private static float[] RandomUnit(Random random, int dims, float[]? center, float noise)
    {
        var v = new float[dims];
        for (var i = 0; i < dims; i++)
        {
            var gaussian = (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
            v[i] = center is null ? gaussian : center[i] + (noise * gaussian / MathF.Sqrt(dims));
        }
        TensorPrimitives.Divide(v, TensorPrimitives.Norm(v), v);
        return v;
    }

    internal sealed class Row : IIvfRow
    {
        public int IvfList { get; set; } = -1;

        public int IvfSlot { get; set; } = -1;
    }
}
