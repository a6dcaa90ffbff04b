using System.Buffers;
using System.Runtime.InteropServices;
using System.Text.Json;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Traces;

namespace CloudMemory.Trace.Features.Steps;

/// <summary>
/// A step as JSON, the way every answer that lists steps writes it (the serializer's document of a
/// <see cref="TraceStep"/>, property for property). The PostgreSQL store keeps this JSON beside the
/// binary record at ingest (<see cref="EncodeAnswer"/>), so a trace-tree answer copies each step
/// verbatim instead of decoding it and writing it again, which was most of a tree read.
/// </summary>
public static class StepJson
{
    /// <summary>
    /// The format of a stored answer, its first byte. Bump it whenever the step's JSON changes (a new
    /// field, a renamed one): stored answers of another format are ignored and their steps written
    /// from the binary record.
    /// </summary>
    public const byte AnswerFormat = 1;

    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = ContractsJson.Options.Encoder, Indented = false };

    /// <summary>The stored answer of a step: <see cref="AnswerFormat"/>, then the step's UTF-8 JSON.</summary>
    public static byte[] EncodeAnswer(TraceStep step)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        buffer.Write([AnswerFormat]);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            Write(w, step, default);
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The step's JSON of a stored answer, or empty when there is none of the current format.</summary>
    public static ReadOnlyMemory<byte> AnswerOf(byte[]? stored) =>
        stored is { Length: > 1 } && stored[0] == AnswerFormat ? stored.AsMemory(1) : default;

    /// <summary>
    /// Writes a step. Its payloads are the parsed ones when present, or else <paramref name="raw"/>
    /// (the raw JSON stored, for steps read without parsing theirs).
    /// </summary>
    public static void Write(Utf8JsonWriter w, TraceStep s, StepPayloads raw)
    {
        w.WriteStartObject();
        w.WriteString(Names.TraceId, s.TraceId);
        w.WriteString(Names.StepId, s.StepId);
        w.WriteNumber(Names.StepIndex, s.StepIndex);
        WriteOptional(w, Names.ContextId, s.ContextId);
        w.WriteString(Names.AgentId, s.AgentId);
        WriteOptional(w, Names.ParentStepId, s.ParentStepId);
        w.WriteString(Names.StepType, s.StepType);
        w.WriteString(Names.Name, s.Name);
        WritePayload(w, Names.Inputs, s.Inputs, raw.Inputs);
        WritePayload(w, Names.Outputs, s.Outputs, raw.Outputs);
        w.WriteString(Names.StartedAt, s.StartedAt);
        w.WriteNumber(Names.DurationMs, s.DurationMs);
        w.WriteBoolean(Names.Success, s.Success);
        if (s.Error is { } error)
        {
            w.WriteStartObject(Names.Error);
            w.WriteString(Names.Type, error.Type);
            WriteOptional(w, Names.Message, error.Message);
            w.WriteEndObject();
        }
        else
        {
            w.WriteNull(Names.Error);
        }
        if (s.Usage is { } usage)
        {
            w.WriteStartObject(Names.Usage);
            w.WriteNumber(Names.InputTokens, usage.InputTokens);
            w.WriteNumber(Names.OutputTokens, usage.OutputTokens);
            w.WriteNumber(Names.TotalTokens, usage.TotalTokens);
            w.WriteEndObject();
        }
        else
        {
            w.WriteNull(Names.Usage);
        }
        w.WriteNumber(Names.Cost, s.Cost);
        WriteStrings(w, Names.Tags, s.Tags);
        WriteOptional(w, Names.RetryOf, s.RetryOf);
        WriteOptional(w, Names.SpawnedBy, s.SpawnedBy);
        WriteOptional(w, Names.DelegatedTo, s.DelegatedTo);
        WriteStrings(w, Names.MemoryIds, s.MemoryIds);
        WritePayload(w, Names.Metadata, s.Metadata, raw.Metadata);
        w.WriteString(Names.InputHash, s.InputHash);
        w.WriteString(Names.OutputHash, s.OutputHash);
        var audit = s.Audit;
        w.WriteStartObject(Names.Audit);
        WriteStrings(w, Names.Sensitivity, audit.Sensitivity);
        WriteStrings(w, Names.Kinds, audit.Kinds);
        w.WriteStartArray(Names.Findings);
        foreach (var finding in audit.Findings)
        {
            w.WriteStartObject();
            w.WriteString(Names.Kind, finding.Kind);
            w.WriteString(Names.Path, finding.Path);
            w.WriteNumber(Names.Count, finding.Count);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        WriteStrings(w, Names.Redacted, audit.Redacted);
        WriteStrings(w, Names.ComplianceTags, audit.ComplianceTags);
        w.WriteString(Names.Status, audit.Status);
        WriteStrings(w, Names.Violations, audit.Violations);
        w.WriteEndObject();
        w.WriteString(Names.RecordedAt, s.RecordedAt);
        w.WriteString(Names.EndedAt, s.EndedAt);
        w.WriteEndObject();
    }

    /// <summary>A string property, or null.</summary>
    public static void WriteOptional(Utf8JsonWriter w, JsonEncodedText name, string? value)
    {
        if (value is null)
        {
            w.WriteNull(name);
        }
        else
        {
            w.WriteString(name, value);
        }
    }

    /// <summary>An array of strings.</summary>
    public static void WriteStrings(Utf8JsonWriter w, JsonEncodedText name, IReadOnlyList<string> values)
    {
        w.WriteStartArray(name);
        foreach (var value in values)
        {
            w.WriteStringValue(value);
        }
        w.WriteEndArray();
    }

    // A payload parsed with the step (in-memory store, rows stored as JSON) or left raw by the store.
    // Raw payloads were validated when ingested, so they are copied without a second check.
    private static void WritePayload(Utf8JsonWriter w, JsonEncodedText name, JsonElement? parsed, ReadOnlyMemory<byte> raw)
    {
        w.WritePropertyName(name);
        if (parsed is { } element)
        {
            w.WriteRawValue(JsonMarshal.GetRawUtf8Value(element), skipInputValidation: true);
        }
        else if (!raw.IsEmpty)
        {
            w.WriteRawValue(raw.Span, skipInputValidation: true);
        }
        else
        {
            w.WriteNullValue();
        }
    }

    private static class Names
    {
        public static readonly JsonEncodedText TraceId = JsonEncodedText.Encode("traceId");
        public static readonly JsonEncodedText StepId = JsonEncodedText.Encode("stepId");
        public static readonly JsonEncodedText StepIndex = JsonEncodedText.Encode("stepIndex");
        public static readonly JsonEncodedText ParentStepId = JsonEncodedText.Encode("parentStepId");
        public static readonly JsonEncodedText InputTokens = JsonEncodedText.Encode("inputTokens");
        public static readonly JsonEncodedText OutputTokens = JsonEncodedText.Encode("outputTokens");
        public static readonly JsonEncodedText Cost = JsonEncodedText.Encode("cost");
        public static readonly JsonEncodedText Kind = JsonEncodedText.Encode("kind");
        public static readonly JsonEncodedText ContextId = JsonEncodedText.Encode("contextId");
        public static readonly JsonEncodedText AgentId = JsonEncodedText.Encode("agentId");
        public static readonly JsonEncodedText StepType = JsonEncodedText.Encode("stepType");
        public static readonly JsonEncodedText Name = JsonEncodedText.Encode("name");
        public static readonly JsonEncodedText Inputs = JsonEncodedText.Encode("inputs");
        public static readonly JsonEncodedText Outputs = JsonEncodedText.Encode("outputs");
        public static readonly JsonEncodedText StartedAt = JsonEncodedText.Encode("startedAt");
        public static readonly JsonEncodedText DurationMs = JsonEncodedText.Encode("durationMs");
        public static readonly JsonEncodedText Success = JsonEncodedText.Encode("success");
        public static readonly JsonEncodedText Error = JsonEncodedText.Encode("error");
        public static readonly JsonEncodedText Type = JsonEncodedText.Encode("type");
        public static readonly JsonEncodedText Message = JsonEncodedText.Encode("message");
        public static readonly JsonEncodedText Usage = JsonEncodedText.Encode("usage");
        public static readonly JsonEncodedText TotalTokens = JsonEncodedText.Encode("totalTokens");
        public static readonly JsonEncodedText Tags = JsonEncodedText.Encode("tags");
        public static readonly JsonEncodedText RetryOf = JsonEncodedText.Encode("retryOf");
        public static readonly JsonEncodedText SpawnedBy = JsonEncodedText.Encode("spawnedBy");
        public static readonly JsonEncodedText DelegatedTo = JsonEncodedText.Encode("delegatedTo");
        public static readonly JsonEncodedText MemoryIds = JsonEncodedText.Encode("memoryIds");
        public static readonly JsonEncodedText Metadata = JsonEncodedText.Encode("metadata");
        public static readonly JsonEncodedText InputHash = JsonEncodedText.Encode("inputHash");
        public static readonly JsonEncodedText OutputHash = JsonEncodedText.Encode("outputHash");
        public static readonly JsonEncodedText Audit = JsonEncodedText.Encode("audit");
        public static readonly JsonEncodedText Sensitivity = JsonEncodedText.Encode("sensitivity");
        public static readonly JsonEncodedText Kinds = JsonEncodedText.Encode("kinds");
        public static readonly JsonEncodedText Findings = JsonEncodedText.Encode("findings");
        public static readonly JsonEncodedText Path = JsonEncodedText.Encode("path");
        public static readonly JsonEncodedText Count = JsonEncodedText.Encode("count");
        public static readonly JsonEncodedText Redacted = JsonEncodedText.Encode("redacted");
        public static readonly JsonEncodedText ComplianceTags = JsonEncodedText.Encode("complianceTags");
        public static readonly JsonEncodedText Status = JsonEncodedText.Encode("status");
        public static readonly JsonEncodedText Violations = JsonEncodedText.Encode("violations");
        public static readonly JsonEncodedText RecordedAt = JsonEncodedText.Encode("recordedAt");
        public static readonly JsonEncodedText EndedAt = JsonEncodedText.Encode("endedAt");
    }
}
