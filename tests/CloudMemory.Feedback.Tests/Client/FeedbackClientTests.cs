using System.Net;
using System.Text.Json;
using CloudMemory.Client;
using CloudMemory.Contracts.Feedback;
using CloudMemory.Feedback.Tests.Infrastructure;

namespace CloudMemory.Feedback.Tests.Client;

/// <summary>The .NET client's feedback methods against the embedded host.</summary>
public sealed class FeedbackClientTests : IDisposable
{
    private readonly FeedbackHostFactory _factory = new(StoreKind.InMemory);
    private readonly CloudMemoryClient _client;

    public FeedbackClientTests()
    {
        _client = new CloudMemoryClient(_factory.CreateClient(), new CloudMemoryClientOptions { TenantId = "client-" + Guid.NewGuid().ToString("N")[..8] });
    }

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task Client_RecordsListsAnalyzes_FindsExperiences_AndRunsACycle()
    {
        var request = new RecordFeedbackRequest("fb-c1", new FeedbackTarget("trace", "tr-1"), "agent-c", "user", "rating", JsonSerializer.SerializeToElement(5));
        var recorded = await _client.RecordFeedbackAsync(request);
        var conflict = () => _client.RecordFeedbackAsync(request with { Value = JsonSerializer.SerializeToElement(1) });
        await _client.PutFeedbackConfigAsync(new FeedbackConfig("tone", FeedbackValueTypes.Categorical, Values: ["warm", "cold"]));
        await _client.RecordExperienceAsync(new RecordExperienceRequest("e-1", "agent-c", new TaskContext(Intent: "summarize_report"), new ExecutionResult(true, DurationMs: 900)));

        recorded.Score.Should().Be(1);
        (await conflict.Should().ThrowAsync<CloudMemoryException>()).Which.Code.Should().Be("feedback-id-conflict");
        (await _client.ListFeedbackAsync(agentId: "agent-c")).Items.Should().ContainSingle().Which.Id.Should().Be("fb-c1");
        (await _client.ListFeedbackConfigsAsync()).Items.Should().Contain(c => c.Name == "tone");
        (await _client.AnalyzeFeedbackAsync("agent-c", window: "6h")).Distributions.Should().ContainSingle(d => d.Name == "rating");
        (await _client.SearchExperiencesAsync(new SearchExperiencesRequest(new TaskContext(Intent: "summarize report")))).Items.Should().ContainSingle()
            .Which.LastSuccess!.Id.Should().Be("e-1");
        var cycle = await _client.RunLearningCycleAsync("agent-c", "c-1");
        cycle.Decisions.Should().Equal(CycleDecisions.NoOpportunity);
        (await _client.ListLearningCyclesAsync("agent-c")).Items.Should().ContainSingle().Which.Id.Should().Be(cycle.Id);
        (await _client.GetAgentStrategyAsync("agent-c", "conv-1")).Parameters.Should().BeEmpty();
        (await ((Func<Task>)(() => _client.GetAgentStrategyAsync("bad/agent"))).Should().ThrowAsync<CloudMemoryException>()).Which.Status.Should().NotBe(HttpStatusCode.OK);
        (await ((Func<Task>)(() => _client.ImportTraceFeedbackAsync("no-such-trace"))).Should().ThrowAsync<CloudMemoryException>()).Which.Code.Should().Be("trace-not-found");
    }
}
