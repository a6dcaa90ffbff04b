using CloudMemory.BuildingBlocks.Workflows;
using CloudMemory.Context.Features.Memories;
using CloudMemory.Context.Features.Memories.Activities;
using CloudMemory.Context.Features.Memories.Workflows;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.Context.Tests.Memories;

/// <summary>Consolidation end to end on the embedded workflow runner; in memory and on PostgreSQL.</summary>
public abstract class ConsolidationBehaviour : IAsyncLifetime
{
    private static readonly ConsolidationInput Input = new(
        "acme",
        "conv-old",
        "user-7",
        "The user planned a trip to Lisbon and booked a hotel near the river. The user prefers window seats on flights.",
        ["user: I prefer vegetarian food when travelling.", "agent: Noted, I will look for vegetarian restaurants in Lisbon."],
        Final: true);

    private MemoryApp _app = null!;

    protected abstract string? ConnectionString { get; }

    public async Task InitializeAsync() => _app = await MemoryApp.StartAsync(ConnectionString);

    public async Task DisposeAsync() => await _app.DisposeAsync();

    private async Task<WorkflowState> ConsolidateAsync(string instanceId)
    {
        var workflows = _app.Services.GetRequiredService<IWorkflowClient>();
        await workflows.ScheduleNewWorkflowAsync(nameof(ConsolidateConversationWorkflow), instanceId, Input);
        return await workflows.WaitForWorkflowCompletionAsync(instanceId);
    }

    [Fact]
    public async Task Consolidate_Conversation_IsFoundFromANewConversationOfTheSameUser()
    {
        var state = await ConsolidateAsync("consolidate-conv-old-1");
        state.RuntimeStatus.Should().Be(WorkflowRuntimeStatus.Completed, state.FailureMessage);
        await _app.EmbeddedAsync();

        var memory = _app.Services.GetRequiredService<ILongTermMemory>();
        // A new conversation knows only the user: no contextId filter.
        var result = await memory.SearchAsync("acme", new MemorySearchRequest("trip to Lisbon hotel", Filters: new MemorySearchFilters(UserId: "user-7")));

        var episode = result.Hits.Should().Contain(h => h.Entry.Type == MemoryTypes.Episodic).Subject;
        episode.Entry.ContextId.Should().Be("conv-old");
        episode.Entry.Tags.Should().Contain("lisbon");
        episode.SemanticScore.Should().BeGreaterThan(0);

        var preferences = await memory.SearchAsync("acme", new MemorySearchRequest("food preferences vegetarian", Filters: new MemorySearchFilters(UserId: "user-7", Types: [MemoryTypes.Preference])));
        preferences.Hits.Select(h => h.Entry.Content).Should().Contain("user: I prefer vegetarian food when travelling.");
        (await memory.SearchAsync("acme", new MemorySearchRequest("Lisbon", Filters: new MemorySearchFilters(UserId: "someone-else")))).Hits.Should().BeEmpty();
    }

    [Fact]
    public async Task Consolidate_RunTwice_DoesNotDuplicateEntries()
    {
        var first = await ConsolidateAsync("consolidate-a");
        var second = await ConsolidateAsync("consolidate-b");

        first.SerializedOutput.Should().Be(second.SerializedOutput);
        var memory = _app.Services.GetRequiredService<ILongTermMemory>();
        var entries = await memory.ListAsync("acme", new MemoryListQuery(UserId: "user-7"));
        entries.Should().HaveCount(3); // the episode and two preferences
        entries.Select(e => e.Id).Should().OnlyHaveUniqueItems();
    }
}

public sealed class InMemoryConsolidationTests : ConsolidationBehaviour
{
    protected override string? ConnectionString => null;
}

public sealed class PostgresConsolidationTests : ConsolidationBehaviour
{
    protected override string? ConnectionString => TestPostgres.ConnectionString;
}

public sealed class ExtractLongTermMemoriesActivityTests
{
    [Fact]
    public void Plan_SameInput_IsDeterministic()
    {
        var input = new ConsolidationInput("t", "c", "u", "We fixed the flaky deployment test. I like short answers.", [], Final: false);

        var a = ExtractLongTermMemoriesActivity.Plan(input);
        var b = ExtractLongTermMemoriesActivity.Plan(input);

        a.Entries.Select(e => e.Id).Should().Equal(b.Entries.Select(e => e.Id));
        a.Entries.Should().Contain(e => e.Type == MemoryTypes.Preference && e.Content == "I like short answers." && e.ContextId == null && e.UserId == "u");
        a.Entries.Should().Contain(e => e.Type == MemoryTypes.Episodic && e.Tags!.Contains("deployment"));
    }

    [Fact]
    public void Plan_FromATracedCheckpoint_EveryEntryRecordsTheStep_AndAnUntracedOneNone()
    {
        var traced = ExtractLongTermMemoriesActivity.Plan(new ConsolidationInput("t", "c", "u", "We fixed the flaky deployment test. I like short answers.", [], Final: false,
            TraceId: "run-7", StepId: "s3"));
        var untraced = ExtractLongTermMemoriesActivity.Plan(new ConsolidationInput("t", "c", "u", "We fixed the flaky deployment test. I like short answers.", [], Final: false));

        traced.Entries.Should().HaveCount(2).And.OnlyContain(e => e.TraceId == "run-7" && e.Metadata!["traceStepId"] == "s3" && e.Metadata["source"] == "consolidation");
        untraced.Entries.Should().OnlyContain(e => e.TraceId == null && !e.Metadata!.ContainsKey("traceStepId"));
        traced.Entries.Select(e => e.Id).Should().Equal(untraced.Entries.Select(e => e.Id));
    }

    [Fact]
    public void Plan_NoPreferences_WritesOnlyTheEpisode()
    {
        var plan = ExtractLongTermMemoriesActivity.Plan(new ConsolidationInput("t", "c", "u", "Quarterly numbers were reviewed.", [], Final: true));

        plan.Entries.Should().ContainSingle().Which.Type.Should().Be(MemoryTypes.Episodic);
    }
}
