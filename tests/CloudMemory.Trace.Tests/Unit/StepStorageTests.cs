using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Traces;
using CloudMemory.Trace.Features.Steps;
using static CloudMemory.Trace.Tests.Infrastructure.Steps;

namespace CloudMemory.Trace.Tests.Unit;

/// <summary>The stored form of a step and the canonical hashes diffs compare: both must never change what a reader sees.</summary>
public sealed class StepStorageTests
{
    private static readonly TraceStep Full = new()
    {
        TraceId = "trace-é",
        StepId = "s7",
        StepIndex = 7,
        ContextId = "conv-1",
        AgentId = "researcher",
        ParentStepId = "s1",
        StepType = StepTypes.Tool,
        Name = "search 药物",
        Inputs = Json(new { query = "青霉素 allergy", nested = new { list = new object[] { 1, 2.5, "x", true, false } }, empty = new { } }),
        Outputs = Json(new[] { "a", "b" }),
        StartedAt = new DateTimeOffset(2026, 11, 1, 9, 0, 0, TimeSpan.FromHours(8)).AddTicks(1234567),
        DurationMs = 12.345,
        Success = false,
        Error = new StepError("timeout", "took too long"),
        Usage = new TokenUsage(120, 30),
        Cost = 0.0042,
        Tags = ["prod", "eu"],
        RetryOf = "s6",
        SpawnedBy = "s2",
        DelegatedTo = "writer",
        MemoryIds = ["mem-1", "mem-2"],
        Metadata = Json(new { model = "gpt-4o", temperature = 0.2 }),
        InputHash = "0123456789abcdef0123456789abcdef",
        OutputHash = "fedcba9876543210fedcba9876543210",
        Audit = new StepAudit(["medical"], ["allergy", "drug"], [new AuditFinding("allergy", "inputs.query", 1), new AuditFinding("drug", "inputs.query", 2)],
            ["drug"], ["hipaa:phi"], "violation", ["unredacted-allergy"]),
        RecordedAt = T0,
    };

    private static readonly TraceStep Minimal = new()
    {
        TraceId = "t",
        StepId = "s0",
        StepIndex = 0,
        AgentId = "a",
        StepType = StepTypes.Custom,
        Name = "custom",
        StartedAt = T0,
        DurationMs = 0,
        Success = true,
        InputHash = "h",
        OutputHash = "h",
        Audit = new StepAudit([], [], [], [], [], "compliant", []),
        RecordedAt = T0,
    };

    [Fact]
    public void Every_field_of_a_step_survives_storage()
    {
        foreach (var step in new[] { Full, Minimal })
        {
            var decoded = StepCodec.Decode(StepCodec.Encode(step));

            JsonSerializer.Serialize(decoded, ContractsJson.Options).Should().Be(JsonSerializer.Serialize(step, ContractsJson.Options));
            decoded.StartedAt.Offset.Should().Be(step.StartedAt.Offset);
        }
    }

    [Fact]
    public void A_range_decoded_together_equals_each_step_decoded_alone()
    {
        // Payloads of a range are parsed as one document: steps with and without payloads, and a row stored as JSON, side by side.
        var onlyOutputs = Minimal with { StepId = "s1", Outputs = Json(new { text = "plain, \"quoted\" and 中文" }) };
        var onlyMetadata = Minimal with { StepId = "s2", Metadata = Json(new[] { 1, 2, 3 }) };
        var scalar = Minimal with { StepId = "s3", Inputs = Json(42), Outputs = Json("x") };
        byte[][] stored = [StepCodec.Encode(Minimal), StepCodec.Encode(Full), StepCodec.Encode(onlyOutputs), JsonSerializer.SerializeToUtf8Bytes(Full, ContractsJson.Options),
            StepCodec.Encode(onlyMetadata), StepCodec.Encode(scalar), StepCodec.Encode(Full)];
        var together = new TraceStep[stored.Length + 1];

        StepCodec.DecodeRange(stored, 0, stored.Length, together);

        for (var i = 0; i < stored.Length; i++)
        {
            JsonSerializer.Serialize(together[i], ContractsJson.Options).Should().Be(JsonSerializer.Serialize(StepCodec.Decode(stored[i]), ContractsJson.Options), $"step {i}");
        }
        together[^1].Should().BeNull("nothing past the range is written");
        var none = new TraceStep[1];
        StepCodec.DecodeRange([StepCodec.Encode(Minimal)], 0, 1, none);
        JsonSerializer.Serialize(none[0], ContractsJson.Options).Should().Be(JsonSerializer.Serialize(Minimal, ContractsJson.Options));
    }

    [Fact]
    public void Rows_stored_as_json_before_the_binary_form_still_decode()
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(Full, ContractsJson.Options);

        JsonSerializer.Serialize(StepCodec.Decode(json), ContractsJson.Options).Should().Be(JsonSerializer.Serialize(Full, ContractsJson.Options));
    }

    [Fact]
    public void An_unknown_stored_format_is_an_error_not_a_wrong_step()
    {
        var act = () => StepCodec.Decode([9, 1, 2]);

        act.Should().Throw<InvalidDataException>();
    }

    [Fact]
    public void The_canonical_hash_keeps_its_format_so_stored_hashes_stay_comparable()
    {
        // {"b":[1,"x"],"a":true} in canonical form: properties by name, strings length-prefixed, numbers as doubles.
        var canonical = new List<byte>();
        void S(string s)
        {
            var bytes = Encoding.UTF8.GetBytes(s);
            canonical.Add((byte)'s');
            canonical.AddRange(BitConverter.GetBytes(bytes.Length));
            canonical.AddRange(bytes);
        }
        canonical.Add((byte)'{');
        S("a");
        canonical.AddRange(":t"u8.ToArray());
        S("b");
        canonical.AddRange(":[#1,"u8.ToArray());
        S("x");
        canonical.AddRange(",]}"u8.ToArray());
        var expected = Convert.ToHexStringLower(SHA256.HashData(canonical.ToArray())[..16]);

        CanonicalHash.Of(JsonDocument.Parse("""{"b":[1,"x"],"a":true}""").RootElement).Should().Be(expected);
        CanonicalHash.Of(JsonDocument.Parse("""{ "a" : true, "b" : [ 1.0, "x" ] }""").RootElement).Should().Be(expected);
        CanonicalHash.Of(JsonDocument.Parse("""{"a":true,"b":[1,"y"]}""").RootElement).Should().NotBe(expected);
        CanonicalHash.Of(null).Should().Be(Convert.ToHexStringLower(SHA256.HashData("n"u8)[..16]));
    }
}
