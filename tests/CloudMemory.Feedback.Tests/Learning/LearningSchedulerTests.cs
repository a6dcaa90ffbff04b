using System.Text.Json;
using CloudMemory.Contracts.Feedback;
using CloudMemory.Feedback.Tests.Infrastructure;

namespace CloudMemory.Feedback.Tests.Learning;

/// <summary>
/// Scheduled learning cycles: every <c>ScheduleInterval</c> each agent with recent feedback gets a
/// cycle without anyone asking. In memory only: on the shared PostgreSQL test database the
/// scheduler would also visit the agents of the tests running beside it.
/// </summary>
public sealed class LearningSchedulerTests : IDisposable
{
    private readonly FeedbackHostFactory _factory = new(StoreKind.InMemory, new Dictionary<string, string?>
    {
        ["CloudMemory:Feedback:Learning:ScheduleInterval"] = "00:00:01",
    });

    private readonly string _tenant = "t-" + Guid.NewGuid().ToString("N")[..10];

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task Schedule_RunsCyclesForAgentsWithRecentFeedback_OnePerSlot_NoneForOthers()
    {
        var client = _factory.CreateClient();
        for (var i = 0; i < 12; i++)
        {
            var liked = i % 3 == 0;
            (await client.PostJsonAsync("/v1/feedback", new RecordFeedbackRequest(null, new FeedbackTarget("conversation", $"c-{i}"), "agent-s", "user", "rating",
                JsonSerializer.SerializeToElement(liked ? 5 : 2), null, liked ? null : ["way too long"],
                Metrics: new Dictionary<string, double> { ["responseLength"] = liked ? 300 : 1200 }), _tenant)).EnsureSuccessStatusCode();
        }

        LearningCyclePage history = new([]);
        // Until a scheduled cycle finds the trial an earlier one started (the first may run before all feedback is in).
        for (var attempt = 0; attempt < 300 && history.Items is not [{ Decisions: [CycleDecisions.TrialContinues] }, ..]; attempt++)
        {
            await Task.Delay(100);
            history = await (await client.GetAsync("/v1/learning/cycles?agentId=agent-s", _tenant)).ReadAsync<LearningCyclePage>();
        }

        history.Items.Should().HaveCountGreaterThanOrEqualTo(2, "a cycle per one-second slot");
        history.Items.Select(c => c.Id).Should().OnlyHaveUniqueItems().And.OnlyContain(id => id.StartsWith($"learning-{_tenant}-agent-s-s", StringComparison.Ordinal));
        history.Items[0].Decisions.Should().Equal(CycleDecisions.TrialContinues);
        history.Items.Should().ContainSingle(c => c.Decisions.Contains(CycleDecisions.TrialStarted));
        (await (await client.GetAsync("/v1/learning/cycles?agentId=agent-quiet", _tenant)).ReadAsync<LearningCyclePage>()).Items.Should().BeEmpty();
        (await (await client.GetAsync("/v1/learning/cycles", "other-" + _tenant)).ReadAsync<LearningCyclePage>()).Items.Should().BeEmpty();
    }
}
