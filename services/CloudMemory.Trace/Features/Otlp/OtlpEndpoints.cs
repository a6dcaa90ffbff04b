using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Traces;
using CloudMemory.Trace.Features.Read;
using CloudMemory.Trace.Features.Steps;

namespace CloudMemory.Trace.Features.Otlp;

/// <summary>OTLP/HTTP JSON in (<c>POST /v1/traces</c>) and out (<c>GET /v1/traces/{traceId}/otlp</c>).</summary>
public static class OtlpEndpoints
{
    /// <summary>Maps the routes.</summary>
    public static IEndpointRouteBuilder MapOtlpEndpoints(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost("/v1/traces", ExportAsync).WithTags("Traces");
        endpoints.MapGet("/v1/traces/{traceId}/otlp", GetAsOtlpAsync).WithTags("Traces");
        return endpoints;
    }

    /// <summary>
    /// An OTLP <c>ExportTraceServiceRequest</c> in JSON: 200 with an <c>ExportTraceServiceResponse</c>
    /// once the mapped steps are durable; spans that cannot be mapped are counted in
    /// <c>partialSuccess.rejectedSpans</c>.
    /// </summary>
    public static async Task<IResult> ExportAsync(HttpContext http, ITraceStore store, TraceIngestor ingestor, CancellationToken cancellationToken)
    {
        var tenant = Tenant.From(http);
        if (http.Request.ContentType is not { } contentType || !contentType.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
        {
            return Problems.Create(415, "unsupported-media-type", "Unsupported media type.", "Send OTLP/HTTP with the JSON encoding (content-type: application/json); protobuf is not accepted here.");
        }
        JsonElement body;
        try
        {
            body = (await JsonDocument.ParseAsync(http.Request.Body, cancellationToken: cancellationToken)).RootElement;
        }
        catch (JsonException ex)
        {
            return Problems.BadRequest("malformed-json", ex.Message);
        }
        var mapped = await OtlpJsonImport.MapAsync(body, async traceId => (await store.GetMaxStepIndexAsync(tenant, traceId, cancellationToken) ?? -1) + 1);
        var prepared = new List<TenantStep>(mapped.Steps.Count);
        var rejected = mapped.Rejected;
        var firstError = mapped.FirstError;
        foreach (var step in mapped.Steps)
        {
            try
            {
                prepared.AddRange(ingestor.Prepare(tenant, [step], null));
            }
            catch (ProblemException ex)
            {
                rejected++;
                firstError ??= ex.Message;
            }
        }
        if (prepared.Count > 0)
        {
            await ingestor.StoreAsync([.. prepared], cancellationToken);
        }
        var response = new JsonObject();
        if (rejected > 0)
        {
            response["partialSuccess"] = new JsonObject { ["rejectedSpans"] = rejected, ["errorMessage"] = firstError };
        }
        return Results.Json(response, statusCode: 200);
    }

    /// <summary><c>GET /v1/traces/{traceId}/otlp</c>: the steps as OTLP JSON spans with GenAI attributes, ready to send to any OTLP collector.</summary>
    public static async Task<IResult> GetAsOtlpAsync(HttpContext http, string traceId, ITraceStore store, CancellationToken cancellationToken)
    {
        var steps = await TraceReadEndpoints.LoadAsync(http, traceId, store, cancellationToken);
        return Results.Json(Export(traceId, steps));
    }

    /// <summary>The <c>ExportTraceServiceRequest</c> of a trace.</summary>
    public static JsonObject Export(string traceId, IReadOnlyList<TraceStep> steps)
    {
        var otelTraceId = IsHex(traceId, 32) ? traceId.ToLowerInvariant() : HashHex(traceId, 16);
        var spans = new JsonArray();
        foreach (var s in steps)
        {
            var attributes = new JsonArray
            {
                Attribute("gen_ai.operation.name", Operation(s.StepType)),
                Attribute("gen_ai.agent.id", s.AgentId),
                Attribute("cloudmemory.trace_id", s.TraceId),
                Attribute("cloudmemory.step_id", s.StepId),
                Attribute("cloudmemory.step_index", s.StepIndex),
                Attribute("cloudmemory.step_type", s.StepType),
                Attribute("cloudmemory.step_name", s.Name),
            };
            if (s.ContextId is not null)
            {
                attributes.Add(Attribute("gen_ai.conversation.id", s.ContextId));
            }
            if (s.StepType == StepTypes.Tool)
            {
                attributes.Add(Attribute("gen_ai.tool.name", s.Name));
                AddJson(attributes, "gen_ai.tool.call.arguments", s.Inputs);
                AddJson(attributes, "gen_ai.tool.call.result", s.Outputs);
            }
            else
            {
                if (s.StepType == StepTypes.Llm)
                {
                    attributes.Add(Attribute("gen_ai.request.model", s.Name));
                }
                AddJson(attributes, "gen_ai.input.messages", s.Inputs);
                AddJson(attributes, "gen_ai.output.messages", s.Outputs);
            }
            if (s.Usage is { } usage)
            {
                attributes.Add(Attribute("gen_ai.usage.input_tokens", usage.InputTokens));
                attributes.Add(Attribute("gen_ai.usage.output_tokens", usage.OutputTokens));
            }
            if (!s.Success)
            {
                attributes.Add(Attribute("error.type", s.Error?.Type ?? "error"));
            }
            var start = s.StartedAt.ToUnixTimeMilliseconds() * 1_000_000 + s.StartedAt.Ticks % TimeSpan.TicksPerMillisecond * 100;
            var span = new JsonObject
            {
                ["traceId"] = otelTraceId,
                ["spanId"] = SpanId(s.TraceId, s.StepId),
                ["name"] = $"{Operation(s.StepType)} {s.Name}",
                ["kind"] = s.StepType is StepTypes.Llm or StepTypes.Tool or StepTypes.Retrieval ? 3 : 1,
                ["startTimeUnixNano"] = start.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["endTimeUnixNano"] = (start + (long)(s.DurationMs * 1_000_000)).ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["attributes"] = attributes,
                ["status"] = s.Success ? new JsonObject { ["code"] = 0 } : new JsonObject { ["code"] = 2, ["message"] = s.Error?.Message ?? "" },
            };
            if (s.ParentStepId is not null)
            {
                span["parentSpanId"] = SpanId(s.TraceId, s.ParentStepId);
            }
            spans.Add(span);
        }
        return new JsonObject
        {
            ["resourceSpans"] = new JsonArray
            {
                new JsonObject
                {
                    ["resource"] = new JsonObject { ["attributes"] = new JsonArray { Attribute("service.name", "cloudmemory-trace") } },
                    ["scopeSpans"] = new JsonArray
                    {
                        new JsonObject { ["scope"] = new JsonObject { ["name"] = TraceTelemetry.Name }, ["spans"] = spans },
                    },
                },
            },
        };
    }

    private static string Operation(string stepType) => stepType switch
    {
        StepTypes.Llm => "chat",
        StepTypes.Tool => "execute_tool",
        StepTypes.Retrieval => "embeddings",
        StepTypes.Handoff or StepTypes.Plan => "invoke_agent",
        _ => stepType,
    };

    private static string SpanId(string traceId, string stepId) => IsHex(stepId, 16) ? stepId.ToLowerInvariant() : HashHex(traceId + "\n" + stepId, 8);

    private static bool IsHex(string value, int length) => value.Length == length && value.All(char.IsAsciiHexDigit);

    private static string HashHex(string value, int bytes) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(value)).AsSpan(0, bytes));

    private static void AddJson(JsonArray attributes, string key, JsonElement? value)
    {
        if (value is { } v)
        {
            attributes.Add(Attribute(key, v.GetRawText()));
        }
    }

    private static JsonObject Attribute(string key, string value) => new() { ["key"] = key, ["value"] = new JsonObject { ["stringValue"] = value } };

    private static JsonObject Attribute(string key, long value) => new()
    {
        ["key"] = key,
        ["value"] = new JsonObject { ["intValue"] = value.ToString(System.Globalization.CultureInfo.InvariantCulture) },
    };
}
