using CloudMemory.Contracts.Events;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Session.Tests.Infrastructure;

namespace CloudMemory.Session.Tests.Http;

public sealed class CheckpointPolicyTests
{
    [Fact]
    public async Task AutomaticCheckpoints_WhenACheckpointAloneFillsTheWindow_WaitForHalfAWindowOfNewTurns()
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
            var turn = await client.PostJsonAsync("/v1/sessions/tight/turns", new WriteTurnRequest(null, null, $"Turn {i}: the headache is still there today.", "Please keep resting."));
            turn.IsSuccessStatusCode.Should().BeTrue();
            await factory.WhenWorkflowsIdleAsync();
        }

        var checkpoints = factory.EventsOfType(EventTypes.CheckpointCreated).Count;
        checkpoints.Should().BeGreaterThan(1, "the history keeps crossing the threshold");
        checkpoints.Should().BeLessThanOrEqualTo(1 + (20 / 2), "after the first, a checkpoint needs at least recentTurns / 2 = 2 new turns");
    }
}
