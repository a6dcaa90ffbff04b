using System.Text.Json;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.BuildingBlocks.Invocation;

namespace CloudMemory.Feedback.Features.Feedback;

/// <summary>
/// The query of the retrieval step a feedback names (<c>traceId</c> + <c>stepId</c>) when the
/// feedback carries none: asks the trace app (service invocation with the caller's identity headers)
/// for the trace and takes the step's <c>inputs.query</c> (or its inputs when they are a string).
/// Best effort: with the trace app away, the step unknown or without a query, the feedback is stored
/// without one (and then counts for every query, as before queries were kept).
/// </summary>
public sealed class TraceStepQueryLookup(IServiceInvoker invoker, ILogger<TraceStepQueryLookup> logger)
{
    /// <summary>App id of the trace service.</summary>
    public const string TraceAppId = "trace";

    /// <summary>The step's query, or null.</summary>
    public async Task<string?> FindAsync(HttpContext caller, string traceId, string stepId, CancellationToken cancellationToken)
    {
        if (!Ids.IsValid(traceId) || !Ids.IsValid(stepId))
        {
            return null; // the feedback's own validation answers 400
        }
        try
        {
            using var call = new HttpRequestMessage(HttpMethod.Get, $"v1/traces/{Uri.EscapeDataString(traceId)}");
            using var response = await invoker.InvokeAsync(TraceAppId, call.WithIdentityOf(caller), cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                return null;
            }
            await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
            using var trace = await JsonDocument.ParseAsync(body, cancellationToken: cancellationToken);
            if (!trace.RootElement.TryGetProperty("steps", out var steps) || steps.ValueKind != JsonValueKind.Array)
            {
                return null;
            }
            foreach (var step in steps.EnumerateArray())
            {
                if (step.TryGetProperty("stepId", out var id) && id.ValueKind == JsonValueKind.String && id.GetString() == stepId)
                {
                    return step.TryGetProperty("inputs", out var inputs) ? QueryOf(inputs) : null;
                }
            }
            return null;
        }
        catch (Exception ex) when (ex is HttpRequestException or JsonException or InvalidOperationException
            || (ex is TaskCanceledException && !cancellationToken.IsCancellationRequested))
        {
            logger.LogWarning(ex, "Could not read trace {TraceId}; the feedback is stored without the query of step {StepId}", traceId, stepId);
            return null;
        }
    }

    private static string? QueryOf(JsonElement inputs) => inputs.ValueKind switch
    {
        JsonValueKind.String => NonEmpty(inputs.GetString()),
        JsonValueKind.Object when inputs.TryGetProperty("query", out var query) && query.ValueKind == JsonValueKind.String => NonEmpty(query.GetString()),
        _ => null,
    };

    private static string? NonEmpty(string? text) => string.IsNullOrWhiteSpace(text) ? null : text;
}
