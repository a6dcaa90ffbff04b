using System.Net;
using CloudMemory.Contracts.Feedback;
using CloudMemory.Contracts.Traces;
using CloudMemory.Feedback.Features.Traces;
using CloudMemory.Feedback.Tests.Infrastructure;

namespace CloudMemory.Feedback.Tests.Feedback;

/// <summary>
/// System feedback from the trace service's analysis: slow steps and unrecovered failures of a
/// trace become feedback that analysis and the learning loop read; one suite on both stores.
/// </summary>
public abstract class TraceAnalysisFeedbackBehaviour : IDisposable
{
    private const string Agent = "agent-t";
    private static readonly DateTimeOffset Start = new(2026, 11, 1, 9, 0, 0, TimeSpan.Zero);
    private readonly FeedbackHostFactory _factory;
    private readonly HttpClient _client;
    private readonly string _tenant = "t-" + Guid.NewGuid().ToString("N")[..10];

    protected TraceAnalysisFeedbackBehaviour(StoreKind kind)
    {
        _factory = new FeedbackHostFactory(kind, new Dictionary<string, string?> { ["CloudMemory:Feedback:Learning:ScheduleInterval"] = "00:00:00" });
        _client = _factory.CreateClient();
    }

    public void Dispose()
    {
        _client.Dispose();
        _factory.Dispose();
        GC.SuppressFinalize(this);
    }

    private static TraceStepInput Step(string traceId, int index, string name, double ms, bool success = true) => new()
    {
        TraceId = traceId, StepId = $"s{index}", StepIndex = index, AgentId = Agent, StepType = "tool", Name = name, ContextId = "conv-" + traceId,
        StartedAt = Start.AddMinutes(index), DurationMs = ms, Success = success, Error = success ? null : new StepError("timeout", "no answer"),
    };

    /// <summary>30 ordinary runs (a learned threshold), then three runs with a very slow step and a failure nothing recovered.</summary>
    private async Task SeedAsync()
    {
        var steps = Enumerable.Range(0, 30).Select(i => Step($"ok-{i}", 0, "search", 100 + i % 7 * 5)).ToList();
        (await _client.PostJsonAsync("/v1/traces/steps", new IngestStepsRequest(steps), _tenant)).EnsureSuccessStatusCode();
        for (var k = 0; k < 3; k++)
        {
            (await _client.PostJsonAsync("/v1/traces/steps", new IngestStepsRequest([Step($"slow-{k}", 0, "search", 110), Step($"slow-{k}", 1, "search", 6000),
                Step($"slow-{k}", 2, "book", 120, success: false)]), _tenant)).EnsureSuccessStatusCode();
        }
    }

    private Task<HttpResponseMessage> ImportAsync(string? traceId, string? tenant = null) =>
        _client.PostJsonAsync("/v1/feedback/from-trace", new ImportTraceFeedbackRequest(traceId), tenant ?? _tenant);

    [Fact]
    public async Task Import_RecordsTheSlowStepAndTheUnrecoveredFailure_AsSystemFeedback_OnceEach()
    {
        await SeedAsync();

        var first = await (await ImportAsync("slow-0")).ReadAsync<TraceFeedbackImport>();
        var again = await (await ImportAsync("slow-0")).ReadAsync<TraceFeedbackImport>();

        first.Created.Should().Be(2);
        var slow = first.Items.Should().ContainSingle(f => f.Name == "latency_ms").Subject;
        (slow.Kind, slow.Target.Type, slow.Target.Id, slow.TraceId, slow.StepId, slow.AgentId, slow.StepType, slow.ConversationId)
            .Should().Be(("system", "step", "s1", "slow-0", "s1", Agent, "tool", "conv-slow-0"));
        slow.Value.GetDouble().Should().Be(6000);
        slow.Issues.Should().Equal(TraceAnalysisFeedback.SlowStepIssue);
        var failed = first.Items.Should().ContainSingle(f => f.Name == "anomaly").Subject;
        (failed.Target.Id, failed.AgentId).Should().Be(("s2", Agent));
        failed.Value.GetString().Should().Contain("timeout");
        first.Items.Should().NotContain(f => f.StepId == "s0", "an ordinary step gives no feedback");
        again.Created.Should().Be(0, "an import is idempotent");
        again.Items.Select(i => i.Id).Should().BeEquivalentTo(first.Items.Select(i => i.Id));
        var listed = await (await _client.GetAsync("/v1/feedback?kind=system&targetType=step", _tenant)).ReadAsync<FeedbackPage>();
        listed.Items.Should().HaveCount(2);
    }

    [Fact]
    public async Task ImportedSlowSteps_AreSpeedConcerns_ThatTheLearningLoopActsOn()
    {
        await SeedAsync();
        for (var k = 0; k < 3; k++)
        {
            (await ImportAsync($"slow-{k}")).EnsureSuccessStatusCode();
        }

        var analysis = await (await _client.GetAsync($"/v1/feedback/analysis?agentId={Agent}", _tenant)).ReadAsync<FeedbackAnalysis>();
        var cycle = await (await _client.PostJsonAsync("/v1/learning/cycles", new RunLearningCycleRequest(Agent), _tenant)).ReadAsync<LearningCycle>();
        var strategy = await (await _client.GetAsync($"/v1/agents/{Agent}/strategy", _tenant)).ReadAsync<AgentStrategy>();

        analysis.Patterns.Should().Contain(p => p.Name == "speed_concerns" && p.Detected && p.Evidence == 3);
        cycle.Decisions.Should().Equal(CycleDecisions.TrialStarted);
        strategy.Trial!.Type.Should().Be(StrategyTypes.ToolSpeed);
    }

    [Fact]
    public async Task Import_UnknownTraceOrAnotherTenantsTrace_Is404_AndAMissingIdIs400_RecordingNothing()
    {
        await SeedAsync();
        var other = "o-" + _tenant;

        (await (await ImportAsync("no-such-trace")).ProblemAsync(404)).GetProperty("code").GetString().Should().Be("trace-not-found");
        (await (await ImportAsync("slow-0", other)).ProblemAsync(404)).GetProperty("code").GetString().Should().Be("trace-not-found");
        (await (await ImportAsync(null)).ProblemAsync(400)).GetProperty("code").GetString().Should().Be("missing-traceId");
        (await (await _client.GetAsync("/v1/feedback", _tenant)).ReadAsync<FeedbackPage>()).Items.Should().BeEmpty();
        (await (await _client.GetAsync("/v1/feedback", other)).ReadAsync<FeedbackPage>()).Items.Should().BeEmpty();
    }
}

public sealed class InMemoryTraceAnalysisFeedbackTests() : TraceAnalysisFeedbackBehaviour(StoreKind.InMemory);

public sealed class PostgresTraceAnalysisFeedbackTests() : TraceAnalysisFeedbackBehaviour(StoreKind.Postgres);
