using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Traces;
using CloudMemory.Trace.Features.Read;
using CloudMemory.Trace.Features.Steps;
using static CloudMemory.Trace.Tests.Infrastructure.Steps;

namespace CloudMemory.Trace.Tests.Unit;

/// <summary>The tree answer written by hand must be the document the serializer makes of the view, whichever way its steps were read.</summary>
public sealed class TraceViewJsonTests
{
    private static readonly TraceStep Root = new()
    {
        TraceId = "trace-é",
        StepId = "s0",
        StepIndex = 0,
        ContextId = "conv-1",
        AgentId = "planner",
        StepType = StepTypes.Plan,
        Name = "plan \"quoted\" 计划",
        Inputs = Json(new { query = "青霉素 allergy <b>", nested = new { list = new object[] { 1, 2.5, "x", true, false, 1e-7 } }, empty = new { } }),
        Outputs = Json(new[] { "a", "b" }),
        StartedAt = new DateTimeOffset(2026, 11, 1, 9, 0, 0, TimeSpan.FromHours(8)).AddTicks(1234567),
        DurationMs = 1200.5,
        Success = true,
        Usage = new TokenUsage(120, 30),
        Cost = 0.0042,
        Tags = ["prod", "eu"],
        MemoryIds = ["mem-1"],
        Metadata = Json(new { model = "gpt-4o", temperature = 0.2 }),
        InputHash = "0123456789abcdef",
        OutputHash = "fedcba9876543210",
        Audit = new StepAudit(["medical"], ["allergy", "drug"], [new AuditFinding("allergy", "inputs.query", 1)], ["drug"], ["hipaa:phi"], "violation", ["unredacted-allergy"]),
        RecordedAt = T0,
    };

    private static readonly TraceStep Failed = new()
    {
        TraceId = "trace-é",
        StepId = "s1",
        StepIndex = 1,
        AgentId = "worker",
        ParentStepId = "s0",
        StepType = StepTypes.Tool,
        Name = "search",
        StartedAt = new DateTimeOffset(2026, 11, 1, 1, 0, 0, 100, TimeSpan.Zero),
        DurationMs = 300,
        Success = false,
        Error = new StepError("timeout", "no answer\nin 300 ms"),
        RetryOf = "s9",
        SpawnedBy = "s0",
        DelegatedTo = "helper",
        InputHash = "h",
        OutputHash = "h",
        Audit = new StepAudit([], [], [], [], [], "compliant", []),
        RecordedAt = T0,
    };

    private static readonly TraceStep Retry = Failed with { StepId = "s2", StepIndex = 2, RetryOf = "s1", Success = true, Error = null, Outputs = Json(new { hits = 3 }), StartedAt = Failed.StartedAt.AddMilliseconds(400) };

    [Fact]
    public async Task Write_StepsWithTheirPayloads_SameDocumentAsTheSerializer()
    {
        TraceStep[] steps = [Root, Failed, Retry];
        var view = TraceViewBuilder.Build("trace-é", steps);

        var written = await WriteAsync(view, null);

        written.Should().Be(Normalized(JsonSerializer.Serialize(view, ContractsJson.Options)));
    }

    [Fact]
    public async Task Write_StepsReadWithRawPayloads_SameDocumentAsTheFullyDecodedView()
    {
        // As the PostgreSQL store reads them: binary rows left with raw payloads, and a row stored as JSON.
        byte[][] stored = [StepCodec.Encode(Root), JsonSerializer.SerializeToUtf8Bytes(Failed, ContractsJson.Options), StepCodec.Encode(Retry)];
        var heads = new TraceStep[stored.Length];
        var payloads = new StepPayloads[stored.Length];
        StepCodec.DecodeHeads(stored, 0, stored.Length, heads, payloads);

        heads[0].Inputs.Should().BeNull("binary rows leave their payloads unparsed");
        var written = await WriteAsync(TraceViewBuilder.Build("trace-é", heads), payloads);

        var decoded = stored.Select(StepCodec.Decode).ToList();
        written.Should().Be(Normalized(JsonSerializer.Serialize(TraceViewBuilder.Build("trace-é", decoded), ContractsJson.Options)));
    }

    private static async Task<string> WriteAsync(TraceView view, IReadOnlyList<StepPayloads>? payloads)
    {
        using var body = new MemoryStream();
        await TraceViewJson.WriteAsync(body, view, payloads);
        return Normalized(Encoding.UTF8.GetString(body.ToArray()));
    }

    // The same document whatever the whitespace and string escaping; property order still counts.
    private static string Normalized(string json) => JsonNode.Parse(json)!.ToJsonString();
}
