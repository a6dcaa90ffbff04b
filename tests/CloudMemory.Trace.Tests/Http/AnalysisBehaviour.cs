using CloudMemory.Contracts.Traces;
using CloudMemory.Trace.Features.Analysis;
using CloudMemory.Trace.Tests.Infrastructure;
using static CloudMemory.Trace.Tests.Infrastructure.Steps;

namespace CloudMemory.Trace.Tests.Http;

/// <summary>Analysis and failure-point analysis over HTTP, run on both stores.</summary>
public abstract class AnalysisBehaviour(TraceHost host)
{
    private readonly HttpClient _client = host.Client(NewTenant());

    private async Task IngestAsync(params TraceStepInput[] steps) =>
        (await _client.PostJsonAsync("/v1/traces/steps", new IngestStepsRequest(steps))).EnsureSuccessStatusCode();

    /// <summary>30 earlier runs of the worker's search tool, 80-120 ms each: the history thresholds are learned from.</summary>
    private async Task HistoryAsync()
    {
        for (var run = 0; run < 3; run++)
        {
            var t = NewTrace();
            await IngestAsync([.. Enumerable.Range(0, 10).Select(i => Step(t, i, StepTypes.Tool, "search", agent: "worker", durationMs: 80 + (i * 4) + run, inputs: new { q = $"{run}-{i}" }))]);
        }
    }

    [Fact]
    public async Task Analysis_MultiAgentRun_PatternsPerformanceFailuresDecisionsAndSuggestions()
    {
        await HistoryAsync();
        var t = NewTrace();
        await IngestAsync(
            Step(t, 0, StepTypes.Plan, "plan", agent: "lead", startMs: 0, durationMs: 10_000),
            Step(t, 1, StepTypes.Decision, "route", agent: "lead", startMs: 10, durationMs: 5, parent: "s0",
                inputs: new { options = new[] { "worker", "human" } }, outputs: new { choice = "worker" }),
            // fan-out: two workers in parallel
            Step(t, 2, StepTypes.Handoff, "to-worker", agent: "worker", startMs: 20, durationMs: 9_000, parent: "s0", delegatedTo: "worker"),
            Step(t, 3, StepTypes.Handoff, "to-checker", agent: "checker", startMs: 20, durationMs: 1_000, parent: "s0", delegatedTo: "checker"),
            // inside worker: a slow search, a failed fetch retried twice, the same lookup twice
            Step(t, 4, StepTypes.Tool, "search", agent: "worker", startMs: 30, durationMs: 5_000, parent: "s2", inputs: new { q = "slow" }),
            Step(t, 5, StepTypes.Tool, "fetch", agent: "worker", startMs: 5_100, durationMs: 300, parent: "s2", error: new StepError("timeout", "no answer in 300 ms")),
            Step(t, 6, StepTypes.Tool, "fetch", agent: "worker", startMs: 5_500, durationMs: 300, parent: "s2", retryOf: "s5", error: new StepError("timeout")),
            Step(t, 7, StepTypes.Tool, "fetch", agent: "worker", startMs: 5_900, durationMs: 200, parent: "s2", retryOf: "s6"),
            Step(t, 8, StepTypes.Retrieval, "lookup", agent: "worker", startMs: 6_200, durationMs: 100, parent: "s2", inputs: new { id = 7 }, outputs: new { v = 1 }),
            Step(t, 9, StepTypes.Retrieval, "lookup", agent: "worker", startMs: 6_400, durationMs: 100, parent: "s2", inputs: new { id = 7 }, outputs: new { v = 1 }),
            // recursion: plan inside plan
            Step(t, 10, StepTypes.Plan, "plan", agent: "lead", startMs: 9_100, durationMs: 500, parent: "s0"),
            Step(t, 11, StepTypes.Plan, "plan", agent: "lead", startMs: 9_200, durationMs: 100, parent: "s10"),
            // a failure nobody recovered from
            Step(t, 12, StepTypes.Tool, "notify", agent: "checker", startMs: 100, durationMs: 50, parent: "s3", error: new StepError("forbidden", "no permission")));

        var analysis = await (await _client.GetAsync($"/v1/traces/{t}/analysis")).ReadAsync<TraceAnalysis>();

        analysis.Patterns.Detected.Should().BeEquivalentTo("sequential", "parallel", "retry", "recursive");
        analysis.Patterns.Parallel.Should().Contain(p => p.ParentStepId == "s0" && p.StepIds.Contains("s2") && p.StepIds.Contains("s3") && p.MaxConcurrency >= 2);
        var retry = analysis.Patterns.Retries.Should().ContainSingle(r => r.Explicit).Subject;
        retry.StepIds.Should().Equal("s5", "s6", "s7");
        retry.Recovered.Should().BeTrue();
        analysis.Patterns.Recursion.Should().Contain(r => r.StepId == "s11" && r.Depth == 2);

        var search = analysis.Performance.Single(p => p.StepType == StepTypes.Tool && p.AgentId == "worker");
        search.HistoryCount.Should().BeGreaterThanOrEqualTo(30);
        search.ThresholdMs.Should().BeInRange(100, 400);
        search.Anomalies.Select(a => a.StepId).Should().Equal("s4");

        analysis.Failures.Should().Contain(f => f.ErrorType == "timeout" && f.Count == 2 && f.Recovered);
        analysis.Failures.Should().Contain(f => f.ErrorType == "forbidden" && !f.Recovered);
        analysis.DecisionPoints.Should().Contain(d => d.StepId == "s1" && d.Kind == "decision" && d.Chosen == "worker" && d.Alternatives.SequenceEqual(new[] { "worker", "human" }));
        analysis.DecisionPoints.Should().Contain(d => d.StepId == "s0" && d.Kind == "fan-out");

        var kinds = analysis.Suggestions.Select(s => s.Kind).ToList();
        kinds.Should().Contain(["slow-step", "retry-cost", "duplicate-call", "unhandled-failure"]);
        analysis.Suggestions.Single(s => s.Kind == "slow-step").StepIds.Should().Equal("s4");
        analysis.Suggestions.Single(s => s.Kind == "duplicate-call").StepIds.Should().Equal("s8", "s9");
        analysis.Suggestions.Single(s => s.Kind == "retry-cost").Evidence["failedMs"].Should().Be(600);
    }

    [Fact]
    public async Task Analysis_WithoutEnoughHistory_NoThresholdAndNoAnomaly()
    {
        var t = NewTrace();
        await IngestAsync(Step(t, 0, StepTypes.Tool, "rare", agent: "solo", durationMs: 99_000));

        var analysis = await (await _client.GetAsync($"/v1/traces/{t}/analysis")).ReadAsync<TraceAnalysis>();

        var perf = analysis.Performance.Single();
        perf.ThresholdMs.Should().BeNull();
        perf.Anomalies.Should().BeEmpty();
        analysis.Suggestions.Should().NotContain(s => s.Kind == "slow-step");
    }

    [Fact]
    public async Task FailurePoint_ContextAroundAndDifferenceFromLastSuccess()
    {
        var good = NewTrace();
        await IngestAsync(Step(good, 0, StepTypes.Memory, "load", agent: "w", startMs: 0), Step(good, 1, StepTypes.Tool, "dose", agent: "w", startMs: 100, inputs: new { kg = 70 }));
        var bad = NewTrace();
        await IngestAsync(
            Step(bad, 0, StepTypes.Memory, "load", agent: "w", startMs: 1000),
            Step(bad, 1, StepTypes.Llm, agent: "w", startMs: 1100),
            Step(bad, 2, StepTypes.Tool, "dose", agent: "w", startMs: 1200, inputs: new { kg = -1 }, error: new StepError("validation", "weight must be positive")),
            Step(bad, 3, StepTypes.Memory, "save", agent: "w", startMs: 1300));

        var failure = await (await _client.GetAsync($"/v1/traces/{bad}/steps/s2/failure")).ReadAsync<FailureAnalysis>();

        failure.Before.Select(s => s.StepId).Should().Equal("s0", "s1");
        failure.After.Select(s => s.StepId).Should().Equal("s3");
        failure.MemoryBefore.Select(s => s.Name).Should().Equal("load");
        failure.MemoryAfter.Select(s => s.Name).Should().Equal("save");
        failure.LastSuccess!.TraceId.Should().Be(good);
        failure.DifferencesFromLastSuccess.Select(d => d.Field).Should().Contain("inputHash").And.Contain("error");
        failure.LikelyCauses.Should().Contain(c => c.Contains("inputs differ", StringComparison.Ordinal));
        (await (await _client.GetAsync($"/v1/traces/{bad}/steps/nope/failure")).ProblemAsync(404)).GetProperty("code").GetString().Should().Be("step-not-found");
    }
}

public sealed class AnalysisInMemory(InMemoryTraceHost host) : AnalysisBehaviour(host), IClassFixture<InMemoryTraceHost>;

public sealed class AnalysisPostgres(PostgresTraceHost host) : AnalysisBehaviour(host), IClassFixture<PostgresTraceHost>;
