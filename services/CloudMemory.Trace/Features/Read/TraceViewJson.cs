using System.IO.Pipelines;
using System.Runtime.InteropServices;
using System.Text.Json;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Traces;
using CloudMemory.Trace.Features.Steps;

namespace CloudMemory.Trace.Features.Read;

/// <summary>
/// Writes a <see cref="TraceView"/> as the JSON <c>GET /v1/traces/{traceId}</c> answers — the same
/// document the serializer makes of it — straight to the response. Inputs, outputs and metadata are
/// copied as the raw JSON stored, never parsed and re-written: for a 1,000-step trace, serializing
/// the view took twice as long as reading and decoding the steps. Tests compare the two documents.
/// </summary>
public static class TraceViewJson
{
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = ContractsJson.Options.Encoder, Indented = false };

    /// <summary>Writes the view to a stream (see the <see cref="PipeWriter"/> overload).</summary>
    public static async Task WriteAsync(Stream body, TraceView view, IReadOnlyList<StepPayloads>? payloads, CancellationToken cancellationToken = default)
    {
        var pipe = PipeWriter.Create(body, new StreamPipeWriterOptions(leaveOpen: true));
        await WriteAsync(pipe, view, payloads, cancellationToken);
        await pipe.CompleteAsync();
    }

    /// <summary>
    /// Writes the view; <paramref name="payloads"/> (when not null) holds the raw payloads of steps
    /// read without theirs. The body is flushed every 32 KiB, so a large trace is never held whole.
    /// </summary>
    public static async Task WriteAsync(PipeWriter body, TraceView view, IReadOnlyList<StepPayloads>? payloads, CancellationToken cancellationToken = default)
    {
        // Over a PipeWriter, the writer's own flushes only hand bytes to the pipe (no synchronous I/O).
        await using var w = new Utf8JsonWriter(body, WriterOptions);
        w.WriteStartObject();
        w.WriteString(Names.TraceId, view.TraceId);
        w.WriteStartArray(Names.Steps);
        for (var i = 0; i < view.Steps.Count; i++)
        {
            WriteStep(w, view.Steps[i], payloads?[i] ?? default);
            if (w.BytesPending > 32 * 1024)
            {
                w.Flush();
                await body.FlushAsync(cancellationToken);
            }
        }
        w.WriteEndArray();
        w.WritePropertyName(Names.Tree);
        w.WriteStartObject();
        WriteStrings(w, Names.Roots, view.Tree.Roots);
        w.WriteStartArray(Names.Nodes);
        foreach (var node in view.Tree.Nodes)
        {
            WriteNode(w, node);
            if (w.BytesPending > 32 * 1024)
            {
                w.Flush();
                await body.FlushAsync(cancellationToken);
            }
        }
        w.WriteEndArray();
        w.WriteStartArray(Names.Links);
        foreach (var link in view.Tree.Links)
        {
            w.WriteStartObject();
            w.WriteString(Names.From, link.From);
            w.WriteString(Names.To, link.To);
            w.WriteString(Names.Kind, link.Kind);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
        w.WritePropertyName(Names.Rollup);
        JsonSerializer.Serialize(w, view.Rollup, ContractsJson.Options);
        w.WriteEndObject();
        w.Flush();
        await body.FlushAsync(cancellationToken);
    }

    // The properties of TraceStep in declaration order, as the serializer writes them.
    private static void WriteStep(Utf8JsonWriter w, TraceStep s, StepPayloads raw)
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

    private static void WriteNode(Utf8JsonWriter w, TreeNode node)
    {
        w.WriteStartObject();
        w.WriteString(Names.StepId, node.StepId);
        w.WriteNumber(Names.StepIndex, node.StepIndex);
        WriteOptional(w, Names.ParentStepId, node.ParentStepId);
        WriteStrings(w, Names.Children, node.Children);
        w.WriteNumber(Names.Depth, node.Depth);
        w.WriteBoolean(Names.OnCriticalPath, node.OnCriticalPath);
        var sub = node.Subtree;
        w.WriteStartObject(Names.Subtree);
        w.WriteNumber(Names.Steps, sub.Steps);
        w.WriteNumber(Names.WallMs, sub.WallMs);
        w.WriteNumber(Names.InputTokens, sub.InputTokens);
        w.WriteNumber(Names.OutputTokens, sub.OutputTokens);
        w.WriteNumber(Names.Cost, sub.Cost);
        w.WriteNumber(Names.Errors, sub.Errors);
        w.WriteEndObject();
        w.WriteEndObject();
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

    private static void WriteOptional(Utf8JsonWriter w, JsonEncodedText name, string? value)
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

    private static void WriteStrings(Utf8JsonWriter w, JsonEncodedText name, IReadOnlyList<string> values)
    {
        w.WriteStartArray(name);
        foreach (var value in values)
        {
            w.WriteStringValue(value);
        }
        w.WriteEndArray();
    }

    private static class Names
    {
        public static readonly JsonEncodedText TraceId = JsonEncodedText.Encode("traceId");
        public static readonly JsonEncodedText Steps = JsonEncodedText.Encode("steps");
        public static readonly JsonEncodedText Tree = JsonEncodedText.Encode("tree");
        public static readonly JsonEncodedText Roots = JsonEncodedText.Encode("roots");
        public static readonly JsonEncodedText Nodes = JsonEncodedText.Encode("nodes");
        public static readonly JsonEncodedText Links = JsonEncodedText.Encode("links");
        public static readonly JsonEncodedText From = JsonEncodedText.Encode("from");
        public static readonly JsonEncodedText To = JsonEncodedText.Encode("to");
        public static readonly JsonEncodedText Kind = JsonEncodedText.Encode("kind");
        public static readonly JsonEncodedText Rollup = JsonEncodedText.Encode("rollup");
        public static readonly JsonEncodedText StepId = JsonEncodedText.Encode("stepId");
        public static readonly JsonEncodedText StepIndex = JsonEncodedText.Encode("stepIndex");
        public static readonly JsonEncodedText ContextId = JsonEncodedText.Encode("contextId");
        public static readonly JsonEncodedText AgentId = JsonEncodedText.Encode("agentId");
        public static readonly JsonEncodedText ParentStepId = JsonEncodedText.Encode("parentStepId");
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
        public static readonly JsonEncodedText InputTokens = JsonEncodedText.Encode("inputTokens");
        public static readonly JsonEncodedText OutputTokens = JsonEncodedText.Encode("outputTokens");
        public static readonly JsonEncodedText TotalTokens = JsonEncodedText.Encode("totalTokens");
        public static readonly JsonEncodedText Cost = JsonEncodedText.Encode("cost");
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
        public static readonly JsonEncodedText Children = JsonEncodedText.Encode("children");
        public static readonly JsonEncodedText Depth = JsonEncodedText.Encode("depth");
        public static readonly JsonEncodedText OnCriticalPath = JsonEncodedText.Encode("onCriticalPath");
        public static readonly JsonEncodedText Subtree = JsonEncodedText.Encode("subtree");
        public static readonly JsonEncodedText WallMs = JsonEncodedText.Encode("wallMs");
        public static readonly JsonEncodedText Errors = JsonEncodedText.Encode("errors");
    }
}
