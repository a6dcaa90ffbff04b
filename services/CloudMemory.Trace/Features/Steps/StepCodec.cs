using System.Buffers;
using System.Buffers.Binary;
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
        var step = Decode(stored, null, out var slices);
        return slices.Any
            ? step with { Inputs = Parse(stored, slices.Inputs), Outputs = Parse(stored, slices.Outputs), Metadata = Parse(stored, slices.Metadata) }
            : step;
    }

    /// <summary>
    /// Decodes <paramref name="count"/> stored steps from <paramref name="start"/> into
    /// <paramref name="into"/> at the same positions. The inputs, outputs and metadata of all of
    /// them are parsed as one JSON document (one parse instead of up to three per step, which was
    /// most of a step's decode time); each step's payloads are elements of it.
    /// </summary>
    public static void DecodeRange(IReadOnlyList<byte[]> stored, int start, int count, TraceStep[] into)
    {
        var payloads = new Payloads();
        var slices = new PayloadSlices[count];
        var repeated = new RepeatedStrings();
        for (var i = start; i < start + count; i++)
        {
            into[i] = Decode(stored[i], repeated, out var found);
            slices[i - start] = found;
            if (found.Any)
            {
                payloads.Add(stored[i], found);
            }
        }
        var elements = payloads.Parse();
        var next = 0;
        for (var i = start; i < start + count; i++)
        {
            var found = slices[i - start];
            if (found.Any)
            {
                into[i] = into[i] with
                {
                    Inputs = found.Inputs.Length >= 0 ? elements[next++] : null,
                    Outputs = found.Outputs.Length >= 0 ? elements[next++] : null,
                    Metadata = found.Metadata.Length >= 0 ? elements[next++] : null,
                };
            }
        }
    }

    /// <summary>
    /// Decodes steps without parsing their inputs, outputs and metadata: each step's payloads are
    /// left as the raw JSON stored (slices of <paramref name="stored"/>), to be copied into an answer
    /// as they are. A tree read needs every field of a step except those, and parsing them and
    /// writing them back out was most of its time. Rows stored as JSON decode whole (payloads parsed).
    /// </summary>
    public static void DecodeHeads(IReadOnlyList<byte[]> stored, int start, int count, TraceStep[] into, StepPayloads[] payloads)
    {
        var repeated = new RepeatedStrings();
        for (var i = start; i < start + count; i++)
        {
            var bytes = stored[i];
            into[i] = Decode(bytes, repeated, out var found);
            payloads[i] = found.Any ? new StepPayloads(Raw(bytes, found.Inputs), Raw(bytes, found.Outputs), Raw(bytes, found.Metadata)) : default;
        }
    }

    // Every field of the step except payloads stored in the binary form, whose places are returned instead.
    private static TraceStep Decode(byte[] stored, RepeatedStrings? repeated, out PayloadSlices payloads)
    {
        payloads = PayloadSlices.None;
        if (stored.Length > 0 && stored[0] == (byte)'{')
        {
            return JsonSerializer.Deserialize<TraceStep>(stored, ContractsJson.Options)!;
        }
        if (stored.Length == 0 || stored[0] != Version1)
        {
            throw new InvalidDataException($"Unknown stored step format {(stored.Length == 0 ? "(empty)" : stored[0].ToString(System.Globalization.CultureInfo.InvariantCulture))}.");
        }
        var r = new SpanReader(stored, 1, repeated);
        var traceId = r.Repeated();
        var stepId = r.String();
        var stepIndex = r.Int32();
        var contextId = r.OptionalRepeated();
        var agentId = r.Repeated();
        var parentStepId = r.OptionalRepeated();
        var stepType = r.Repeated();
        var name = r.Repeated();
        var inputs = r.Json();
        var outputs = r.Json();
        var startedAt = r.Time();
        var durationMs = r.Double();
        var success = r.Bool();
        var error = r.Bool() ? new StepError(r.Repeated(), r.OptionalString()) : null;
        var usage = r.Bool() ? new TokenUsage(r.Int64(), r.Int64()) : null;
        var cost = r.Double();
        var tags = r.List();
        var retryOf = r.OptionalString();
        var spawnedBy = r.OptionalString();
        var delegatedTo = r.OptionalString();
        var memoryIds = r.List();
        var metadata = r.Json();
        var inputHash = r.String();
        var outputHash = r.String();
        var sensitivity = r.List();
        var kinds = r.List();
        var findings = r.Count() is var findingCount and > 0 ? new AuditFinding[findingCount] : [];
        for (var i = 0; i < findings.Length; i++)
        {
            findings[i] = new AuditFinding(r.Repeated(), r.Repeated(), r.Int32());
        }
        var audit = new StepAudit(sensitivity, kinds, findings, r.List(), r.List(), r.Repeated(), r.List());
        payloads = new PayloadSlices(inputs, outputs, metadata);
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
            InputHash = inputHash,
            OutputHash = outputHash,
            Audit = audit,
            RecordedAt = r.Time(),
        };
    }

    private static JsonElement? Parse(byte[] stored, Slice slice)
    {
        if (slice.Length < 0)
        {
            return null;
        }
        var reader = new Utf8JsonReader(stored.AsSpan(slice.Offset, slice.Length));
        return JsonElement.ParseValue(ref reader);
    }

    private static ReadOnlyMemory<byte> Raw(byte[] stored, Slice slice) =>
        slice.Length < 0 ? default : stored.AsMemory(slice.Offset, slice.Length);

    // Where a payload's raw JSON is in the stored bytes; length -1 when the step has none.
    private readonly record struct Slice(int Offset, int Length);

    private readonly record struct PayloadSlices(Slice Inputs, Slice Outputs, Slice Metadata)
    {
        public static PayloadSlices None { get; } = new(new(0, -1), new(0, -1), new(0, -1));

        public bool Any => Inputs.Length >= 0 || Outputs.Length >= 0 || Metadata.Length >= 0;
    }

    // Reads what BinaryWriter wrote (little-endian numbers, strings as a 7-bit length and UTF-8)
    // straight from the stored array: no stream or reader objects per step.
    private ref struct SpanReader(byte[] data, int position, RepeatedStrings? repeated)
    {
        private readonly ReadOnlySpan<byte> _data = data;
        private int _position = position;

        public bool Bool() => _data[_position++] != 0;

        public int Int32()
        {
            var value = BinaryPrimitives.ReadInt32LittleEndian(_data[_position..]);
            _position += 4;
            return value;
        }

        public long Int64()
        {
            var value = BinaryPrimitives.ReadInt64LittleEndian(_data[_position..]);
            _position += 8;
            return value;
        }

        public double Double()
        {
            var value = BinaryPrimitives.ReadDoubleLittleEndian(_data[_position..]);
            _position += 8;
            return value;
        }

        public int Count()
        {
            var value = 0;
            for (var shift = 0; shift < 35; shift += 7)
            {
                var b = _data[_position++];
                value |= (b & 0x7F) << shift;
                if ((b & 0x80) == 0)
                {
                    return value;
                }
            }
            throw new InvalidDataException("Bad length in a stored step.");
        }

        public string String()
        {
            var length = Count();
            var value = Encoding.UTF8.GetString(_data.Slice(_position, length));
            _position += length;
            return value;
        }

        public string? OptionalString() => Bool() ? String() : null;

        // A string that many steps of a trace share (its id, agents, types, names, statuses, parents):
        // decoded once per read chunk when a pool is given.
        public string Repeated()
        {
            if (repeated is null)
            {
                return String();
            }
            var length = Count();
            var value = repeated.Get(_data.Slice(_position, length));
            _position += length;
            return value;
        }

        public string? OptionalRepeated() => Bool() ? Repeated() : null;

        // Lists hold labels (tags, sensitivity classes, compliance tags) that repeat from step to step.
        public string[] List()
        {
            var count = Count();
            if (count == 0)
            {
                return [];
            }
            var values = new string[count];
            for (var i = 0; i < count; i++)
            {
                values[i] = Repeated();
            }
            return values;
        }

        // Ticks and offset: exact, like the JSON round trip it replaces.
        public DateTimeOffset Time()
        {
            var utcTicks = Int64();
            var offset = TimeSpan.FromMinutes(BinaryPrimitives.ReadInt16LittleEndian(_data[_position..]));
            _position += 2;
            return new DateTimeOffset(utcTicks, TimeSpan.Zero).ToOffset(offset);
        }

        // A length-prefixed raw JSON payload (-1: absent): only located, not parsed.
        public Slice Json()
        {
            var length = Int32();
            if (length < 0)
            {
                return new Slice(0, -1);
            }
            var slice = new Slice(_position, length);
            _position += length;
            return slice;
        }
    }

    private static void WriteOptional(BinaryWriter w, string? value)
    {
        w.Write(value is not null);
        if (value is not null)
        {
            w.Write(value);
        }
    }

    private static void WriteList(BinaryWriter w, IReadOnlyList<string> values)
    {
        w.Write7BitEncodedInt(values.Count);
        foreach (var value in values)
        {
            w.Write(value);
        }
    }

    // Ticks and offset: exact, like the JSON round trip it replaces.
    private static void WriteTime(BinaryWriter w, DateTimeOffset value)
    {
        w.Write(value.UtcTicks);
        w.Write((short)value.Offset.TotalMinutes);
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

    // Strings decoded by one reader of many steps, keyed by their UTF-8 bytes: a repeated value is
    // one string instead of one per step. A small direct-mapped table; a clash replaces the entry.
    private sealed class RepeatedStrings
    {
        private readonly byte[]?[] _utf8 = new byte[64][];
        private readonly string[] _values = new string[64];

        public string Get(ReadOnlySpan<byte> utf8)
        {
            if (utf8.IsEmpty)
            {
                return "";
            }
            var hash = new HashCode();
            hash.AddBytes(utf8);
            var slot = hash.ToHashCode() & 63;
            if (_utf8[slot] is { } known && utf8.SequenceEqual(known))
            {
                return _values[slot];
            }
            var value = Encoding.UTF8.GetString(utf8);
            _utf8[slot] = utf8.ToArray();
            _values[slot] = value;
            return value;
        }
    }

    // The payloads of a range of steps gathered into one JSON array and parsed once, in order.
    private sealed class Payloads
    {
        private readonly ArrayBufferWriter<byte> _json = new(16 * 1024);
        private int _count;

        public void Add(byte[] stored, PayloadSlices slices)
        {
            foreach (var slice in (ReadOnlySpan<Slice>)[slices.Inputs, slices.Outputs, slices.Metadata])
            {
                if (slice.Length >= 0)
                {
                    _json.Write(_count++ == 0 ? "["u8 : ","u8);
                    _json.Write(stored.AsSpan(slice.Offset, slice.Length));
                }
            }
        }

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
