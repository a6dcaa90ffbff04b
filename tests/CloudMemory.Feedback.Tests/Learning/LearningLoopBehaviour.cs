using System.Net;
using System.Text.Json;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Feedback;
using CloudMemory.Feedback.Features.Learning;
using CloudMemory.Feedback.Tests.Infrastructure;

namespace CloudMemory.Feedback.Tests.Learning;

/// <summary>The learning loop over HTTP in the embedded host; one suite on the in-memory stores and on PostgreSQL.</summary>
public abstract class LearningLoopBehaviour : IDisposable
{
    private const string Agent = "agent-l";
    private readonly FeedbackHostFactory _factory;
    private readonly HttpClient _client;
    private readonly string _tenant = "t-" + Guid.NewGuid().ToString("N")[..10];

    protected LearningLoopBehaviour(StoreKind kind)
    {
        _factory = new FeedbackHostFactory(kind, new Dictionary<string, string?>
        {
            ["CloudMemory:Feedback:Learning:MinConversationsPerArm"] = "30",
            ["CloudMemory:Feedback:Learning:ScheduleInterval"] = "00:00:00",
        });
        _client = _factory.CreateRecordingClient();
    }

    public void Dispose()
    {
        _client.Dispose();
        _factory.Dispose();
        GC.SuppressFinalize(this);
    }

    private async Task RateAsync(string conversationId, int rating, int length, params string[] issues) =>
        (await _client.PostJsonAsync("/v1/feedback", new RecordFeedbackRequest(null, new FeedbackTarget("conversation", conversationId), Agent, "user", "rating",
            JsonSerializer.SerializeToElement(rating), null, issues, Metrics: new Dictionary<string, double> { ["responseLength"] = length }), _tenant))
            .EnsureSuccessStatusCode();

    private async Task<LearningCycle> CycleAsync(string? cycleId = null, HttpStatusCode expected = HttpStatusCode.Created)
    {
        _factory.Time.Advance(TimeSpan.FromMinutes(1));
        var response = await _client.PostJsonAsync("/v1/learning/cycles", new RunLearningCycleRequest(Agent, cycleId), _tenant);
        response.StatusCode.Should().Be(expected, await response.Content.ReadAsStringAsync());
        var cycle = await response.ReadAsync<LearningCycle>();
        _factory.Time.Advance(TimeSpan.FromMinutes(1));
        return cycle;
    }

    private async Task<AgentStrategy> StrategyAsync(string? conversationId = null) =>
        await (await _client.GetAsync($"/v1/agents/{Agent}/strategy" + (conversationId is null ? "" : "?conversationId=" + conversationId), _tenant)).ReadAsync<AgentStrategy>();

    /// <summary>Users who find long answers too long: enough feedback for a response_length proposal.</summary>
    private async Task<LearningCycle> StartLengthTrialAsync()
    {
        for (var i = 0; i < 12; i++)
        {
            await RateAsync($"before-{i}", 2, 1200, "way too long");
        }
        for (var i = 0; i < 6; i++)
        {
            await RateAsync($"liked-{i}", 5, 300);
        }
        return await CycleAsync();
    }

    /// <summary>
    /// 120 conversations; in each arm the k-th conversation is satisfied when (k · 0.618) mod 1 is
    /// below the arm's rate, so each arm's satisfied share is its rate whatever the hash assigns.
    /// </summary>
    private async Task RunConversationsAsync(double treatmentSatisfied, double controlSatisfied)
    {
        var seen = new Dictionary<string, int> { [LearningEngine.TreatmentArm] = 0, [LearningEngine.ControlArm] = 0 };
        for (var i = 0; i < 120; i++)
        {
            var id = $"conv-{i}";
            var strategy = await StrategyAsync(id);
            var treated = strategy.Arm == LearningEngine.TreatmentArm;
            var k = seen[strategy.Arm!]++;
            var satisfied = (k * 0.618034 % 1) < (treated ? treatmentSatisfied : controlSatisfied);
            await RateAsync(id, satisfied ? 5 : 2, treated ? (int)strategy.Parameters["maxLength"] : 1200);
        }
    }

    [Fact]
    public async Task Cycle_WithLengthComplaints_StartsATrial_ThatOnlyTreatedConversationsGet()
    {
        var cycle = await StartLengthTrialAsync();

        cycle.Decisions.Should().Equal(CycleDecisions.TrialStarted);
        cycle.Patterns.Should().Contain(p => p.Name == "response_too_long" && p.Detected);
        var strategy = await StrategyAsync();
        strategy.Trial!.Type.Should().Be(StrategyTypes.ResponseLength);
        strategy.Trial.Parameters["maxLength"].Should().Be(300, "the preferred length is the median length of positively rated answers");
        strategy.Trial.Evidence.Evidence.Should().Be(12);
        strategy.Parameters.Should().BeEmpty("nothing is adopted yet");
        var arms = await Task.WhenAll(Enumerable.Range(0, 40).Select(i => StrategyAsync($"c-{i}")));
        arms.Where(a => a.Arm == LearningEngine.TreatmentArm).Should().NotBeEmpty().And.OnlyContain(a => a.Parameters["maxLength"] == 300);
        arms.Where(a => a.Arm == LearningEngine.ControlArm).Should().NotBeEmpty().And.OnlyContain(a => a.Parameters.Count == 0);
        (await StrategyAsync("c-7")).Arm.Should().Be(arms[7].Arm, "assignment is a hash of the conversation id");
        await _factory.WhenQuietAsync();
        _factory.EventsOfType(FeedbackTopics.StrategyChangedType).Should().ContainSingle(e => e.TenantId == _tenant)
            .Which.Data.GetProperty("status").GetString().Should().Be("trial");
    }

    [Fact]
    public async Task Cycle_TreatmentClearlyBetter_AdoptsWithItsNumbers_AndKeepsTheHistory()
    {
        await StartLengthTrialAsync();
        await RunConversationsAsync(treatmentSatisfied: 0.85, controlSatisfied: 0.3);

        var decided = await CycleAsync();

        decided.Decisions.Should().StartWith(CycleDecisions.Adopted);
        var result = decided.Evaluation!;
        result.PValue.Should().BeLessThan(0.05);
        result.Lift.Should().BeGreaterThan(0.3);
        result.LiftLow.Should().BeGreaterThan(0);
        (result.Control.Conversations + result.Treatment.Conversations).Should().Be(120);
        var strategy = await StrategyAsync();
        strategy.Adopted.Should().ContainSingle().Which.Status.Should().Be(StrategyStatuses.Adopted);
        strategy.Parameters["maxLength"].Should().Be(300, "every conversation gets an adopted strategy");
        var history = await (await _client.GetAsync($"/v1/learning/cycles?agentId={Agent}", _tenant)).ReadAsync<LearningCyclePage>();
        history.Items.Select(c => c.Id).Should().HaveCount(2).And.StartWith(decided.Id);
        history.Items[1].TrialStrategyId.Should().Be(strategy.Adopted[0].Id);
    }

    [Fact]
    public async Task Cycle_NoDifference_RollsBack_AndDoesNotProposeTheSameTypeDuringTheCooldown()
    {
        await StartLengthTrialAsync();
        await RunConversationsAsync(treatmentSatisfied: 0.5, controlSatisfied: 0.5);

        var decided = await CycleAsync();
        var next = await CycleAsync();

        decided.Decisions.Should().StartWith(CycleDecisions.Rejected);
        decided.Evaluation!.PValue.Should().BeGreaterThanOrEqualTo(0.05);
        var strategy = await StrategyAsync("conv-1");
        strategy.Parameters.Should().BeEmpty("a rejected trial is rolled back for everyone");
        strategy.Trial.Should().BeNull();
        strategy.Arm.Should().BeNull();
        next.Decisions.Should().Equal(CycleDecisions.NoOpportunity);
    }

    [Fact]
    public async Task Cycle_TooFewConversations_KeepsTheTrialRunning()
    {
        await StartLengthTrialAsync();
        for (var i = 0; i < 10; i++)
        {
            await RateAsync($"few-{i}", 5, 300);
        }

        var cycle = await CycleAsync();

        cycle.Decisions.Should().Equal(CycleDecisions.TrialContinues);
        cycle.Evaluation!.Reason.Should().Contain("collecting");
        (await StrategyAsync()).Trial.Should().NotBeNull();
    }

    [Fact]
    public async Task Cycle_ImplicitCorrections_TrialVerification_AndProposeKeepingMoreContext()
    {
        // Users who correct the answers (an implicit signal, no rating) and no length complaints.
        for (var i = 0; i < 5; i++)
        {
            (await _client.PostJsonAsync("/v1/feedback", new RecordFeedbackRequest(null, new FeedbackTarget("conversation", $"fixed-{i}"), Agent, "implicit", "correction",
                JsonSerializer.SerializeToElement(true)), _tenant)).EnsureSuccessStatusCode();
            await RateAsync($"fine-{i}", 4, 300);
        }

        var cycle = await CycleAsync();

        cycle.Decisions.Should().Equal(CycleDecisions.TrialStarted);
        cycle.Patterns.Should().Contain(p => p.Name == "accuracy_issues" && p.Detected && p.Evidence == 5);
        cycle.Patterns.Should().Contain(p => p.Name == "response_too_long" && !p.Detected);
        var strategy = await StrategyAsync();
        strategy.Trial!.Type.Should().Be(StrategyTypes.AccuracyVerification);
        strategy.Trial.Parameters.Should().ContainKey("verificationThreshold");
        strategy.Proposed.Should().ContainSingle().Which.Should().Match<Strategy>(s =>
            s.Type == StrategyTypes.SummaryParameters && s.Status == StrategyStatuses.Proposed && s.Parameters.ContainsKey("recentTurns") && s.Parameters.ContainsKey("tokenThresholdRatio"));
    }

    [Fact]
    public async Task Cycle_SpeedComplaints_TrialFasterTools()
    {
        for (var i = 0; i < 5; i++)
        {
            await RateAsync($"slow-{i}", 2, 300, "so slow");
            await RateAsync($"quick-{i}", 5, 300);
        }

        var cycle = await CycleAsync();

        cycle.Patterns.Should().Contain(p => p.Name == "speed_concerns" && p.Detected);
        var strategy = await StrategyAsync();
        strategy.Trial!.Type.Should().Be(StrategyTypes.ToolSpeed);
        strategy.Trial.Parameters.Should().Equal(new Dictionary<string, double> { ["preferFastTools"] = 1 });
        strategy.Proposed.Should().BeEmpty("nothing else was complained about");
    }

    [Fact]
    public async Task Cycle_SameCycleIdTwice_RunsOnce_AndBadInputIs400()
    {
        var first = await CycleAsync("manual-1");
        var again = await CycleAsync("manual-1", HttpStatusCode.OK);
        var problem = await (await _client.PostJsonAsync("/v1/learning/cycles", new RunLearningCycleRequest(null), _tenant)).ProblemAsync(400);

        again.Should().BeEquivalentTo(first);
        first.Decisions.Should().Equal(CycleDecisions.NoOpportunity);
        problem.GetProperty("code").GetString().Should().Be("missing-agentId");
        var otherTenant = await (await _client.GetAsync("/v1/learning/cycles", "other-" + _tenant)).ReadAsync<LearningCyclePage>();
        otherTenant.Items.Should().BeEmpty();
    }
}

public sealed class InMemoryLearningLoopTests() : LearningLoopBehaviour(StoreKind.InMemory);

public sealed class PostgresLearningLoopTests() : LearningLoopBehaviour(StoreKind.Postgres);

public sealed class StatisticsTests
{
    [Fact]
    public void TwoProportionZTest_MatchesAHandComputedValue()
    {
        // 60/100 vs 45/100: pooled 0.525, se = sqrt(0.525 * 0.475 * 0.02) = 0.07062, z = 0.15 / 0.07062 = 2.124.
        var (z, p) = Statistics.TwoProportionZTest(45, 100, 60, 100);

        z.Should().BeApproximately(2.124, 0.001);
        p.Should().BeApproximately(0.0168, 0.0005);
        Statistics.TwoProportionZTest(60, 100, 45, 100).PValue.Should().BeGreaterThan(0.9, "the test is one-sided: worse is never significant");
    }

    [Fact]
    public void ArmOf_IsDeterministic_AndSplitsNearTheShare()
    {
        var arms = Enumerable.Range(0, 4000).Select(i => LearningEngine.ArmOf("str-1", $"c{i}", 0.3)).ToList();

        arms.Count(a => a == LearningEngine.TreatmentArm).Should().BeInRange(1100, 1300);
        LearningEngine.ArmOf("str-1", "c5", 0.3).Should().Be(arms[5]);
    }
}
