using System.Net;
using System.Text;
using System.Text.Json;
using CloudMemory.Contracts.Traces;
using CloudMemory.Trace.Features.Read;
using CloudMemory.Trace.Tests.Infrastructure;
using static CloudMemory.Trace.Tests.Infrastructure.Steps;

namespace CloudMemory.Trace.Tests.Http;

/// <summary>OTLP/HTTP JSON in and out, trace-linked memory and retention, run on both stores.</summary>
public abstract class OtlpAndProvenanceBehaviour(TraceHost host)
{
    private readonly HttpClient _client = host.Client(NewTenant());

    /// <summary>
    /// An agent run as Microsoft.Extensions.AI / Semantic Kernel export it under the GenAI semantic
    /// conventions: invoke_agent → chat (tool call) → execute_tool (failed) → chat.
    /// </summary>
    private static string GenAiExport(string traceId) => $$"""
    {
      "resourceSpans": [{
        "resource": { "attributes": [{ "key": "service.name", "value": { "stringValue": "triage-service" } }] },
        "scopeSpans": [{
          "scope": { "name": "Microsoft.Extensions.AI" },
          "spans": [
            {
              "traceId": "{{traceId}}", "spanId": "a1a1a1a1a1a1a1a1", "parentSpanId": "",
              "name": "invoke_agent Triage", "kind": 1,
              "startTimeUnixNano": "1795000000000000000", "endTimeUnixNano": "1795000002500000000",
              "attributes": [
                { "key": "gen_ai.operation.name", "value": { "stringValue": "invoke_agent" } },
                { "key": "gen_ai.agent.name", "value": { "stringValue": "Triage" } },
                { "key": "gen_ai.agent.id", "value": { "stringValue": "triage-01" } },
                { "key": "gen_ai.conversation.id", "value": { "stringValue": "conv-42" } }
              ],
              "status": {}
            },
            {
              "traceId": "{{traceId}}", "spanId": "b2b2b2b2b2b2b2b2", "parentSpanId": "a1a1a1a1a1a1a1a1",
              "name": "chat gpt-4o", "kind": 3,
              "startTimeUnixNano": "1795000000100000000", "endTimeUnixNano": "1795000000900000000",
              "attributes": [
                { "key": "gen_ai.operation.name", "value": { "stringValue": "chat" } },
                { "key": "gen_ai.provider.name", "value": { "stringValue": "openai" } },
                { "key": "gen_ai.request.model", "value": { "stringValue": "gpt-4o" } },
                { "key": "gen_ai.request.temperature", "value": { "doubleValue": 0.2 } },
                { "key": "gen_ai.response.finish_reasons", "value": { "arrayValue": { "values": [{ "stringValue": "tool_calls" }] } } },
                { "key": "gen_ai.usage.input_tokens", "value": { "intValue": "812" } },
                { "key": "gen_ai.usage.output_tokens", "value": { "intValue": 37 } },
                { "key": "gen_ai.input.messages", "value": { "stringValue": "[{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":\"Book me with a cardiologist\"}]}]" } },
                { "key": "server.address", "value": { "stringValue": "api.openai.com" } }
              ],
              "status": { "code": 0 }
            },
            {
              "traceId": "{{traceId}}", "spanId": "c3c3c3c3c3c3c3c3", "parentSpanId": "a1a1a1a1a1a1a1a1",
              "name": "execute_tool book_appointment", "kind": 1,
              "startTimeUnixNano": "1795000001000000000", "endTimeUnixNano": "1795000001400000000",
              "attributes": [
                { "key": "gen_ai.operation.name", "value": { "stringValue": "execute_tool" } },
                { "key": "gen_ai.tool.name", "value": { "stringValue": "book_appointment" } },
                { "key": "gen_ai.tool.call.id", "value": { "stringValue": "call_1" } },
                { "key": "gen_ai.tool.call.arguments", "value": { "stringValue": "{\"specialty\":\"cardiology\"}" } },
                { "key": "error.type", "value": { "stringValue": "TimeoutException" } }
              ],
              "status": { "code": "STATUS_CODE_ERROR", "message": "calendar did not answer" }
            },
            {
              "traceId": "{{traceId}}", "spanId": "d4d4d4d4d4d4d4d4", "parentSpanId": "a1a1a1a1a1a1a1a1",
              "name": "chat gpt-4o", "kind": 3,
              "startTimeUnixNano": "1795000001500000000", "endTimeUnixNano": "1795000002400000000",
              "attributes": [
                { "key": "gen_ai.operation.name", "value": { "stringValue": "chat" } },
                { "key": "gen_ai.request.model", "value": { "stringValue": "gpt-4o" } }
              ]
            },
            { "traceId": "", "spanId": "e5e5e5e5e5e5e5e5", "name": "broken", "startTimeUnixNano": "1", "endTimeUnixNano": "2" }
          ]
        }]
      }]
    }
    """;

    private Task<HttpResponseMessage> PostOtlpAsync(string json) =>
        _client.PostAsync("/v1/traces", new StringContent(json, Encoding.UTF8, "application/json"));

    [Fact]
    public async Task Otlp_GenAiSpans_MappedToStepsOnceDurable()
    {
        var traceId = Guid.NewGuid().ToString("N");
        var response = await PostOtlpAsync(GenAiExport(traceId));

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        var answer = await response.JsonAsync();
        answer.GetProperty("partialSuccess").GetProperty("rejectedSpans").GetInt32().Should().Be(1);

        var view = await (await _client.GetAsync($"/v1/traces/{traceId}")).ReadAsync<TraceView>();
        view.Steps.Select(s => (s.StepIndex, s.StepId, s.StepType, s.Name)).Should().Equal(
            (0, "a1a1a1a1a1a1a1a1", StepTypes.Plan, "Triage"),
            (1, "b2b2b2b2b2b2b2b2", StepTypes.Llm, "gpt-4o"),
            (2, "c3c3c3c3c3c3c3c3", StepTypes.Tool, "book_appointment"),
            (3, "d4d4d4d4d4d4d4d4", StepTypes.Llm, "gpt-4o"));
        view.Steps.Should().OnlyContain(s => s.AgentId == "triage-01" && s.ContextId == "conv-42", "agent and conversation are inherited from the agent span");
        var chat = view.Steps[1];
        chat.ParentStepId.Should().Be("a1a1a1a1a1a1a1a1");
        chat.Usage.Should().Be(new TokenUsage(812, 37));
        chat.DurationMs.Should().Be(800);
        chat.StartedAt.Should().Be(DateTimeOffset.FromUnixTimeMilliseconds(1_795_000_000_100));
        chat.Inputs!.Value.GetProperty("input.messages")[0].GetProperty("role").GetString().Should().Be("user");
        chat.Inputs.Value.GetProperty("request.temperature").GetDouble().Should().Be(0.2);
        chat.Outputs!.Value.GetProperty("response.finish_reasons")[0].GetString().Should().Be("tool_calls");
        chat.Metadata!.Value.GetProperty("attributes").GetProperty("server.address").GetString().Should().Be("api.openai.com");
        var tool = view.Steps[2];
        tool.Success.Should().BeFalse();
        tool.Error.Should().Be(new StepError("TimeoutException", "calendar did not answer"));
        tool.Inputs!.Value.GetProperty("tool.call.arguments").GetProperty("specialty").GetString().Should().Be("cardiology");
        view.Rollup.InputTokens.Should().Be(812);
        view.Rollup.CriticalPath.Should().StartWith("a1a1a1a1a1a1a1a1");

        // The exporter retries: nothing is stored twice.
        (await PostOtlpAsync(GenAiExport(traceId))).StatusCode.Should().Be(HttpStatusCode.OK);
        (await (await _client.GetAsync($"/v1/traces/{traceId}")).ReadAsync<TraceView>()).Steps.Should().HaveCount(4);
    }

    [Fact]
    public async Task Otlp_ExportedTraceImportedElsewhere_SameStepsBack()
    {
        var t = NewTrace();
        await _client.PostJsonAsync("/v1/traces/steps", Batch(
            Step(t, 0, StepTypes.Plan, "plan", startMs: 0, durationMs: 500),
            Step(t, 1, StepTypes.Tool, "search", startMs: 10, durationMs: 100, parent: "s0", error: new StepError("timeout", "slow")),
            Step(t, 2, StepTypes.Llm, "gpt-4o", startMs: 200, durationMs: 250, parent: "s0", inputTokens: 10, outputTokens: 4)));

        var exported = await (await _client.GetAsync($"/v1/traces/{t}/otlp")).JsonAsync();
        var other = host.Client(NewTenant());
        (await other.PostAsync("/v1/traces", new StringContent(exported.GetRawText(), Encoding.UTF8, "application/json"))).StatusCode.Should().Be(HttpStatusCode.OK);

        var otelTraceId = exported.GetProperty("resourceSpans")[0].GetProperty("scopeSpans")[0].GetProperty("spans")[0].GetProperty("traceId").GetString();
        var view = await (await other.GetAsync($"/v1/traces/{otelTraceId}")).ReadAsync<TraceView>();
        view.Steps.Select(s => (s.StepType, s.Name, s.Success, s.DurationMs)).Should().Equal(
            (StepTypes.Plan, "plan", true, 500.0), (StepTypes.Tool, "search", false, 100.0), (StepTypes.Llm, "gpt-4o", true, 250.0));
        view.Tree.Roots.Should().ContainSingle();
        view.Rollup.OutputTokens.Should().Be(4);
    }

    [Fact]
    public async Task Otlp_NotJson_UnsupportedMediaType()
    {
        var response = await _client.PostAsync("/v1/traces", new ByteArrayContent([1, 2, 3]) { Headers = { ContentType = new("application/x-protobuf") } });

        (await response.ProblemAsync(415)).GetProperty("code").GetString().Should().Be("unsupported-media-type");
    }

    [Fact]
    public async Task Provenance_MemoryWrittenByAStep_StepsAndTheirAncestors()
    {
        var t = NewTrace();
        await _client.PostJsonAsync("/v1/traces/steps", Batch(
            Step(t, 0, StepTypes.Plan, "consolidate", startMs: 0, durationMs: 100),
            Step(t, 1, StepTypes.Llm, "extract", parent: "s0", startMs: 10, outputs: new { fact = "prefers morning visits" }),
            Step(t, 2, StepTypes.Memory, "write", parent: "s1", startMs: 20, inputs: new { text = "prefers morning visits" }, memoryIds: ["mem-1"])));

        var provenance = await (await _client.GetAsync("/v1/memories/mem-1/provenance")).ReadAsync<MemoryProvenance>();

        provenance.Steps.Should().ContainSingle().Which.StepId.Should().Be("s2");
        provenance.Ancestors.Select(a => a.StepId).Should().Equal("s1", "s0");
        provenance.Ancestors[0].Outputs!.Value.GetProperty("fact").GetString().Should().Be("prefers morning visits");
        (await (await host.Client(NewTenant()).GetAsync("/v1/memories/mem-1/provenance")).ReadAsync<MemoryProvenance>()).Steps.Should().BeEmpty();
    }

    [Fact]
    public async Task Retention_DeleteOlderThan_RemovesOnlyOldSteps()
    {
        var t = NewTrace();
        await _client.PostJsonAsync("/v1/traces/steps", Batch(Step(t, 0, startMs: 0), Step(t, 1, startMs: 3_600_000)));

        var result = await (await _client.DeleteAsync($"/v1/traces?olderThan={Uri.EscapeDataString(T0.AddMinutes(30).ToString("O"))}")).ReadAsync<RetentionResult>();

        result.Deleted.Should().Be(1);
        (await (await _client.GetAsync($"/v1/traces/{t}")).ReadAsync<TraceView>()).Steps.Select(s => s.StepIndex).Should().Equal(1);
        (await (await _client.DeleteAsync("/v1/traces")).ProblemAsync(400)).GetProperty("code").GetString().Should().Be("missing-olderThan");
    }
}

public sealed class OtlpAndProvenanceInMemory(InMemoryTraceHost host) : OtlpAndProvenanceBehaviour(host), IClassFixture<InMemoryTraceHost>;

public sealed class OtlpAndProvenancePostgres(PostgresTraceHost host) : OtlpAndProvenanceBehaviour(host), IClassFixture<PostgresTraceHost>;
