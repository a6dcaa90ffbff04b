using System.Net;
using System.Text.Json;
using CloudMemory.Contracts.Traces;
using CloudMemory.Trace.Features.Diff;
using CloudMemory.Trace.Features.Replay;
using CloudMemory.Trace.Tests.Infrastructure;
using static CloudMemory.Trace.Tests.Infrastructure.Steps;

namespace CloudMemory.Trace.Tests.Http;

/// <summary>Diff and replay over HTTP, run on both stores.</summary>
public abstract class DiffAndReplayBehaviour(TraceHost host)
{
    private readonly HttpClient _client = host.Client(NewTenant());

    private async Task IngestAsync(params TraceStepInput[] steps) =>
        (await _client.PostJsonAsync("/v1/traces/steps", new IngestStepsRequest(steps))).StatusCode.Should().Be(HttpStatusCode.Accepted);

    [Fact]
    public async Task Diff_RunsThatChoseAnotherTool_FirstDivergenceIsTheToolChoiceAndLaterDifferencesListed()
    {
        var a = NewTrace();
        var b = NewTrace();
        await IngestAsync(
            Step(a, 0, inputs: new { q = "flu" }), Step(a, 1, StepTypes.Tool, "search", inputs: new { q = "flu" }),
            Step(a, 2, outputs: new { answer = "rest" }), Step(a, 3));
        await IngestAsync(
            Step(b, 0, inputs: new { q = "flu" }), Step(b, 1, StepTypes.Tool, "web_fetch", inputs: new { q = "flu" }),
            Step(b, 2, outputs: new { answer = "see a doctor" }, error: new StepError("refusal")));

        var diff = await (await _client.GetAsync($"/v1/traces/{a}/diff/{b}")).ReadAsync<TraceDiffResult>();

        diff.FirstDivergence!.StepIndex.Should().Be(1);
        diff.FirstDivergence.Field.Should().Be("toolChoice");
        diff.FirstDivergence.Left!.Value.GetString().Should().Be("search");
        diff.FirstDivergence.Right!.Value.GetString().Should().Be("web_fetch");
        diff.Differences.Select(d => (d.StepIndex, d.Field)).Should().Equal((1, "toolChoice"), (2, "outputs"), (2, "error"), (3, "missing"));
        diff.Differences[1].Right!.Value.GetProperty("answer").GetString().Should().Be("see a doctor");
        diff.ComparedSteps.Should().Be(3);
    }

    [Fact]
    public async Task Diff_SameInputsWrittenDifferently_NoDivergence()
    {
        var a = NewTrace();
        var b = NewTrace();
        await IngestAsync(Step(a, 0) with { Inputs = JsonDocument.Parse("""{"x":1,"y":[1,2]}""").RootElement });
        await IngestAsync(Step(b, 0) with { Inputs = JsonDocument.Parse("""{ "y": [1, 2.0], "x": 1.0 }""").RootElement });

        var diff = await (await _client.GetAsync($"/v1/traces/{a}/diff/{b}")).ReadAsync<TraceDiffResult>();

        diff.FirstDivergence.Should().BeNull();
        diff.Differences.Should().BeEmpty();
    }

    [Fact]
    public async Task Diff_InputsDiffer_ReportsTheInputHash()
    {
        var a = NewTrace();
        var b = NewTrace();
        await IngestAsync(Step(a, 0, inputs: new { q = "flu" }));
        await IngestAsync(Step(b, 0, inputs: new { q = "cold" }));

        var diff = await (await _client.GetAsync($"/v1/traces/{a}/diff/{b}")).ReadAsync<TraceDiffResult>();

        diff.FirstDivergence!.Field.Should().Be("inputHash");
    }

    [Fact]
    public async Task Diff_UnknownTrace_NotFound()
    {
        var a = NewTrace();
        await IngestAsync(Step(a, 0));

        (await (await _client.GetAsync($"/v1/traces/{a}/diff/{NewTrace()}")).ProblemAsync(404)).GetProperty("code").GetString().Should().Be("trace-not-found");
    }

    private async Task<string> SixStepTraceAsync()
    {
        var t = NewTrace();
        await IngestAsync(
            Step(t, 0, StepTypes.Plan, agent: "lead"),
            Step(t, 1, StepTypes.Llm, agent: "lead", inputTokens: 100, outputTokens: 20, cost: 0.002),
            Step(t, 2, StepTypes.Tool, "search", agent: "worker", durationMs: 200, outputs: new { status = "ok", items = new[] { 1, 2, 3 } }),
            Step(t, 3, StepTypes.Llm, agent: "worker", durationMs: 50),
            Step(t, 4, StepTypes.Tool, "search", agent: "worker", durationMs: 150, outputs: new { status = "error", items = Array.Empty<int>() }),
            Step(t, 5, StepTypes.Llm, agent: "lead"));
        return t;
    }

    [Fact]
    public async Task Replay_ConditionalBreakpoint_StopsAtTheFirstMatchingStepWithItsState()
    {
        var t = await SixStepTraceAsync();

        var result = await (await _client.PostJsonAsync($"/v1/traces/{t}/replay", new ReplayRequest("debug", Breakpoints:
            [new Breakpoint(AgentId: "nobody"), new Breakpoint(StepType: "tool", Condition: "durationMs > 100 && outputs.status == 'error'")]))).ReadAsync<ReplayResult>();

        result.StoppedAt!.StepIndex.Should().Be(4);
        result.StoppedAt.Breakpoint.Should().Be(1);
        result.StoppedAt.Reason.Should().Contain("outputs.status == 'error'");
        result.StepsReplayed.Should().Be(5);
        result.Log.Should().OnlyContain(e => !e.Executed && e.Status == "replayed");
        result.Log[2].Outputs!.Value.GetProperty("status").GetString().Should().Be("ok", "outputs are the recorded ones");
        var state = result.StoppedAt.State;
        state.Step.Outputs!.Value.GetProperty("status").GetString().Should().Be("error");
        state.Previous.Select(p => p.StepIndex).Should().Equal(0, 1, 2, 3);
        state.InputTokens.Should().Be(100);
        state.NextStep.Should().Be(5);
    }

    [Fact]
    public async Task Replay_ResumeAfterTheBreakpoint_RunsToTheEnd()
    {
        var t = await SixStepTraceAsync();

        var result = await (await _client.PostJsonAsync($"/v1/traces/{t}/replay",
            new ReplayRequest("debug", FromStep: 5, Breakpoints: [new Breakpoint(StepType: "tool")]))).ReadAsync<ReplayResult>();

        result.StoppedAt.Should().BeNull();
        result.Log.Select(e => e.StepIndex).Should().Equal(5);
    }

    [Fact]
    public async Task Replay_RangeComparedWithAnotherRun_PerStepDifferences()
    {
        var t = await SixStepTraceAsync();
        var other = NewTrace();
        await IngestAsync(Step(other, 2, StepTypes.Tool, "search", agent: "worker", durationMs: 200, outputs: new { status = "ok", items = new[] { 1, 2, 3 } }),
            Step(other, 3, StepTypes.Llm, agent: "worker", outputs: new { different = true }));

        var result = await (await _client.PostJsonAsync($"/v1/traces/{t}/replay", new ReplayRequest("audit", FromStep: 2, ToStep: 4, CompareWith: other))).ReadAsync<ReplayResult>();

        result.Log.Select(e => e.StepIndex).Should().Equal(2, 3, 4);
        result.Log[0].Differences.Should().BeEmpty();
        result.Log[1].Differences!.Select(d => d.Field).Should().Equal("outputs");
        result.Log[2].Differences!.Select(d => d.Field).Should().Equal("missing");
        result.Log.Should().OnlyContain(e => e.Audit != null);
    }

    [Theory]
    [InlineData("""{"mode":"live"}""", "invalid-mode")]
    [InlineData("""{"mode":"debug","fromStep":4,"toStep":2}""", "invalid-range")]
    [InlineData("""{"mode":"audit","breakpoints":[{"stepType":"tool"}]}""", "breakpoints-need-debug")]
    [InlineData("""{"mode":"debug","breakpoints":[{"condition":"System.IO.File.Delete('x')"}]}""", "invalid-condition")]
    [InlineData("""{"mode":"debug","breakpoints":[{"condition":"durationMs >"}]}""", "invalid-condition")]
    public async Task Replay_BadRequest_ProblemWithStableCode(string body, string code)
    {
        var t = await SixStepTraceAsync();

        var response = await _client.PostAsync($"/v1/traces/{t}/replay", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));

        (await response.ProblemAsync(400)).GetProperty("code").GetString().Should().Be(code);
    }
}

public sealed class DiffAndReplayInMemory(InMemoryTraceHost host) : DiffAndReplayBehaviour(host), IClassFixture<InMemoryTraceHost>;

public sealed class DiffAndReplayPostgres(PostgresTraceHost host) : DiffAndReplayBehaviour(host), IClassFixture<PostgresTraceHost>;
