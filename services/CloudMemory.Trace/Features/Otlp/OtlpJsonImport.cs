using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Traces;

namespace CloudMemory.Trace.Features.Otlp;

/// <summary>
/// Maps an OTLP/HTTP JSON <c>ExportTraceServiceRequest</c> to steps, following the OpenTelemetry
/// GenAI semantic conventions: <c>gen_ai.operation.name</c> gives the step type (chat /
/// text_completion / generate_content → llm, execute_tool → tool, embeddings → retrieval,
/// invoke_agent → handoff under a parent span, plan at the root), <c>gen_ai.agent.id|name</c> the
/// agent (inherited by child spans), <c>gen_ai.conversation.id</c> the conversation,
/// <c>gen_ai.usage.*</c> the tokens, <c>error.type</c> and the span status the failure. Message and
/// tool payloads become inputs/outputs; every other attribute is kept in metadata.
/// </summary>
public static class OtlpJsonImport
{
    /// <summary>The steps of a request and the spans that could not be mapped (with why).</summary>
    public sealed record Mapped(List<TraceStepInput> Steps, int Rejected, string? FirstError);

    private sealed record Span(string TraceId, string SpanId, string? ParentSpanId, string Name, int Kind, long StartNanos, long EndNanos,
        Dictionary<string, JsonNode?> Attributes, int StatusCode, string? StatusMessage, string? Service, string? Scope);

    /// <summary>Parses and maps; <paramref name="nextIndex"/> gives the first free step index of a trace.</summary>
    public static async Task<Mapped> MapAsync(JsonElement request, Func<string, Task<int>> nextIndex)
    {
        var spans = new List<Span>();
        var rejected = 0;
        string? firstError = null;
        foreach (var resourceSpans in Array(request, "resourceSpans"))
        {
            var resource = resourceSpans.TryGetProperty("resource", out var r) ? Attributes(r) : [];
            var service = resource.TryGetValue("service.name", out var s) ? s?.ToString() : null;
            foreach (var scopeSpans in Array(resourceSpans, "scopeSpans"))
            {
                var scope = scopeSpans.TryGetProperty("scope", out var sc) && sc.TryGetProperty("name", out var sn) ? sn.GetString() : null;
                foreach (var span in Array(scopeSpans, "spans"))
                {
                    try
                    {
                        spans.Add(ReadSpan(span, service, scope));
                    }
                    catch (Exception ex) when (ex is FormatException or InvalidOperationException or KeyNotFoundException)
                    {
                        rejected++;
                        firstError ??= ex.Message;
                    }
                }
            }
        }

        var bySpan = spans.GroupBy(s => (s.TraceId, s.SpanId)).ToDictionary(g => g.Key, g => g.First());
        var steps = new List<TraceStepInput>(spans.Count);
        foreach (var trace in spans.GroupBy(s => s.TraceId))
        {
            var index = await nextIndex(trace.Key);
            foreach (var span in trace.OrderBy(s => s.StartNanos).ThenBy(s => s.SpanId, StringComparer.Ordinal))
            {
                steps.Add(ToStep(span, index++, bySpan));
            }
        }
        return new Mapped(steps, rejected, firstError);
    }

    private static Span ReadSpan(JsonElement span, string? service, string? scope)
    {
        var traceId = Hex(span, "traceId", 32);
        var spanId = Hex(span, "spanId", 16);
        var parent = span.TryGetProperty("parentSpanId", out var p) && p.GetString() is { Length: > 0 } ps ? Hex(span, "parentSpanId", 16) : null;
        var name = span.TryGetProperty("name", out var n) ? n.GetString() ?? "" : "";
        var kind = span.TryGetProperty("kind", out var k) ? EnumValue(k) : 0;
        var start = Nanos(span, "startTimeUnixNano");
        var end = Nanos(span, "endTimeUnixNano");
        var statusCode = 0;
        string? statusMessage = null;
        if (span.TryGetProperty("status", out var status) && status.ValueKind == JsonValueKind.Object)
        {
            statusCode = status.TryGetProperty("code", out var c) ? EnumValue(c) : 0;
            statusMessage = status.TryGetProperty("message", out var m) ? m.GetString() : null;
        }
        return new Span(traceId, spanId, parent, name, kind, start, Math.Max(start, end), Attributes(span), statusCode, statusMessage, service, scope);
    }

    private static TraceStepInput ToStep(Span span, int index, Dictionary<(string, string), Span> bySpan)
    {
        var a = span.Attributes;
        var operation = Text(a, "gen_ai.operation.name");
        var stepType = operation switch
        {
            "chat" or "text_completion" or "generate_content" => StepTypes.Llm,
            "execute_tool" => StepTypes.Tool,
            "embeddings" => StepTypes.Retrieval,
            "invoke_agent" => span.ParentSpanId is null ? StepTypes.Plan : StepTypes.Handoff,
            "create_agent" => StepTypes.Plan,
            _ when a.ContainsKey("db.system") || a.ContainsKey("db.system.name") || a.ContainsKey("gen_ai.data_source.id") => StepTypes.Retrieval,
            _ => StepTypes.Custom,
        };
        // Spans this service exported carry the original step type and name: they round-trip exactly.
        if (Text(a, "cloudmemory.step_type") is { } own && StepTypes.All.Contains(own))
        {
            stepType = own;
        }
        var name = Text(a, "cloudmemory.step_name") ?? stepType switch
        {
            StepTypes.Tool => Text(a, "gen_ai.tool.name"),
            StepTypes.Llm => Text(a, "gen_ai.request.model"),
            StepTypes.Plan or StepTypes.Handoff => Text(a, "gen_ai.agent.name"),
            _ => null,
        } ?? span.Name;
        if (name.Length == 0)
        {
            name = operation ?? stepType;
        }
        var errorType = Text(a, "error.type");
        var failed = span.StatusCode == 2 || errorType is not null;

        var inputs = new JsonObject();
        var outputs = new JsonObject();
        var metadata = new JsonObject { ["spanName"] = span.Name, ["spanKind"] = span.Kind };
        if (span.Service is not null)
        {
            metadata["service"] = span.Service;
        }
        if (span.Scope is not null)
        {
            metadata["scope"] = span.Scope;
        }
        var rest = new JsonObject();
        foreach (var (key, value) in a.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            switch (key)
            {
                case "gen_ai.input.messages" or "gen_ai.system_instructions" or "gen_ai.tool.call.arguments" or "gen_ai.tool.definitions":
                    inputs[Short(key)] = ParseIfJson(value);
                    break;
                case "gen_ai.output.messages" or "gen_ai.tool.call.result":
                    outputs[Short(key)] = ParseIfJson(value);
                    break;
                case var request when request.StartsWith("gen_ai.request.", StringComparison.Ordinal):
                    inputs[request["gen_ai.".Length..]] = value?.DeepClone();
                    break;
                case var response when response.StartsWith("gen_ai.response.", StringComparison.Ordinal):
                    outputs[response["gen_ai.".Length..]] = value?.DeepClone();
                    break;
                case "gen_ai.operation.name" or "gen_ai.agent.id" or "gen_ai.agent.name" or "gen_ai.conversation.id" or "error.type"
                    or "gen_ai.usage.input_tokens" or "gen_ai.usage.output_tokens" or "gen_ai.tool.name":
                    break;
                default:
                    rest[key] = value?.DeepClone();
                    break;
            }
        }
        if (rest.Count > 0)
        {
            metadata["attributes"] = rest;
        }
        if (Text(a, "gen_ai.tool.call.id") is { } callId)
        {
            inputs["tool.call.id"] = callId;
        }

        var startedAt = DateTimeOffset.FromUnixTimeMilliseconds(span.StartNanos / 1_000_000).AddTicks(span.StartNanos % 1_000_000 / 100);
        return new TraceStepInput
        {
            TraceId = span.TraceId,
            StepId = span.SpanId,
            StepIndex = index,
            ParentStepId = span.ParentSpanId,
            StepType = stepType,
            Name = name.Length > 256 ? name[..256] : name,
            AgentId = IdFrom(Inherited(span, bySpan, "gen_ai.agent.id") ?? Inherited(span, bySpan, "gen_ai.agent.name") ?? span.Service) ?? "unknown",
            ContextId = IdFrom(Inherited(span, bySpan, "gen_ai.conversation.id")),
            StartedAt = startedAt,
            DurationMs = (span.EndNanos - span.StartNanos) / 1_000_000.0,
            Success = !failed,
            Error = failed ? new StepError(errorType ?? "error", span.StatusMessage) : null,
            Usage = a.ContainsKey("gen_ai.usage.input_tokens") || a.ContainsKey("gen_ai.usage.output_tokens")
                ? new TokenUsage(Long(a, "gen_ai.usage.input_tokens"), Long(a, "gen_ai.usage.output_tokens"))
                : null,
            Inputs = inputs.Count > 0 ? JsonSerializer.SerializeToElement(inputs) : null,
            Outputs = outputs.Count > 0 ? JsonSerializer.SerializeToElement(outputs) : null,
            Metadata = JsonSerializer.SerializeToElement(metadata),
            Tags = ["otlp"],
        };
    }

    // Agent and conversation apply to the spans under the span that names them.
    private static string? Inherited(Span span, Dictionary<(string, string), Span> bySpan, string key)
    {
        var current = span;
        for (var hops = 0; current is not null && hops < 1000; hops++)
        {
            if (Text(current.Attributes, key) is { Length: > 0 } value)
            {
                return value;
            }
            current = current.ParentSpanId is { } p && bySpan.TryGetValue((current.TraceId, p), out var parent) ? parent : null;
        }
        return null;
    }

    private static string? IdFrom(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }
        var cleaned = new StringBuilder(Math.Min(text.Length, Ids.MaxLength));
        foreach (var c in text)
        {
            if (cleaned.Length == Ids.MaxLength)
            {
                break;
            }
            cleaned.Append(char.IsLetterOrDigit(c) || c is '-' or '_' or '.' or ':' or '@' ? c : '-');
        }
        var id = cleaned.ToString();
        return Ids.IsValid(id) ? id : null;
    }

    private static string Short(string key) => key["gen_ai.".Length..];

    private static JsonNode? ParseIfJson(JsonNode? value)
    {
        if (value is JsonValue v && v.TryGetValue<string>(out var text) && text.Length > 1 && text[0] is '[' or '{')
        {
            try
            {
                return JsonNode.Parse(text);
            }
            catch (JsonException)
            {
            }
        }
        return value?.DeepClone();
    }

    private static string? Text(Dictionary<string, JsonNode?> attributes, string key) =>
        attributes.TryGetValue(key, out var value) && value is JsonValue v ? v.ToString() : null;

    private static long Long(Dictionary<string, JsonNode?> attributes, string key) =>
        attributes.TryGetValue(key, out var value) && value is JsonValue v && long.TryParse(v.ToString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? Math.Max(0, n) : 0;

    private static IEnumerable<JsonElement> Array(JsonElement parent, string name) =>
        parent.ValueKind == JsonValueKind.Object && parent.TryGetProperty(name, out var array) && array.ValueKind == JsonValueKind.Array ? array.EnumerateArray() : [];

    private static string Hex(JsonElement span, string name, int length)
    {
        var text = span.TryGetProperty(name, out var value) ? value.GetString() : null;
        if (text is null || text.Length != length || !text.All(char.IsAsciiHexDigit) || text.All(c => c == '0'))
        {
            throw new FormatException($"span {name} must be {length} hex digits (not all zero), got '{text}'");
        }
        return text.ToLowerInvariant();
    }

    private static long Nanos(JsonElement span, string name)
    {
        if (!span.TryGetProperty(name, out var value))
        {
            throw new FormatException($"span {name} is missing");
        }
        return value.ValueKind == JsonValueKind.Number ? value.GetInt64()
            : long.TryParse(value.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n
            : throw new FormatException($"span {name} is not a number");
    }

    private static int EnumValue(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Number => value.GetInt32(),
        JsonValueKind.String => value.GetString() switch
        {
            "STATUS_CODE_OK" => 1,
            "STATUS_CODE_ERROR" => 2,
            "SPAN_KIND_INTERNAL" => 1,
            "SPAN_KIND_SERVER" => 2,
            "SPAN_KIND_CLIENT" => 3,
            "SPAN_KIND_PRODUCER" => 4,
            "SPAN_KIND_CONSUMER" => 5,
            _ => 0,
        },
        _ => 0,
    };

    /// <summary>The attributes of a span or resource as JSON values (OTLP AnyValue unwrapped).</summary>
    private static Dictionary<string, JsonNode?> Attributes(JsonElement owner)
    {
        var result = new Dictionary<string, JsonNode?>(StringComparer.Ordinal);
        foreach (var attribute in Array(owner, "attributes"))
        {
            if (attribute.TryGetProperty("key", out var key) && key.GetString() is { } k && attribute.TryGetProperty("value", out var value))
            {
                result[k] = AnyValue(value, 0);
            }
        }
        return result;
    }

    private static JsonNode? AnyValue(JsonElement value, int depth)
    {
        if (depth > 16 || value.ValueKind != JsonValueKind.Object)
        {
            return null;
        }
        foreach (var p in value.EnumerateObject())
        {
            switch (p.Name)
            {
                case "stringValue":
                    return JsonValue.Create(p.Value.GetString());
                case "boolValue":
                    return JsonValue.Create(p.Value.ValueKind == JsonValueKind.True);
                case "intValue":
                    return p.Value.ValueKind == JsonValueKind.Number ? JsonValue.Create(p.Value.GetInt64())
                        : long.TryParse(p.Value.GetString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var i) ? JsonValue.Create(i) : null;
                case "doubleValue":
                    return p.Value.ValueKind == JsonValueKind.Number ? JsonValue.Create(p.Value.GetDouble())
                        : double.TryParse(p.Value.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? JsonValue.Create(d) : null;
                case "bytesValue":
                    return JsonValue.Create(p.Value.GetString());
                case "arrayValue":
                    return new JsonArray([.. Array(p.Value, "values").Select(v => AnyValue(v, depth + 1))]);
                case "kvlistValue":
                    var obj = new JsonObject();
                    foreach (var kv in Array(p.Value, "values"))
                    {
                        if (kv.TryGetProperty("key", out var kk) && kk.GetString() is { } name && kv.TryGetProperty("value", out var vv))
                        {
                            obj[name] = AnyValue(vv, depth + 1);
                        }
                    }
                    return obj;
            }
        }
        return null;
    }
}
