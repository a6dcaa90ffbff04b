using CloudMemory.Context.Features.Memories;
using Npgsql;

namespace CloudMemory.Context.Tests.Memories;

/// <summary>The behaviour every <see cref="IMemoryStore"/> must have; run against each implementation.</summary>
public abstract class MemoryStoreBehaviour : IAsyncLifetime
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);
    private readonly LocalHashingEmbedder _embedder = new();
    private readonly string _tenant = "tenant-" + Guid.NewGuid().ToString("N")[..8];

    protected IMemoryStore Store { get; private set; } = null!;

    protected abstract Task<IMemoryStore> CreateStoreAsync();

    /// <summary>A second store over the same storage, as another replica of the service has (in memory: the same store).</summary>
    protected abstract Task<IMemoryStore> CreateReplicaAsync();

    public async Task InitializeAsync()
    {
        Store = await CreateStoreAsync();
        await Store.InitializeAsync();
        await Store.InitializeAsync(); // idempotent
    }

    public virtual Task DisposeAsync() => Task.CompletedTask;

    private MemoryEntry Entry(string id, string content, string? context = "c1", string? trace = null, string? user = null, string type = MemoryTypes.LongTerm, DateTimeOffset? created = null, DateTimeOffset? expires = null, string? tenant = null) =>
        new(id, tenant ?? _tenant, user, context, trace, type, content,
            new Dictionary<string, string> { ["k"] = "v" }, ["tag"], created ?? T0, created ?? T0, 0, expires);

    private async Task PutAsync(MemoryEntry entry, bool embed = true)
    {
        var hash = LongTermMemoryService.ContentHash(entry.Content);
        await Store.UpsertAsync(entry, hash);
        if (embed)
        {
            await Store.SetEmbeddingsAsync([new EmbeddingUpdate(entry.TenantId, entry.Id, hash, _embedder.Embed(entry.Content))]);
        }
    }

    private Task<IReadOnlyList<ScoredId>> VectorAsync(string query, MemoryFilter? filter = null, DateTimeOffset? now = null) =>
        Store.SearchVectorAsync(_tenant, _embedder.Embed(query), filter ?? MemoryFilter.None, 10, now ?? T0);

    private Task<IReadOnlyList<ScoredId>> LexicalAsync(string query, MemoryFilter? filter = null, DateTimeOffset? now = null) =>
        Store.SearchLexicalAsync(_tenant, query, filter ?? MemoryFilter.None, 10, now ?? T0);

    [Fact]
    public async Task ListNeighbours_MessagesOfTheContext_NearestFirstInCreatedOrder()
    {
        // m2 and m2b share an instant: the id (ordinal) breaks the tie.
        await PutAsync(Entry("m1", "one", type: MemoryTypes.Message, created: T0));
        await PutAsync(Entry("m2", "two", type: MemoryTypes.Message, created: T0.AddSeconds(1)));
        await PutAsync(Entry("m2b", "two b", type: MemoryTypes.Message, created: T0.AddSeconds(1)));
        await PutAsync(Entry("m3", "three", type: MemoryTypes.Message, created: T0.AddSeconds(2)));
        await PutAsync(Entry("m4", "four", type: MemoryTypes.Message, created: T0.AddSeconds(3)));
        await PutAsync(Entry("m5", "five", type: MemoryTypes.Message, created: T0.AddSeconds(4), expires: T0.AddSeconds(1)));
        await PutAsync(Entry("note", "not a message", type: MemoryTypes.LongTerm, created: T0.AddSeconds(2)));
        await PutAsync(Entry("other", "other context", context: "c2", type: MemoryTypes.Message, created: T0.AddSeconds(2)));

        var entry = (await Store.GetAsync(_tenant, "m2b", T0))!;
        var n = await Store.ListNeighboursAsync(entry, 2, 2, T0.AddSeconds(10));

        n.Before.Select(e => e.Id).Should().Equal("m2", "m1");
        n.After.Select(e => e.Id).Should().Equal("m3", "m4");
        (await Store.ListNeighboursAsync(entry, 1, 0, T0.AddSeconds(10))).Before.Select(e => e.Id).Should().Equal("m2");
        (await Store.ListNeighboursAsync(entry, 0, 0, T0.AddSeconds(10))).After.Should().BeEmpty();
        (await Store.ListNeighboursAsync(entry with { ContextId = null }, 2, 2, T0)).Before.Should().BeEmpty();
    }

    [Fact]
    public async Task Upsert_NewEntry_RoundTripsEveryField()
    {
        var entry = Entry("a", "the user likes green tea", trace: "tr1", user: "u1", type: MemoryTypes.Preference, expires: T0.AddDays(1));

        (await Store.UpsertAsync(entry, "h1")).Should().BeTrue();
        (await Store.UpsertAsync(entry, "h1")).Should().BeFalse();

        var stored = await Store.GetAsync(_tenant, "a", T0);
        stored.Should().BeEquivalentTo(entry);
    }

    [Fact]
    public async Task Get_OtherTenant_ReturnsNothing()
    {
        await PutAsync(Entry("a", "secret plans for the launch"));

        (await Store.GetAsync("someone-else", "a", T0)).Should().BeNull();
        (await Store.SearchLexicalAsync("someone-else", "launch plans", MemoryFilter.None, 10, T0)).Should().BeEmpty();
        (await Store.SearchVectorAsync("someone-else", _embedder.Embed("launch plans"), MemoryFilter.None, 10, T0)).Should().BeEmpty();
        (await Store.ListAsync("someone-else", MemoryFilter.None, 10, T0)).Should().BeEmpty();
    }

    [Fact]
    public async Task InsertIfAbsent_ExistingId_ReturnsStoredEntry()
    {
        var first = Entry("a", "first version");
        (await Store.InsertIfAbsentAsync(first, "h1", T0)).Should().Be((first, true));

        var (stored, created) = await Store.InsertIfAbsentAsync(Entry("a", "second version"), "h2", T0);

        created.Should().BeFalse();
        stored.Content.Should().Be("first version");
    }

    [Fact]
    public async Task List_ByContextTraceUserAndType_ReturnsOnlyMatchesNewestFirst()
    {
        await PutAsync(Entry("a", "one", context: "c1", trace: "t1", user: "u1", created: T0));
        await PutAsync(Entry("b", "two", context: "c1", trace: "t2", user: "u2", type: MemoryTypes.Episodic, created: T0.AddMinutes(1)));
        await PutAsync(Entry("c", "three", context: "c2", trace: "t1", user: "u1", created: T0.AddMinutes(2)));

        (await Store.ListAsync(_tenant, new MemoryFilter(ContextId: "c1"), 10, T0)).Select(e => e.Id).Should().Equal("b", "a");
        (await Store.ListAsync(_tenant, new MemoryFilter(TraceId: "t1"), 10, T0)).Select(e => e.Id).Should().Equal("c", "a");
        (await Store.ListAsync(_tenant, new MemoryFilter(UserId: "u1"), 10, T0)).Select(e => e.Id).Should().Equal("c", "a");
        (await Store.ListAsync(_tenant, new MemoryFilter(ContextId: "c1", Types: [MemoryTypes.Episodic]), 10, T0)).Select(e => e.Id).Should().Equal("b");
        (await Store.ListAsync(_tenant, MemoryFilter.None, 2, T0)).Should().HaveCount(2);
    }

    [Fact]
    public async Task SearchLexical_MatchingTerms_RanksMoreMatchesFirst()
    {
        await PutAsync(Entry("a", "the deployment pipeline failed on the database migration"));
        await PutAsync(Entry("b", "database backups run nightly"));
        await PutAsync(Entry("c", "lunch is at noon"));

        var hits = await LexicalAsync("database migration failed");

        hits.Select(h => h.Id).Should().StartWith("a").And.Contain("b").And.NotContain("c");
        hits[0].Score.Should().BeGreaterThan(hits[1].Score);
    }

    [Fact]
    public async Task SearchVector_NearestFirst_AndFilters()
    {
        await PutAsync(Entry("a", "customer prefers email notifications in the morning", context: "c1", type: MemoryTypes.Preference, created: T0));
        await PutAsync(Entry("b", "quarterly revenue grew eleven percent", context: "c1", created: T0.AddHours(1)));
        await PutAsync(Entry("c", "customer prefers email notifications", context: "c2", trace: "t9", created: T0.AddHours(2)));

        var all = await VectorAsync("email notifications preference");
        all.Select(h => h.Id).Take(2).Should().BeEquivalentTo(["a", "c"]);
        all[0].Score.Should().BeGreaterThan(0.3);

        (await VectorAsync("email notifications", new MemoryFilter(ContextId: "c1"))).Select(h => h.Id).Should().NotContain("c");
        (await VectorAsync("email notifications", new MemoryFilter(TraceId: "t9"))).Select(h => h.Id).Should().Equal("c");
        (await VectorAsync("email notifications", new MemoryFilter(Types: [MemoryTypes.Preference]))).Select(h => h.Id).Should().Equal("a");
        (await VectorAsync("email notifications", new MemoryFilter(CreatedAfter: T0.AddMinutes(30), CreatedBefore: T0.AddMinutes(90)))).Select(h => h.Id).Should().Equal("b");
    }

    [Fact]
    public async Task Delete_Entry_IsGoneFromEveryIndex()
    {
        await PutAsync(Entry("a", "kubernetes cluster upgrade notes", trace: "t1", user: "u1"));
        await PutAsync(Entry("b", "unrelated gardening tips", trace: "t1", user: "u1"));

        (await Store.DeleteAsync(_tenant, "a")).Should().BeTrue();
        (await Store.DeleteAsync(_tenant, "a")).Should().BeFalse();

        (await Store.GetAsync(_tenant, "a", T0)).Should().BeNull();
        (await LexicalAsync("kubernetes upgrade")).Should().BeEmpty();
        (await VectorAsync("kubernetes cluster upgrade notes")).Select(h => h.Id).Should().NotContain("a");
        (await Store.ListAsync(_tenant, new MemoryFilter(ContextId: "c1"), 10, T0)).Select(e => e.Id).Should().Equal("b");
        (await Store.ListAsync(_tenant, new MemoryFilter(TraceId: "t1"), 10, T0)).Select(e => e.Id).Should().Equal("b");
        (await Store.ListAsync(_tenant, new MemoryFilter(UserId: "u1"), 10, T0)).Select(e => e.Id).Should().Equal("b");
    }

    [Fact]
    public async Task Upsert_ChangedContent_MakesEmbeddingPendingAndReindexes()
    {
        await PutAsync(Entry("a", "sailing boats in the harbour"));

        await Store.UpsertAsync(Entry("a", "mountain hiking trail"), LongTermMemoryService.ContentHash("mountain hiking trail"));

        (await Store.ListPendingEmbeddingsAsync(100)).Select(p => p.Id).Should().Contain("a");
        (await VectorAsync("sailing boats harbour")).Should().BeEmpty();
        (await LexicalAsync("sailing")).Should().BeEmpty();
        (await LexicalAsync("hiking")).Select(h => h.Id).Should().Equal("a");
    }

    [Fact]
    public async Task Upsert_RewrittenContent_KeepsTheTermsItStillHas()
    {
        await PutAsync(Entry("a", "sailing boats in the harbour"));

        await Store.UpsertAsync(Entry("a", "sailing ships, sailing home"), LongTermMemoryService.ContentHash("sailing ships, sailing home"));

        (await LexicalAsync("sailing")).Select(h => h.Id).Should().Equal("a");
        (await LexicalAsync("ships")).Select(h => h.Id).Should().Equal("a");
        (await LexicalAsync("boats harbour")).Should().BeEmpty();
    }

    [Fact]
    public async Task UpsertMany_ManyEntriesOfTwoTenants_EachSearchableInItsTenantOnly()
    {
        var other = _tenant + "-other";
        var entries = Enumerable.Range(0, 150)
            .Select(i => Entry($"m{i}", $"turn {i}: {(i % 2 == 0 ? "lighthouse keeper" : "orchard harvest")} number{i}", tenant: i % 3 == 0 ? other : null))
            .Select(e => (e, LongTermMemoryService.ContentHash(e.Content)))
            .ToList();

        await Store.UpsertManyAsync(entries, awaitEmbedding: true);

        (await Store.GetManyAsync(_tenant, entries.Select(e => e.e.Id).ToList(), T0)).Select(e => e.Id)
            .Should().BeEquivalentTo(entries.Where(e => e.e.TenantId == _tenant).Select(e => e.e.Id));
        (await Store.SearchLexicalAsync(_tenant, "number42", MemoryFilter.None, 10, T0)).Should().BeEmpty("m42 is the other tenant's");
        (await Store.SearchLexicalAsync(other, "number42", MemoryFilter.None, 10, T0)).Select(h => h.Id).Should().Equal("m42");
        (await Store.SearchLexicalAsync(_tenant, "number149", MemoryFilter.None, 10, T0)).Select(h => h.Id).Should().Equal("m149");
        (await Store.SearchLexicalAsync(_tenant, "lighthouse", MemoryFilter.None, 200, T0)).Should().HaveCount(50);
    }

    [Fact]
    public async Task UpsertMany_ReadsBackEveryField_AndAKeyGivenTwiceKeepsItsLastEntry()
    {
        var expiring = Entry("x", "a note that expires", context: null, trace: "tr1", user: "u1", expires: T0.AddDays(2)) with
        {
            Metadata = new Dictionary<string, string> { ["source"] = "turn", ["quote"] = "say \"hi\"" },
            Tags = ["travel", "δ tag", ""],
            AccessCount = 3,
            LastAccessedAt = T0.AddMinutes(5),
        };
        var first = Entry("twice", "the first version");
        var last = Entry("twice", "the second version", context: "c2");

        await Store.UpsertManyAsync([(expiring, "h1"), (first, "h2"), (last, "h3")], awaitEmbedding: false);

        var read = (await Store.GetManyAsync(_tenant, ["x", "twice"], T0)).ToDictionary(e => e.Id);
        read["x"].Should().BeEquivalentTo(expiring);
        read["twice"].Should().BeEquivalentTo(last);
        (await Store.GetManyAsync(_tenant, ["x"], T0.AddDays(3))).Should().BeEmpty("it expired");
    }

    [Fact]
    public async Task GetMany_AnIdGivenTwice_ReturnsItsEntryOnce()
    {
        await PutAsync(Entry("a", "sailing boats in the harbour"));
        await PutAsync(Entry("b", "a lighthouse on the cliff"));

        // A batch of turns may hold a redelivered turn twice; its look-up must not answer it twice.
        (await Store.GetManyAsync(_tenant, ["a", "b", "a", "missing", "a"], T0)).Select(e => e.Id).Should().BeEquivalentTo(["a", "b"]);
    }

    [Fact]
    public async Task Upsert_SameContent_KeepsEmbedding()
    {
        await PutAsync(Entry("a", "sailing boats in the harbour"));

        await Store.UpsertAsync(Entry("a", "sailing boats in the harbour", context: "c2"), LongTermMemoryService.ContentHash("sailing boats in the harbour"));

        (await VectorAsync("sailing boats", new MemoryFilter(ContextId: "c2"))).Select(h => h.Id).Should().Equal("a");
        (await VectorAsync("sailing boats", new MemoryFilter(ContextId: "c1"))).Should().BeEmpty();
    }

    [Fact]
    public async Task UpsertMany_KeywordOnly_IsSearchableByWords_AndNeverPending()
    {
        var turns = new[] { Entry("t1", "we sailed to the lighthouse", type: MemoryTypes.Message), Entry("t2", "the ferry was late", type: MemoryTypes.Message) };
        await Store.UpsertManyAsync(turns.Select(t => (t, LongTermMemoryService.ContentHash(t.Content))).ToList(), awaitEmbedding: false);
        await Store.UpsertManyAsync([(Entry("m1", "pending explicit memory"), LongTermMemoryService.ContentHash("pending explicit memory"))], awaitEmbedding: true);

        var pending = (await Store.ListPendingEmbeddingsAsync(1_000_000)).Where(p => p.TenantId == _tenant).Select(p => p.Id);
        pending.Should().Equal("m1");
        (await LexicalAsync("lighthouse")).Select(h => h.Id).Should().Equal("t1");
        (await VectorAsync("we sailed to the lighthouse")).Should().BeEmpty();

        // Rewritten keyword-only with new content: still not pending, the new words are found.
        await Store.UpsertManyAsync([(Entry("t2", "the ferry left on time", type: MemoryTypes.Message), LongTermMemoryService.ContentHash("the ferry left on time"))], awaitEmbedding: false);
        (await Store.ListPendingEmbeddingsAsync(1_000_000)).Where(p => p.TenantId == _tenant).Select(p => p.Id).Should().Equal("m1");
        (await LexicalAsync("time")).Select(h => h.Id).Should().Equal("t2");
    }

    [Fact]
    public async Task UpsertMany_AfterAnErasure_RefusesTheErasedContextsAndUsersEntriesCreatedUntilThen_FromAnyReplica()
    {
        var other = "tenant-" + Guid.NewGuid().ToString("N")[..8];
        await Store.RecordErasureAsync(_tenant, ["c1"], "u1", T0.AddSeconds(10));
        await Store.RecordErasureAsync(_tenant, ["c1"], null, T0.AddSeconds(5)); // an earlier instant never shortens a record
        var replica = await CreateReplicaAsync(); // e.g. another context replica catching up turns it read before the erasure

        await replica.UpsertManyAsync(
            [.. new[]
            {
                Entry("old-turn", "erased conversation, written before", context: "c1", type: MemoryTypes.Message, created: T0.AddSeconds(10)),
                Entry("new-turn", "same conversation id, written after", context: "c1", type: MemoryTypes.Message, created: T0.AddSeconds(11)),
                Entry("user-turn", "erased user, another conversation", context: "c2", user: "u1", type: MemoryTypes.Message, created: T0.AddSeconds(3)),
                Entry("kept-turn", "another user, another conversation", context: "c2", user: "u2", type: MemoryTypes.Message, created: T0.AddSeconds(3)),
            }.Select(e => (e, LongTermMemoryService.ContentHash(e.Content)))],
            awaitEmbedding: false);
        await replica.UpsertManyAsync([(Entry("theirs", "same ids in another tenant", context: "c1", user: "u1", created: T0, tenant: other), "h")], awaitEmbedding: false);

        (await Store.GetManyAsync(_tenant, ["old-turn", "new-turn", "user-turn", "kept-turn"], T0)).Select(e => e.Id)
            .Should().BeEquivalentTo("new-turn", "kept-turn");
        (await Store.GetAsync(other, "theirs", T0)).Should().NotBeNull("an erasure is the tenant's own");

        // One batch across tenants: each entry is judged by its own tenant's erasures.
        await Store.RecordErasureAsync(other, ["c9"], null, T0.AddSeconds(10));
        await replica.UpsertManyAsync(
            [(Entry("mine-c9", "kept in this tenant", context: "c9", created: T0), "h1"), (Entry("theirs-c9", "erased in the other", context: "c9", created: T0, tenant: other), "h2")],
            awaitEmbedding: false);
        (await Store.GetAsync(_tenant, "mine-c9", T0)).Should().NotBeNull();
        (await Store.GetAsync(other, "theirs-c9", T0)).Should().BeNull();
        (await LexicalAsync("erased")).Should().BeEmpty();
    }

    [Fact]
    public async Task Erasure_RacingWriters_LeavesNothingOfTheConversationBehind()
    {
        // Writers keep rewriting turns of a conversation (created before the erasure) while it is
        // erased: every write either lands before the erasure's record (and is deleted with the rest)
        // or is refused. Several rounds, as the interleavings differ from round to round.
        var replica = await CreateReplicaAsync();
        for (var conversation = 0; conversation < 6; conversation++)
        {
            var context = $"race-{conversation}";
            using var stop = new CancellationTokenSource();
            var writers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
            {
                for (var round = 0; !stop.IsCancellationRequested; round++)
                {
                    await replica.UpsertManyAsync(
                        [.. Enumerable.Range(0, 32).Select(i => Entry($"{context}-w{w}-{round % 4}-{i}", $"turn {i} of writer {w}", context: context, type: MemoryTypes.Message, created: T0))
                            .Select(e => (e, LongTermMemoryService.ContentHash(e.Content)))],
                        awaitEmbedding: false);
                }
            })).ToList();
            await Task.Delay(50);

            await Store.RecordErasureAsync(_tenant, [context], null, T0.AddMinutes(1));
            foreach (var entry in await Store.ListAsync(_tenant, new MemoryFilter(ContextId: context), 10_000, T0))
            {
                await Store.DeleteAsync(_tenant, entry.Id);
            }
            await Task.Delay(50);
            await stop.CancelAsync();
            await Task.WhenAll(writers);

            (await Store.ListAsync(_tenant, new MemoryFilter(ContextId: context), 10_000, T0)).Select(e => e.Id).Should().BeEmpty();
        }
    }

    [Fact]
    public async Task UpsertMany_KeywordOnly_SameContent_KeepsAnEmbedding_NewContent_DropsIt()
    {
        await PutAsync(Entry("t1", "we sailed to the lighthouse", type: MemoryTypes.Message));
        await PutAsync(Entry("t2", "the ferry was late", type: MemoryTypes.Message));

        await Store.UpsertManyAsync(
            [(Entry("t1", "we sailed to the lighthouse", type: MemoryTypes.Message, trace: "tr"), LongTermMemoryService.ContentHash("we sailed to the lighthouse")),
             (Entry("t2", "the ferry left on time", type: MemoryTypes.Message), LongTermMemoryService.ContentHash("the ferry left on time"))],
            awaitEmbedding: false);

        (await VectorAsync("we sailed to the lighthouse")).Select(h => h.Id).Should().Equal("t1");
        (await VectorAsync("the ferry was late")).Select(h => h.Id).Should().NotContain("t2");
        (await Store.ListPendingEmbeddingsAsync(1_000_000)).Where(p => p.TenantId == _tenant).Should().BeEmpty();
        (await Store.GetAsync(_tenant, "t1", T0))!.TraceId.Should().Be("tr");
    }

    [Fact]
    public async Task SetEmbeddings_StaleContentHash_IsIgnored()
    {
        await Store.UpsertAsync(Entry("a", "new content"), "new-hash");

        await Store.SetEmbeddingsAsync([new EmbeddingUpdate(_tenant, "a", "old-hash", _embedder.Embed("new content"))]);

        (await VectorAsync("new content")).Should().BeEmpty();
    }

    [Fact]
    public async Task Expired_Entry_IsInvisible()
    {
        await PutAsync(Entry("a", "temporary note about parking", expires: T0.AddMinutes(5)));

        (await Store.GetAsync(_tenant, "a", T0.AddMinutes(4))).Should().NotBeNull();
        var later = T0.AddMinutes(5);
        (await Store.GetAsync(_tenant, "a", later)).Should().BeNull();
        (await LexicalAsync("parking", now: later)).Should().BeEmpty();
        (await VectorAsync("temporary note about parking", now: later)).Should().BeEmpty();
        (await Store.ListAsync(_tenant, MemoryFilter.None, 10, later)).Should().BeEmpty();
        (await Store.InsertIfAbsentAsync(Entry("a", "reused id"), "h", later)).Created.Should().BeTrue();
    }

    [Fact]
    public async Task Touch_Entries_CountsAccesses()
    {
        await PutAsync(Entry("a", "x"));

        await Store.TouchAsync(_tenant, ["a"], T0.AddHours(1));
        await Store.TouchAsync(_tenant, ["a", "missing"], T0.AddHours(2));

        var entry = await Store.GetAsync(_tenant, "a", T0);
        entry!.AccessCount.Should().Be(2);
        entry.LastAccessedAt.Should().Be(T0.AddHours(2));
    }
}

public sealed class InMemoryMemoryStoreTests : MemoryStoreBehaviour
{
    protected override Task<IMemoryStore> CreateStoreAsync() => Task.FromResult<IMemoryStore>(new InMemoryMemoryStore());

    protected override Task<IMemoryStore> CreateReplicaAsync() => Task.FromResult(Store);
}

public sealed class PostgresMemoryStoreTests : MemoryStoreBehaviour
{
    private NpgsqlDataSource? _dataSource;
    private NpgsqlDataSource? _replica;
    private string? _schema;

    protected override Task<IMemoryStore> CreateStoreAsync()
    {
        _dataSource = NpgsqlDataSource.Create(TestPostgres.ConnectionString);
        _schema = TestPostgres.NewSchema();
        return Task.FromResult<IMemoryStore>(new PostgresMemoryStore(_dataSource, _schema));
    }

    protected override async Task<IMemoryStore> CreateReplicaAsync()
    {
        _replica = NpgsqlDataSource.Create(TestPostgres.ConnectionString);
        var replica = new PostgresMemoryStore(_replica, _schema!);
        await replica.InitializeAsync();
        return replica;
    }

    public override async Task DisposeAsync()
    {
        if (_dataSource is not null)
        {
            await _dataSource.DisposeAsync();
        }
        if (_replica is not null)
        {
            await _replica.DisposeAsync();
        }
    }
}
