using CloudMemory.Testing;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Conversations.Log;
using CloudMemory.Conversations.Text;
using CloudMemory.Session.Tests.Infrastructure;
using Npgsql;

namespace CloudMemory.Session.Tests.Log;

/// <summary>One behavioural suite for every IConversationLog implementation, counting with <paramref name="tokenizer"/>.</summary>
public abstract partial class ConversationLogBehaviour(string tokenizer = TokenCounters.O200kBase)
{
    private readonly string _tenant = "t-" + Guid.NewGuid().ToString("N")[..8];

    /// <summary>The counter the log under test is created with.</summary>
    protected ITokenCounter Tokens { get; } = TokenCounters.Create(tokenizer);

    protected abstract Task<IConversationLog> CreateAsync();

    [Fact]
    public async Task AppendTurn_StoresTheTokenizersCountOfTheRenderedTurn()
    {
        var log = await CreateAsync();
        var turn = new TurnAppend("c1", null, "u1", "agent", "我头痛三天了，还有点发烧 — what should I take?", "Rest, fluids; paracetamol 500 mg.");

        var result = await log.AppendTurnAsync(_tenant, turn);

        (result.Message.Tokens * (long)TokenEstimator.UnitsPerToken).Should().BeInRange(Tokens.Units(turn.Render()), Tokens.Units(turn.Render()) + TokenEstimator.UnitsPerToken - 1);
        result.Stats.UnitsSinceCheckpoint.Should().Be(Tokens.Units(turn.Render()));
    }

    private static TurnAppend Turn(string conversation, int i, string? turnId = null) =>
        new(conversation, turnId, "u1", "agent", $"question {i} 头痛{i}天", $"answer {i}");

    [Fact]
    public async Task AppendTurn_AssignsIncreasingSequencesAndCounts()
    {
        var log = await CreateAsync();
        var first = await log.AppendTurnAsync(_tenant, Turn("c1", 1));
        var second = await log.AppendTurnAsync(_tenant, Turn("c1", 2));

        second.Message.Sequence.Should().Be(first.Message.Sequence + 1);
        second.Stats.TurnCount.Should().Be(2);
        second.Stats.MessagesSinceCheckpoint.Should().Be(2);
        second.Stats.LastAnswer.Should().Be("answer 2");
        (await log.ReadAsync(_tenant, "c1", 0, 10)).Select(m => m.Query).Should().Equal("question 1 头痛1天", "question 2 头痛2天");
    }

    [Fact]
    public async Task AppendTurn_SameTurnId_IsStoredOnce()
    {
        var log = await CreateAsync();
        var first = await log.AppendTurnAsync(_tenant, Turn("c1", 1, "turn-a"));
        var retry = await log.AppendTurnAsync(_tenant, Turn("c1", 1, "turn-a"));

        retry.Duplicate.Should().BeTrue();
        retry.Message.MessageId.Should().Be(first.Message.MessageId);
        retry.Stats.TurnCount.Should().Be(1);
        (await log.ReadAsync(_tenant, "c1", 0, 10)).Should().HaveCount(1);
    }

    [Fact]
    public async Task RunningUnits_EqualARecountOfTheRenderedHistory_AcrossCheckpoints()
    {
        var log = await CreateAsync();
        for (var i = 0; i < 5; i++)
        {
            await log.AppendTurnAsync(_tenant, Turn("c1", i));
        }
        await AssertCountsMatchAsync(log);

        var stats = (await log.GetStatsAsync(_tenant, "c1"))!;
        var checkpoint = await log.AppendCheckpointAsync(_tenant, new CheckpointAppend("c1", "cp-1", "", stats.LastSequence, "summary one", 2, "[summary] summary one\nuser: q\nassistant: a", false));
        checkpoint.Should().NotBeNull();
        await AssertCountsMatchAsync(log);

        await log.AppendTurnAsync(_tenant, Turn("c1", 6));
        await log.AppendTurnAsync(_tenant, Turn("c1", 7));
        await AssertCountsMatchAsync(log);
    }

    [Fact]
    public async Task ReadSinceCheckpoint_ReturnsTheCheckpointThenOnlyLaterTurns()
    {
        var log = await CreateAsync();
        for (var i = 1; i <= 3; i++)
        {
            await log.AppendTurnAsync(_tenant, Turn("c1", i));
        }
        var stats = (await log.GetStatsAsync(_tenant, "c1"))!;
        await log.AppendCheckpointAsync(_tenant, new CheckpointAppend("c1", "cp-1", "", stats.LastSequence, "s1", 8, "[summary] s1", false));
        await log.AppendTurnAsync(_tenant, Turn("c1", 4));

        var since = (await log.ReadSinceCheckpointAsync(_tenant, "c1")).Messages;

        since.Select(m => m.IsCheckpoint ? "cp" : m.Query).Should().Equal("cp", "question 4 头痛4天");
        since[0].Query.Should().Be("[MEMORY_CHECKPOINT]");
    }

    [Fact]
    public async Task Checkpoint_CoveringLessThanTheLog_KeepsTheUncoveredTurnsAfterIt()
    {
        var log = await CreateAsync();
        for (var i = 1; i <= 3; i++)
        {
            await log.AppendTurnAsync(_tenant, Turn("c1", i));
        }
        // The summary was made when only two turns existed; turn 3 landed before it was applied.
        await log.AppendCheckpointAsync(_tenant, new CheckpointAppend("c1", "cp-1", "", 2, "s1", 8, "[summary] s1", false));

        var since = (await log.ReadSinceCheckpointAsync(_tenant, "c1")).Messages;

        since.Select(m => m.IsCheckpoint ? "cp" : m.Query).Should().Equal("cp", "question 3 头痛3天");
        await AssertCountsMatchAsync(log);
    }

    [Fact]
    public async Task Checkpoint_WithStalePreviousCheckpoint_IsRefusedAndChangesNothing()
    {
        var log = await CreateAsync();
        await log.AppendTurnAsync(_tenant, Turn("c1", 1));
        await log.AppendCheckpointAsync(_tenant, new CheckpointAppend("c1", "cp-1", "", 1, "s1", 8, "[summary] s1", false));
        var before = await log.GetStatsAsync(_tenant, "c1");

        var stale = await log.AppendCheckpointAsync(_tenant, new CheckpointAppend("c1", "cp-2", "", 1, "s2", 8, "[summary] s2", false));

        stale.Should().BeNull();
        (await log.GetStatsAsync(_tenant, "c1")).Should().Be(before);
    }

    [Fact]
    public async Task AppendTurn_AnswersTheCounts_WithoutTheSummaryOrTheSessionState()
    {
        var log = await CreateAsync();
        await log.AppendTurnAsync(_tenant, Turn("c1", 1));
        await log.AppendCheckpointAsync(_tenant, new CheckpointAppend("c1", "cp-1", "", 1, "the patient has had a headache for three days", 8, "[summary] headache", false));
        await log.SaveSessionStateAsync(_tenant, "c1", """{"globalState":{}}""", 5);

        var next = await log.AppendTurnAsync(_tenant, Turn("c1", 2, "turn-b"));
        var retry = await log.AppendTurnAsync(_tenant, Turn("c1", 2, "turn-b"));

        var stats = (await log.GetStatsAsync(_tenant, "c1"))!;
        stats.Summary.Should().Be("the patient has had a headache for three days");
        stats.SessionState.Should().NotBeNull();
        next.Stats.Should().Be(stats with { Summary = "", SessionState = null }, "an append answers every count, and neither text");
        retry.Duplicate.Should().BeTrue();
        retry.Stats.Should().Be(next.Stats);
    }

    [Fact]
    public async Task Checkpoint_SameMessageIdTwice_WritesOneCheckpoint()
    {
        var log = await CreateAsync();
        await log.AppendTurnAsync(_tenant, Turn("c1", 1));
        var first = await log.AppendCheckpointAsync(_tenant, new CheckpointAppend("c1", "cp-1", "", 1, "s1", 8, "[summary] s1", false));
        var again = await log.AppendCheckpointAsync(_tenant, new CheckpointAppend("c1", "cp-1", "", 1, "s1", 8, "[summary] s1", false));

        again!.Duplicate.Should().BeTrue();
        again.Stats.CheckpointCount.Should().Be(1);
        first!.Stats.CheckpointMessageId.Should().Be("cp-1");
        (await log.ReadAsync(_tenant, "c1", 0, 10)).Count(m => m.IsCheckpoint).Should().Be(1);
    }

    [Fact]
    public async Task Tenants_NeverSeeEachOthersConversations()
    {
        var log = await CreateAsync();
        var other = _tenant + "-other";
        await log.AppendTurnAsync(_tenant, Turn("shared-id", 1));

        (await log.GetStatsAsync(other, "shared-id")).Should().BeNull();
        (await log.ReadAsync(other, "shared-id", 0, 10)).Should().BeEmpty();
        (await log.ReadSinceCheckpointAsync(other, "shared-id")).Messages.Should().BeEmpty();
    }

    [Fact]
    public async Task ReadLastTurns_ReturnsTheNewestTurnsOldestFirst_WithoutCheckpoints()
    {
        var log = await CreateAsync();
        for (var i = 1; i <= 5; i++)
        {
            await log.AppendTurnAsync(_tenant, Turn("c1", i));
        }
        await log.AppendCheckpointAsync(_tenant, new CheckpointAppend("c1", "cp-1", "", 5, "s", 2, "[summary] s", false));

        (await log.ReadLastTurnsAsync(_tenant, "c1", 2)).Select(m => m.Answer).Should().Equal("answer 4", "answer 5");
    }

    [Fact]
    public async Task UserProfile_RoundTripsPerTenant()
    {
        var log = await CreateAsync();
        await log.SaveUserProfileAsync(_tenant, new UserProfile { UserId = "u1", Name = "Li", Allergies = ["penicillin", "青霉素"] });

        (await log.GetUserProfileAsync(_tenant, "u1"))!.Allergies.Should().Equal("penicillin", "青霉素");
        (await log.GetUserProfileAsync(_tenant + "-other", "u1")).Should().BeNull();
    }

    [Fact]
    public async Task ListUserConversations_NewestActivityFirst_PagedByCursor_OnlyThatUserAndTenant()
    {
        var log = await CreateAsync();
        await log.AppendTurnAsync(_tenant, Turn("c1", 1));
        await log.AppendTurnAsync(_tenant, Turn("c2", 1));
        await log.EnsureConversationAsync(_tenant, "c3", "u1");
        await log.AppendTurnAsync(_tenant, Turn("c1", 2)); // c1 is now the most recent
        await log.AppendTurnAsync(_tenant, new TurnAppend("c-other-user", null, "u2", "agent", "q", "a"));
        await log.AppendTurnAsync(_tenant + "-other", Turn("c-other-tenant", 1));

        var first = await log.ListConversationsAsync(_tenant, new ConversationFilter(UserId: "u1"), null, 2);
        first.Select(c => c.ConversationId).Should().Equal("c1", "c3");
        first[0].TurnCount.Should().Be(2);
        var rest = await log.ListConversationsAsync(_tenant, new ConversationFilter(UserId: "u1"), ConversationCursor.After(first[^1]), 2);
        rest.Select(c => c.ConversationId).Should().Equal("c2");
        (await log.ListConversationsAsync(_tenant, new ConversationFilter(UserId: "u1"), ConversationCursor.After(rest[^1]), 2)).Should().BeEmpty();
        (await log.ListConversationsAsync(_tenant + "-other", new ConversationFilter(UserId: "u1"), null, 10)).Select(c => c.ConversationId).Should().Equal("c-other-tenant");
        (await log.ListConversationsAsync(_tenant, new ConversationFilter(UserId: "nobody"), null, 10)).Should().BeEmpty();
    }

    [Fact]
    public async Task ConversationCursor_RoundTripsThroughItsTextForm()
    {
        var log = await CreateAsync();
        await log.AppendTurnAsync(_tenant, Turn("c/1 头", 1));
        var stats = (await log.ListConversationsAsync(_tenant, new ConversationFilter(UserId: "u1"), null, 1)).Single();

        var cursor = ConversationCursor.TryDecode(ConversationCursor.After(stats).Encode());

        cursor.Should().Be(ConversationCursor.After(stats));
        (await log.ListConversationsAsync(_tenant, new ConversationFilter(UserId: "u1"), cursor, 10)).Should().BeEmpty();
        ConversationCursor.TryDecode("not a cursor!").Should().BeNull();
    }

    [Fact]
    public async Task DeleteConversation_RemovesCountsMessagesCheckpointsAndTurnIds_AndOnlyThatConversation()
    {
        var log = await CreateAsync();
        await log.AppendTurnAsync(_tenant, Turn("c1", 1, "turn-a"));
        await log.AppendTurnAsync(_tenant, Turn("c1", 2));
        await log.AppendCheckpointAsync(_tenant, new CheckpointAppend("c1", "cp-1", "", 2, "s", 1, "[summary] s", false));
        await log.SaveSessionStateAsync(_tenant, "c1", """{"globalState":{}}""", 5);
        await log.AppendTurnAsync(_tenant, Turn("c2", 1));
        await log.AppendTurnAsync(_tenant + "-other", Turn("c1", 1));

        var deleted = await log.DeleteConversationAsync(_tenant, "c1");

        deleted.Should().Be(new ConversationDeletion("u1", 3, 1));
        (await log.GetStatsAsync(_tenant, "c1")).Should().BeNull();
        (await log.ReadAsync(_tenant, "c1", 0, 10)).Should().BeEmpty();
        (await log.ReadSinceCheckpointAsync(_tenant, "c1")).Stats.Should().BeNull();
        (await log.ListConversationsAsync(_tenant, new ConversationFilter(UserId: "u1"), null, 10)).Select(c => c.ConversationId).Should().Equal("c2");
        (await log.DeleteConversationAsync(_tenant, "c1")).Should().BeNull("a second delete finds nothing");
        (await log.GetStatsAsync(_tenant, "c2")).Should().NotBeNull();
        (await log.GetStatsAsync(_tenant + "-other", "c1")).Should().NotBeNull("another tenant's conversation of the same id stays");

        // The id starts afresh: the old turn id is forgotten, sequences restart, nothing old comes back.
        var again = await log.AppendTurnAsync(_tenant, Turn("c1", 9, "turn-a"));
        again.Duplicate.Should().BeFalse();
        again.Stats.TurnCount.Should().Be(1);
        (await log.GetStatsAsync(_tenant, "c1"))!.SessionState.Should().BeNull();
        (await log.ReadAsync(_tenant, "c1", 0, 10)).Select(m => m.Query).Should().Equal("question 9 头痛9天");
    }

    [Fact]
    public async Task DeleteUserProfile_RemovesOnlyThatUsersProfile()
    {
        var log = await CreateAsync();
        await log.SaveUserProfileAsync(_tenant, new UserProfile { UserId = "u1", Allergies = ["penicillin"] });
        await log.SaveUserProfileAsync(_tenant, new UserProfile { UserId = "u2" });

        (await log.DeleteUserProfileAsync(_tenant, "u1")).Should().BeTrue();
        (await log.DeleteUserProfileAsync(_tenant, "u1")).Should().BeFalse();
        (await log.GetUserProfileAsync(_tenant, "u1")).Should().BeNull();
        (await log.GetUserProfileAsync(_tenant, "u2")).Should().NotBeNull();
    }

    private async Task AssertCountsMatchAsync(IConversationLog log)
    {
        var stats = (await log.GetStatsAsync(_tenant, "c1"))!;
        var segment = await log.ReadSinceCheckpointAsync(_tenant, "c1");
        segment.Stats.Should().Be(stats);
        segment.CountsMatchRows.Should().BeTrue();
        stats.HistoryUnits.Should().Be(Tokens.JoinedUnits(segment.Messages.Select(ConversationText.Render)), "the running total equals a full recount");
        if (Tokens == TokenCounters.Estimator)
        {
            stats.HistoryUnits.Should().Be(TokenEstimator.Units(ConversationText.RenderHistory(segment.Messages)), "the estimator is additive over the joined text");
        }
    }
}

public sealed class InMemoryConversationLogTests : ConversationLogBehaviour
{
    protected override Task<IConversationLog> CreateAsync() => Task.FromResult<IConversationLog>(new InMemoryConversationLog(TimeProvider.System, tokens: Tokens));
}

public sealed class InMemoryEstimatedConversationLogTests() : ConversationLogBehaviour(TokenCounters.Estimate)
{
    protected override Task<IConversationLog> CreateAsync() => Task.FromResult<IConversationLog>(new InMemoryConversationLog(TimeProvider.System, tokens: Tokens));
}

public abstract class PostgresConversationLogBehaviour(string tokenizer) : ConversationLogBehaviour(tokenizer)
{
    private static readonly Lazy<NpgsqlDataSource> DataSource = new(() => NpgsqlDataSource.Create(PostgresTestServer.ConnectionString));

    protected override async Task<IConversationLog> CreateAsync()
    {
        var log = new PostgresConversationLog(DataSource.Value, TimeProvider.System, Tokens);
        await log.MigrateAsync();
        return log;
    }
}

public sealed class PostgresConversationLogTests() : PostgresConversationLogBehaviour(TokenCounters.O200kBase);

public sealed class PostgresCl100kConversationLogTests() : PostgresConversationLogBehaviour(TokenCounters.Cl100kBase);

public sealed class PostgresEstimatedConversationLogTests() : PostgresConversationLogBehaviour(TokenCounters.Estimate);

/// <summary>The state-store log (Dapr mode without PostgreSQL) over the in-process state store; the Dapr test project runs it over the fake sidecar.</summary>
public sealed class StateStoreConversationLogTests : ConversationLogBehaviour
{
    protected override Task<IConversationLog> CreateAsync() =>
        Task.FromResult<IConversationLog>(new StateStoreConversationLog(new CloudMemory.BuildingBlocks.Embedded.InMemoryStateStore(TimeProvider.System), TimeProvider.System, Tokens));
}
