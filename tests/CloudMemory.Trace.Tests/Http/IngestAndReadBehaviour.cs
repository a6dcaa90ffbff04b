using System.Net;
using System.Text.Json;
using CloudMemory.Contracts.Traces;
using CloudMemory.Trace.Features.Read;
using CloudMemory.Trace.Tests.Infrastructure;
using static CloudMemory.Trace.Tests.Infrastructure.Steps;

namespace CloudMemory.Trace.Tests.Http;

/// <summary>Ingest and read over HTTP, run on both stores.</summary>
public abstract class IngestAndReadBehaviour(TraceHost host)
{
    private readonly string _tenant = NewTenant();

    private HttpClient Client => _client ??= host.Client(_tenant);

    private HttpClient? _client;

    [Fact]
    public async Task Ingest_NewSteps_AcceptedOnceDurableAndReadBackByIndex()
    {
        var trace = NewTrace();
        var response = await Client.PostJsonAsync("/v1/traces/steps", Batch(Step(trace, 2), Step(trace, 0), Step(trace, 1)));

        response.StatusCode.Should().Be(HttpStatusCode.Accepted);
        var result = await response.ReadAsync<IngestStepsResult>();
        result.Should().Be(new IngestStepsResult(3, 3, 0));
        var view = await (await Client.GetAsync($"/v1/traces/{trace}")).ReadAsync<TraceView>();
        view.Steps.Select(s => s.StepIndex).Should().Equal(0, 1, 2);
        view.Steps[1].Outputs!.Value.GetProperty("ok").GetInt32().Should().Be(1);
    }

    [Fact]
    public async Task Ingest_SameStepTwice_StoredOnceAndReportedAsDuplicate()
    {
        var trace = NewTrace();
        await Client.PostJsonAsync("/v1/traces/steps", Batch(Step(trace, 0), Step(trace, 1)));

        var retry = await (await Client.PostJsonAsync("/v1/traces/steps", Batch(Step(trace, 1) with { Outputs = Json(new { changed = true }) }, Step(trace, 2))))
            .ReadAsync<IngestStepsResult>();

        retry.Should().Be(new IngestStepsResult(2, 1, 1));
        var view = await (await Client.GetAsync($"/v1/traces/{trace}")).ReadAsync<TraceView>();
        view.Steps.Should().HaveCount(3);
        view.Steps[1].Outputs!.Value.TryGetProperty("changed", out _).Should().BeFalse("the first write of a step wins");
    }

    [Fact]
    public async Task Ingest_ConcurrentWritersOfOneTrace_EveryStepStored()
    {
        var trace = NewTrace();
        await Task.WhenAll(Enumerable.Range(0, 16).Select(w =>
            Client.PostJsonAsync("/v1/traces/steps", new IngestStepsRequest([.. Enumerable.Range(0, 25).Select(i => Step(trace, w * 25 + i))]))));

        var view = await (await Client.GetAsync($"/v1/traces/{trace}")).ReadAsync<TraceView>();
        view.Steps.Select(s => s.StepIndex).Should().Equal(Enumerable.Range(0, 400));
    }

    [Fact]
    public async Task Ingest_OneInvalidStep_NothingStoredAndProblemNamesIt()
    {
        var trace = NewTrace();
        var response = await Client.PostJsonAsync("/v1/traces/steps", Batch(Step(trace, 0), Step(trace, 1) with { StepType = "telepathy" }));

        var problem = await response.ProblemAsync(400);
        problem.GetProperty("code").GetString().Should().Be("invalid-stepType");
        problem.GetProperty("detail").GetString().Should().StartWith("steps[1]");
        (await Client.GetAsync($"/v1/traces/{trace}")).StatusCode.Should().Be(HttpStatusCode.NotFound);
    }

    [Theory]
    [InlineData("""{"steps":[]}""", 400, "missing-steps")]
    [InlineData("""{"steps":[{"traceId":"a/b","stepIndex":0}]}""", 400, "invalid-traceId")]
    [InlineData("""{"steps":[{"traceId":"t1"}]}""", 400, "missing-stepIndex")]
    [InlineData("""{"steps":[{"traceId":"t1","stepIndex":0,"durationMs":-1}]}""", 400, "invalid-durationMs")]
    [InlineData("""{"steps":[{"traceId":"t1","stepIndex":0,"parentStepId":"../x"}]}""", 400, "invalid-parentStepId")]
    [InlineData("""{"steps":[{"traceId":"t1","stepIndex":"zero"}]}""", 400, "malformed-json")]
    public async Task Ingest_BadInput_ProblemWithStableCode(string body, int status, string code)
    {
        var response = await Client.PostAsync("/v1/traces/steps", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));

        (await response.ProblemAsync(status)).GetProperty("code").GetString().Should().Be(code);
    }

    [Fact]
    public async Task Read_OtherTenantsTrace_NotFoundAndUnchanged()
    {
        var trace = NewTrace();
        await Client.PostJsonAsync("/v1/traces/steps", Batch(Step(trace, 0, context: "conv-1", agent: "a1")));
        var other = host.Client(NewTenant());

        (await other.GetAsync($"/v1/traces/{trace}")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await (await other.GetAsync("/v1/conversations/conv-1/steps")).ReadAsync<ContextSteps>()).Steps.Should().BeEmpty();
        (await (await other.GetAsync("/v1/agents/a1/actions")).ReadAsync<AgentActions>()).Actions.Should().BeEmpty();
        // The same ids in another tenant are a different step, not a duplicate.
        (await (await other.PostJsonAsync("/v1/traces/steps", Batch(Step(trace, 0)))).ReadAsync<IngestStepsResult>()).Inserted.Should().Be(1);
        (await (await Client.GetAsync($"/v1/traces/{trace}")).ReadAsync<TraceView>()).Steps.Single().ContextId.Should().Be("conv-1");
    }

    [Fact]
    public async Task ReadStep_ByTraceAndStepId_TheStepAsInTheTree()
    {
        var trace = NewTrace();
        await Client.PostJsonAsync("/v1/traces/steps", Batch(Step(trace, 0, StepTypes.Plan),
            Step(trace, 1, StepTypes.Retrieval, parent: "s0", inputs: new { query = "penicillin allergy" }, outputs: new { hits = 2 }, inputTokens: 40, outputTokens: 5, context: "conv-7")));

        var response = await Client.GetAsync($"/v1/traces/{trace}/steps/s1");
        var step = await response.ReadAsync<TraceStep>();
        var view = await (await Client.GetAsync($"/v1/traces/{trace}")).ReadAsync<TraceView>();

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        step.Inputs!.Value.GetProperty("query").GetString().Should().Be("penicillin allergy");
        step.Outputs!.Value.GetProperty("hits").GetInt32().Should().Be(2);
        JsonSerializer.Serialize(step, CloudMemory.Contracts.ContractsJson.Options).Should().Be(
            JsonSerializer.Serialize(view.Steps[1], CloudMemory.Contracts.ContractsJson.Options), "the step reads the same alone and in its trace");
    }

    [Fact]
    public async Task ReadStep_UnknownStepOrOtherTenant_NotFoundProblem()
    {
        var trace = NewTrace();
        await Client.PostJsonAsync("/v1/traces/steps", Batch(Step(trace, 0)));
        var other = host.Client(NewTenant());

        (await (await Client.GetAsync($"/v1/traces/{trace}/steps/s9")).ProblemAsync(404)).GetProperty("code").GetString().Should().Be("step-not-found");
        (await (await Client.GetAsync($"/v1/traces/{NewTrace()}/steps/s0")).ProblemAsync(404)).GetProperty("code").GetString().Should().Be("step-not-found");
        (await (await other.GetAsync($"/v1/traces/{trace}/steps/s0")).ProblemAsync(404)).GetProperty("code").GetString().Should().Be("step-not-found");
        (await (await Client.GetAsync($"/v1/traces/{trace}/steps/s%20bad")).ProblemAsync(400)).GetProperty("code").GetString().Should().Be("invalid-stepId");
    }

    [Fact]
    public async Task Read_MultiAgentTree_RollsUpSubtreesAndFindsCriticalPath()
    {
        // plan (0-1000) spawns two workers in parallel: a (100-400) and b (100-900, with a tool call 200-800 that failed once).
        var trace = NewTrace();
        await Client.PostJsonAsync("/v1/traces/steps", Batch(
            Step(trace, 0, StepTypes.Plan, agent: "lead", startMs: 0, durationMs: 1000, inputTokens: 10, outputTokens: 5, cost: 0.01),
            Step(trace, 1, StepTypes.Handoff, "to-a", agent: "a", startMs: 100, durationMs: 300, parent: "s0", spawnedBy: "s0", delegatedTo: "a", inputTokens: 100, outputTokens: 50, cost: 0.1),
            Step(trace, 2, StepTypes.Handoff, "to-b", agent: "b", startMs: 100, durationMs: 800, parent: "s0", spawnedBy: "s0", delegatedTo: "b"),
            Step(trace, 3, StepTypes.Tool, "search", agent: "b", startMs: 150, durationMs: 40, parent: "s2", error: new StepError("timeout", "upstream timed out")),
            Step(trace, 4, StepTypes.Tool, "search", agent: "b", startMs: 200, durationMs: 600, parent: "s2", retryOf: "s3", inputTokens: 7, cost: 0.2)));

        var view = await (await Client.GetAsync($"/v1/traces/{trace}")).ReadAsync<TraceView>();

        view.Tree.Roots.Should().Equal("s0");
        var nodes = view.Tree.Nodes.ToDictionary(n => n.StepId);
        nodes["s0"].Children.Should().Equal("s1", "s2");
        nodes["s2"].Children.Should().Equal("s3", "s4");
        nodes["s4"].Depth.Should().Be(2);
        nodes["s2"].Subtree.Should().Be(new SubtreeRollup(3, 800, 7, 0, 0.2, 1));
        nodes["s0"].Subtree.Steps.Should().Be(5);
        nodes["s0"].Subtree.Cost.Should().BeApproximately(0.31, 1e-9);
        view.Rollup.ErrorCount.Should().Be(1);
        view.Rollup.InputTokens.Should().Be(117);
        view.Rollup.Agents.Should().Equal("a", "b", "lead");
        view.Rollup.WallMs.Should().Be(1000);
        // The failed attempt and its retry ran one after the other inside b: both are on the path.
        view.Rollup.CriticalPath.Should().Equal("s0", "s2", "s3", "s4");
        view.Tree.Links.Should().Contain(new CausalLink("s4", "s3", "retryOf")).And.Contain(new CausalLink("s2", "b", "delegatedTo"));
    }

    [Fact]
    public async Task Read_SequentialTopLevelSteps_AllOnTheCriticalPath()
    {
        var trace = NewTrace();
        await Client.PostJsonAsync("/v1/traces/steps", Batch(Step(trace, 0, durationMs: 50), Step(trace, 1, durationMs: 70), Step(trace, 2, durationMs: 30)));

        var view = await (await Client.GetAsync($"/v1/traces/{trace}")).ReadAsync<TraceView>();

        view.Rollup.CriticalPath.Should().Equal("s0", "s1", "s2");
        view.Rollup.CriticalPathMs.Should().Be(150);
    }

    [Fact]
    public async Task Read_DeepRecursion_ServedAsFlatTree()
    {
        var trace = NewTrace();
        var steps = Enumerable.Range(0, 300).Select(i => Step(trace, i, StepTypes.Plan, "recurse", startMs: i, durationMs: 1000 - i * 2, parent: i == 0 ? null : $"s{i - 1}")).ToArray();
        await Client.PostJsonAsync("/v1/traces/steps", new IngestStepsRequest(steps));

        var view = await (await Client.GetAsync($"/v1/traces/{trace}")).ReadAsync<TraceView>();

        view.Tree.Nodes[^1].Depth.Should().Be(299);
        view.Rollup.CriticalPath.Should().HaveCount(300);
    }

    [Fact]
    public async Task Read_LargeTrace_EveryStepWithItsPayloadsInOneDocument()
    {
        // ~300 KB of answer: written and flushed in parts, payloads copied as stored.
        var trace = NewTrace();
        for (var b = 0; b < 4; b++)
        {
            var batch = Enumerable.Range(b * 100, 100).Select(i => Step(trace, i, parent: i % 10 == 0 ? null : $"s{i - i % 10}",
                inputs: new { query = $"第{i}步 \"quoted\" <tag>", nested = new { list = new object[] { i, 2.5, true, null! } } },
                outputs: new { text = new string('x', 200), n = i }, inputTokens: 10, outputTokens: 1)).ToArray();
            (await Client.PostJsonAsync("/v1/traces/steps", Batch(batch))).StatusCode.Should().Be(HttpStatusCode.Accepted);
        }

        var response = await Client.GetAsync($"/v1/traces/{trace}");

        response.Content.Headers.ContentType!.MediaType.Should().Be("application/json");
        var view = await response.ReadAsync<TraceView>();
        view.Steps.Select(s => s.StepIndex).Should().Equal(Enumerable.Range(0, 400));
        view.Steps[123].Inputs!.Value.GetProperty("query").GetString().Should().Be("第123步 \"quoted\" <tag>");
        view.Steps[123].Inputs!.Value.GetProperty("nested").GetProperty("list")[3].ValueKind.Should().Be(JsonValueKind.Null);
        view.Steps[399].Outputs!.Value.GetProperty("n").GetInt32().Should().Be(399);
        view.Tree.Nodes.Should().HaveCount(400);
        view.Tree.Nodes[120].Children.Should().HaveCount(9);
        view.Rollup.StepCount.Should().Be(400);
        view.Rollup.InputTokens.Should().Be(4000);
    }

    [Fact]
    public async Task ReadConversation_OfATrace_FirstStepNamingOneNullWhenNoneAndNotFoundElsewhere()
    {
        var trace = NewTrace();
        var bare = NewTrace();
        await Client.PostJsonAsync("/v1/traces/steps", Batch(Step(trace, 2, context: "c-late"), Step(trace, 0), Step(trace, 1, context: "c-first"), Step(bare, 0)));
        var other = host.Client(NewTenant());

        (await (await Client.GetAsync($"/v1/traces/{trace}/conversation")).ReadAsync<TraceConversation>()).Should().Be(new TraceConversation(trace, "c-first"));
        (await (await Client.GetAsync($"/v1/traces/{bare}/conversation")).ReadAsync<TraceConversation>()).Should().Be(new TraceConversation(bare, null));
        (await (await other.GetAsync($"/v1/traces/{trace}/conversation")).ProblemAsync(404)).GetProperty("code").GetString().Should().Be("trace-not-found");
        (await (await Client.GetAsync($"/v1/traces/{NewTrace()}/conversation")).ProblemAsync(404)).GetProperty("code").GetString().Should().Be("trace-not-found");
        (await (await Client.GetAsync("/v1/traces/bad%20id/conversation")).ProblemAsync(400)).GetProperty("code").GetString().Should().Be("invalid-traceId");
    }

    [Fact]
    public async Task Read_ConversationAndAgent_StepsInOrderAndRecentActionsNewestFirst()
    {
        var t1 = NewTrace();
        var t2 = NewTrace();
        await Client.PostJsonAsync("/v1/traces/steps", Batch(Step(t1, 0, context: "c-9", agent: "triage", startMs: 0), Step(t1, 1, context: "c-9", agent: "doctor", startMs: 100)));
        await Client.PostJsonAsync("/v1/traces/steps", Batch(Step(t2, 0, StepTypes.Tool, "lookup", context: "c-9", agent: "triage", startMs: 200), Step(t2, 1, context: "c-other", agent: "triage", startMs: 300)));

        var conversation = await (await Client.GetAsync("/v1/conversations/c-9/steps")).ReadAsync<ContextSteps>();
        var actions = await (await Client.GetAsync("/v1/agents/triage/actions?limit=2")).ReadAsync<AgentActions>();

        conversation.Steps.Select(s => (s.TraceId, s.StepIndex)).Should().Equal((t1, 0), (t1, 1), (t2, 0));
        actions.Actions.Select(a => (a.TraceId, a.StepIndex)).Should().Equal((t2, 1), (t2, 0));
        actions.Actions[1].Name.Should().Be("lookup");
        (await (await Client.GetAsync("/v1/agents/triage/actions?limit=0")).ProblemAsync(400)).GetProperty("code").GetString().Should().Be("invalid-limit");
    }
}

public sealed class IngestAndReadInMemory(InMemoryTraceHost host) : IngestAndReadBehaviour(host), IClassFixture<InMemoryTraceHost>;

public sealed class IngestAndReadPostgres(PostgresTraceHost host) : IngestAndReadBehaviour(host), IClassFixture<PostgresTraceHost>;
