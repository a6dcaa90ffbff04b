using System.Text.Json;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.BuildingBlocks.Invocation;

namespace CloudMemory.Feedback.Features.Traces;

/// <summary>
/// What the feedback app learns from a trace it is told about: it asks the trace app (service
/// invocation with the caller's identity headers) for the trace and reads its steps. Best effort:
/// with the trace app away, or the trace unknown or without the answer, the caller stores what it
/// has without it.
/// </summary>
public sealed class TraceReader(IServiceInvoker invoker, ILogger<TraceReader> logger)
{
    /// <summary>App id of the trace service.</summary>
    public const string TraceAppId = "trace";

    /// <summary>
    /// The conversation (<c>contextId</c>) the trace's steps belong to, or null: an experience that
    /// names only its trace is erased with that conversation.
    /// </summary>
    public Task<string?> ConversationOfAsync(HttpContext caller, string traceId, CancellationToken cancellationToken) =>
        FirstAsync(caller, traceId, step =>
            step.TryGetProperty("contextId", out var context) && context.ValueKind == JsonValueKind.String && context.GetString() is { Length: > 0 } id ? id : null,
            cancellationToken);

    /// <summary>
    /// The query of step <paramref name="stepId"/> (its <c>inputs.query</c>, or its inputs when they
    /// are a string), or null: it conditions a memory feedback that names a retrieval step.
    /// </summary>
    public Task<string?> StepQueryAsync(HttpContext caller, string traceId, string stepId, CancellationToken cancellationToken) =>
        Ids.IsValid(stepId)
            ? FirstAsync(caller, traceId, step =>
                step.TryGetProperty("stepId", out var id) && id.ValueKind == JsonValueKind.String && id.GetString() == stepId && step.TryGetProperty("inputs", out var inputs)
                    ? QueryOf(inputs)
                    : null,
                cancellationToken)
            : Task.FromResult<string?>(null); // the request's own validation answers 400

    // The first value `select` finds in the trace's steps, in order.
    private async Task<string?> FirstAsync(HttpContext caller, string traceId, Func<JsonElement, string?> select, CancellationToken cancellationToken)
    {
        if (!Ids.IsValid(traceId))
        {
            return null; // the request's own validation answers 400
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
                if (select(step) is { } found)
                {
                    return found;
                }
            }
            return null;
        }
        catch (Exception ex) when (ex is HttpRequestException or JsonException or InvalidOperationException
            || (ex is TaskCanceledException && !cancellationToken.IsCancellationRequested))
        {
            logger.LogWarning(ex, "Could not read trace {TraceId}; what it would have told is left out", traceId);
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
