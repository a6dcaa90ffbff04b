using System.Buffers;
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
    public static TraceStep Decode(byte[] stored) => Decode(stored, null);

    /// <summary>
    /// Decodes <paramref name="count"/> stored steps from <paramref name="start"/> into
    /// <paramref name="into"/> at the same positions. The inputs, outputs and metadata of all of
    /// them are parsed as one JSON document (one parse instead of up to three per step, which was
    /// most of a step's decode time); each step's payloads are elements of it.
    /// </summary>
    public static void DecodeRange(IReadOnlyList<byte[]> stored, int start, int count, TraceStep[] into)
    {
        var payloads = new Payloads();
        for (var i = start; i < start + count; i++)
        {
            into[i] = Decode(stored[i], payloads);
        }
        var elements = payloads.Parse();
        if (elements.Length == 0)
        {
            return;
        }
        for (var i = start; i < start + count; i++)
        {
            var (inputs, outputs, metadata) = payloads.SlotsOf(i - start);
            if (inputs >= 0 || outputs >= 0 || metadata >= 0)
            {
                into[i] = into[i] with
                {
                    Inputs = inputs >= 0 ? elements[inputs] : null,
                    Outputs = outputs >= 0 ? elements[outputs] : null,
                    Metadata = metadata >= 0 ? elements[metadata] : null,
                };
            }
        }
    }

    private static TraceStep Decode(byte[] stored, Payloads? payloads)
    {
        if (stored.Length > 0 && stored[0] == (byte)'{')
        {
            payloads?.Skip();
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
        var inputs = ReadJson(r, stored, payloads);
        var outputs = ReadJson(r, stored, payloads);
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
        var metadata = ReadJson(r, stored, payloads);
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

    // With a batch, the payload is only located (parsed later with the batch's others) and null returned.
    private static JsonElement? ReadJson(BinaryReader r, byte[] stored, Payloads? payloads)
    {
        var length = r.ReadInt32();
        if (payloads is not null)
        {
            if (length >= 0)
            {
                // The reader's stream starts at stored[1] (after the version byte); BinaryReader never reads ahead.
                var offset = (int)r.BaseStream.Position + 1;
                r.BaseStream.Seek(length, SeekOrigin.Current);
                payloads.Add(stored, offset, length);
            }
            else
            {
                payloads.Add(stored, 0, -1);
            }
            return null;
        }
        if (length < 0)
        {
            return null;
        }
        var reader = new Utf8JsonReader(r.ReadBytes(length));
        return JsonElement.ParseValue(ref reader);
    }

    // The payloads of a batch of steps, three slots per step (inputs, outputs, metadata), gathered
    // into one JSON array and parsed once.
    private sealed class Payloads
    {
        private readonly List<int> _slots = [];
        private readonly ArrayBufferWriter<byte> _json = new(16 * 1024);
        private int _count;

        public void Add(byte[] stored, int offset, int length)
        {
            if (length < 0)
            {
                _slots.Add(-1);
                return;
            }
            _json.Write(_count == 0 ? "["u8 : ","u8);
            _json.Write(stored.AsSpan(offset, length));
            _slots.Add(_count++);
        }

        // A step stored as JSON carries its payloads itself.
        public void Skip()
        {
            _slots.Add(-1);
            _slots.Add(-1);
            _slots.Add(-1);
        }

        public (int Inputs, int Outputs, int Metadata) SlotsOf(int step) => (_slots[3 * step], _slots[(3 * step) + 1], _slots[(3 * step) + 2]);

        public JsonElement[] Parse()
        {
            if (_count == 0)
            {
                return [];
            }
            _json.Write("]"u8);
            var reader = new Utf8JsonReader(_json.WrittenSpan);
            var elements = new JsonElement[_count];
            var i = 0;
            foreach (var element in JsonElement.ParseValue(ref reader).EnumerateArray())
            {
                elements[i++] = element;
            }
            return elements;
        }
    }
}
