using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Events;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Session.Tests.Infrastructure;

namespace CloudMemory.Session.Tests.Http;

public sealed class CheckpointPolicyTests
{
    [Fact]
    public async Task AutomaticCheckpoints_WithTurnsNearHalfTheBudget_EachBringTheHistoryBackUnderTheThreshold()
    {
        using var factory = new CloudMemoryFactory(LogKind.InMemory, new Dictionary<string, string?>
        {
            ["CloudMemory:Memory:ModelContextWindow"] = "60",
            ["CloudMemory:Memory:RecentTurns"] = "4",
        });
        var client = factory.CreateRecordingClient();
        await client.PostJsonAsync("/v1/sessions", new CreateSessionRequest("tight", "u-tight"));

        for (var i = 0; i < 20; i++)
        {
            var before = factory.EventsOfType(EventTypes.CheckpointCreated).Count;
            var turn = await client.PostJsonAsync("/v1/sessions/tight/turns", new WriteTurnRequest(null, null, $"Turn {i}: the headache is still there today.", "Please keep resting."));
            turn.IsSuccessStatusCode.Should().BeTrue();
            await factory.WhenWorkflowsIdleAsync();

            var context = await (await client.PostJsonAsync("/v1/context/query", new MemoryQueryRequest("tight"))).ReadAsync<MemoryContext>();
            context.EstimatedTokens.Should().BeLessThanOrEqualTo(45, $"turn {i}: a crossing is followed by a checkpoint of at most half the budget (0.75 × 60)");
            if (factory.EventsOfType(EventTypes.CheckpointCreated).Count > before)
            {
                context.ShouldCheckpointSummary.Should().BeFalse("the checkpoint brought the ratio back down");
            }
        }
        factory.EventsOfType(EventTypes.CheckpointCreated).Count.Should().BeGreaterThan(1, "the history keeps crossing the threshold");
    }
}
