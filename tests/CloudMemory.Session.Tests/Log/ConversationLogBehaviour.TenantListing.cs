using CloudMemory.Conversations.Log;

namespace CloudMemory.Session.Tests.Log;

/// <summary>The tenant-wide listing (<c>GET /v1/sessions</c>) on every log implementation.</summary>
public abstract partial class ConversationLogBehaviour
{
    private static TurnAppend TurnOf(string conversation, string user) => new(conversation, null, user, "agent", "q " + conversation, "a " + conversation);

    [Fact]
    public async Task ListConversations_WholeTenant_NewestActivityFirst_PagedByCursor_NeverAnotherTenant()
    {
        var log = await CreateAsync();
        await log.AppendTurnAsync(_tenant, TurnOf("a", "u1"));
        await log.AppendTurnAsync(_tenant, TurnOf("b", "u2"));
        await log.EnsureConversationAsync(_tenant, "c", "");
        await log.AppendTurnAsync(_tenant, TurnOf("a", "u1")); // a is now the most recent
        await log.AppendTurnAsync(_tenant + "-other", TurnOf("z", "u1"));

        var all = await log.ListConversationsAsync(_tenant, new ConversationFilter(), null, 10);
        all.Select(c => c.ConversationId).Should().Equal("a", "c", "b");
        all[0].TurnCount.Should().Be(2);
        all[1].UserId.Should().BeEmpty("a conversation registered without a user is listed too");

        var first = await log.ListConversationsAsync(_tenant, new ConversationFilter(), null, 2);
        first.Select(c => c.ConversationId).Should().Equal("a", "c");
        var rest = await log.ListConversationsAsync(_tenant, new ConversationFilter(), ConversationCursor.After(first[^1]), 2);
        rest.Select(c => c.ConversationId).Should().Equal("b");
        (await log.ListConversationsAsync(_tenant, new ConversationFilter(), ConversationCursor.After(rest[^1]), 2)).Should().BeEmpty();

        (await log.ListConversationsAsync(_tenant + "-other", new ConversationFilter(), null, 10)).Select(c => c.ConversationId).Should().Equal("z");
        (await log.ListConversationsAsync(_tenant + "-none", new ConversationFilter(), null, 10)).Should().BeEmpty();
    }

    [Fact]
    public async Task ListConversations_FiltersByUserModeAndLastActivity()
    {
        var log = await CreateAsync();
        await log.AppendTurnAsync(_tenant, TurnOf("old", "u1"));
        await Task.Delay(20);
        var boundary = DateTimeOffset.UtcNow;
        await Task.Delay(20);
        await log.AppendTurnAsync(_tenant, TurnOf("summarized", "u1"));
        await log.AppendCheckpointAsync(_tenant, new CheckpointAppend("summarized", "cp-1", "", 1, "s", 1, "[summary] s", false));
        await log.AppendTurnAsync(_tenant, TurnOf("fresh", "u2"));

        async Task<string[]> Ids(ConversationFilter filter) =>
            (await log.ListConversationsAsync(_tenant, filter, null, 10)).Select(c => c.ConversationId).ToArray();

        (await Ids(new ConversationFilter(UserId: "u1"))).Should().Equal("summarized", "old");
        (await Ids(new ConversationFilter(UserId: "nobody"))).Should().BeEmpty();
        (await Ids(new ConversationFilter(Checkpointed: true))).Should().Equal("summarized");
        (await Ids(new ConversationFilter(Checkpointed: false))).Should().Equal("fresh", "old");
        (await Ids(new ConversationFilter(ActiveSince: boundary))).Should().Equal("fresh", "summarized");
        (await Ids(new ConversationFilter(ActiveBefore: boundary))).Should().Equal("old");
        (await Ids(new ConversationFilter(UserId: "u1", Checkpointed: false, ActiveBefore: boundary))).Should().Equal("old");
        (await Ids(new ConversationFilter(UserId: "u2", Checkpointed: true))).Should().BeEmpty();

        // Paging under a filter walks only the matching conversations.
        var page = await log.ListConversationsAsync(_tenant, new ConversationFilter(Checkpointed: false), null, 1);
        page.Select(c => c.ConversationId).Should().Equal("fresh");
        (await log.ListConversationsAsync(_tenant, new ConversationFilter(Checkpointed: false), ConversationCursor.After(page[0]), 1))
            .Select(c => c.ConversationId).Should().Equal("old");
    }

    [Fact]
    public async Task ListConversations_ADeletedConversationIsGone_AndComesBackOnlyWhenWrittenAgain()
    {
        var log = await CreateAsync();
        await log.AppendTurnAsync(_tenant, TurnOf("a", "u1"));
        await log.AppendTurnAsync(_tenant, TurnOf("b", "u1"));

        await log.DeleteConversationAsync(_tenant, "a");

        (await log.ListConversationsAsync(_tenant, new ConversationFilter(), null, 10)).Select(c => c.ConversationId).Should().Equal("b");
        await log.DeleteConversationAsync(_tenant, "b");
        (await log.ListConversationsAsync(_tenant, new ConversationFilter(), null, 10)).Should().BeEmpty();

        await log.AppendTurnAsync(_tenant, TurnOf("a", "u3"));
        var again = await log.ListConversationsAsync(_tenant, new ConversationFilter(), null, 10);
        again.Select(c => (c.ConversationId, c.UserId, c.TurnCount)).Should().Equal(("a", "u3", 1));
    }
}
