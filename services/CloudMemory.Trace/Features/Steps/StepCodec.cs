using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Traces;

namespace CloudMemory.Trace.Features.Steps;

/// <summary>
/// The stored form of a step in PostgreSQL: a compact binary record (version byte 1, then every field
/// in a fixed order; inputs, outputs and metadata as their raw JSON). Decoding it costs string
/// allocations and a parse of the free-form payloads only, several times less than decoding the
/// step's JSON, which dominated reading a 1,000-step trace. Rows written before this format (JSON,
/// first byte <c>{</c>) still decode.
/// </summary>
public static class StepCodec
{
    private const byte Version1 = 1;

    /// <summary>The stored bytes of a step.</summary>
    public static byte[] Encode(TraceStep step)
    {
        using var stream = new MemoryStream(512);
        using (var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Version1);
            w.Write(step.TraceId);
            w.Write(step.StepId);
            w.Write(step.StepIndex);
            WriteOptional(w, step.ContextId);
            w.Write(step.AgentId);
            WriteOptional(w, step.ParentStepId);
            w.Write(step.StepType);
            w.Write(step.Name);
            WriteJson(w, step.Inputs);
            WriteJson(w, step.Outputs);
            WriteTime(w, step.StartedAt);
            w.Write(step.DurationMs);
            w.Write(step.Success);
            w.Write(step.Error is not null);
            if (step.Error is { } error)
            {
                w.Write(error.Type);
                WriteOptional(w, error.Message);
            }
            w.Write(step.Usage is not null);
            if (step.Usage is { } usage)
            {
                w.Write(usage.InputTokens);
                w.Write(usage.OutputTokens);
            }
            w.Write(step.Cost);
            WriteList(w, step.Tags);
            WriteOptional(w, step.RetryOf);
            WriteOptional(w, step.SpawnedBy);
            WriteOptional(w, step.DelegatedTo);
            WriteList(w, step.MemoryIds);
            WriteJson(w, step.Metadata);
            w.Write(step.InputHash);
            w.Write(step.OutputHash);
            var audit = step.Audit;
            WriteList(w, audit.Sensitivity);
            WriteList(w, audit.Kinds);
            w.Write7BitEncodedInt(audit.Findings.Count);
            foreach (var finding in audit.Findings)
            {
                w.Write(finding.Kind);
                w.Write(finding.Path);
                w.Write(finding.Count);
            }
            WriteList(w, audit.Redacted);
            WriteList(w, audit.ComplianceTags);
            w.Write(audit.Status);
            WriteList(w, audit.Violations);
            WriteTime(w, step.RecordedAt);
        }
        return stream.ToArray();
    }

    /// <summary>The step of stored bytes (binary, or the JSON of older rows).</summary>
    public static TraceStep Decode(byte[] stored)
    {
        if (stored.Length > 0 && stored[0] == (byte)'{')
        {
            return JsonSerializer.Deserialize<TraceStep>(stored, ContractsJson.Options)!;
        }
        if (stored.Length == 0 || stored[0] != Version1)
        {
            throw new InvalidDataException($"Unknown stored step format {(stored.Length == 0 ? "(empty)" : stored[0].ToString(System.Globalization.CultureInfo.InvariantCulture))}.");
        }
        using var stream = new MemoryStream(stored, 1, stored.Length - 1, writable: false);
        using var r = new BinaryReader(stream, Encoding.UTF8);
        var traceId = r.ReadString();
        var stepId = r.ReadString();
        var stepIndex = r.ReadInt32();
        var contextId = ReadOptional(r);
        var agentId = r.ReadString();
        var parentStepId = ReadOptional(r);
        var stepType = r.ReadString();
        var name = r.ReadString();
        var inputs = ReadJson(r);
        var outputs = ReadJson(r);
        var startedAt = ReadTime(r);
        var durationMs = r.ReadDouble();
        var success = r.ReadBoolean();
        var error = r.ReadBoolean() ? new StepError(r.ReadString(), ReadOptional(r)) : null;
        var usage = r.ReadBoolean() ? new TokenUsage(r.ReadInt64(), r.ReadInt64()) : null;
        var cost = r.ReadDouble();
        var tags = ReadList(r);
        var retryOf = ReadOptional(r);
        var spawnedBy = ReadOptional(r);
        var delegatedTo = ReadOptional(r);
        var memoryIds = ReadList(r);
        var metadata = ReadJson(r);
        var inputHash = r.ReadString();
        var outputHash = r.ReadString();
        var sensitivity = ReadList(r);
        var kinds = ReadList(r);
        var findings = new AuditFinding[r.Read7BitEncodedInt()];
        for (var i = 0; i < findings.Length; i++)
        {
            findings[i] = new AuditFinding(r.ReadString(), r.ReadString(), r.ReadInt32());
        }
        var audit = new StepAudit(sensitivity, kinds, findings, ReadList(r), ReadList(r), r.ReadString(), ReadList(r));
        return new TraceStep
        {
            TraceId = traceId,
            StepId = stepId,
            StepIndex = stepIndex,
            ContextId = contextId,
            AgentId = agentId,
            ParentStepId = parentStepId,
            StepType = stepType,
            Name = name,
            Inputs = inputs,
            Outputs = outputs,
            StartedAt = startedAt,
            DurationMs = durationMs,
            Success = success,
            Error = error,
            Usage = usage,
            Cost = cost,
            Tags = tags,
            RetryOf = retryOf,
            SpawnedBy = spawnedBy,
            DelegatedTo = delegatedTo,
            MemoryIds = memoryIds,
            Metadata = metadata,
            InputHash = inputHash,
            OutputHash = outputHash,
            Audit = audit,
            RecordedAt = ReadTime(r),
        };
    }

    private static void WriteOptional(BinaryWriter w, string? value)
    {
        w.Write(value is not null);
        if (value is not null)
        {
            w.Write(value);
        }
    }

    private static string? ReadOptional(BinaryReader r) => r.ReadBoolean() ? r.ReadString() : null;

    private static void WriteList(BinaryWriter w, IReadOnlyList<string> values)
    {
        w.Write7BitEncodedInt(values.Count);
        foreach (var value in values)
        {
            w.Write(value);
        }
    }

    private static string[] ReadList(BinaryReader r)
    {
        var count = r.Read7BitEncodedInt();
        if (count == 0)
        {
            return [];
        }
        var values = new string[count];
        for (var i = 0; i < count; i++)
        {
            values[i] = r.ReadString();
        }
        return values;
    }

    // Ticks and offset: exact, like the JSON round trip it replaces.
    private static void WriteTime(BinaryWriter w, DateTimeOffset value)
    {
        w.Write(value.UtcTicks);
        w.Write((short)value.Offset.TotalMinutes);
    }

    private static DateTimeOffset ReadTime(BinaryReader r)
    {
        var utcTicks = r.ReadInt64();
        var offset = TimeSpan.FromMinutes(r.ReadInt16());
        return new DateTimeOffset(utcTicks, TimeSpan.Zero).ToOffset(offset);
    }

    // Length-prefixed raw UTF-8 JSON; -1 for absent.
    private static void WriteJson(BinaryWriter w, JsonElement? value)
    {
        if (value is not { } element)
        {
            w.Write(-1);
            return;
        }
        var raw = JsonMarshal.GetRawUtf8Value(element);
        w.Write(raw.Length);
        w.Write(raw);
    }

    private static JsonElement? ReadJson(BinaryReader r)
    {
        var length = r.ReadInt32();
        if (length < 0)
        {
            return null;
        }
        var reader = new Utf8JsonReader(r.ReadBytes(length));
        return JsonElement.ParseValue(ref reader);
    }
}
