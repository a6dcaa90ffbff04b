using System.Text.Json;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.BuildingBlocks.Invocation;

namespace CloudMemory.Feedback.Features.Traces;

/// <summary>
/// What the feedback app learns from a trace it is told about: it asks the trace app (service
/// invocation with the caller's identity headers) for the trace's steps, or for the one step it
/// needs. Best effort: with the trace app away, or the trace or step unknown or without the answer,
/// the caller stores what it has without it.
/// </summary>
public sealed class TraceReader(IServiceInvoker invoker, ILogger<TraceReader> logger)
{
    /// <summary>App id of the trace service.</summary>
    public const string TraceAppId = "trace";

    /// <summary>
    /// The conversation (<c>contextId</c>) the trace's steps belong to, or null: an experience that
    /// names only its trace is erased with that conversation. Asks the trace app for that id alone
    /// (<c>GET /v1/traces/{traceId}/conversation</c>: the first step of the trace that names one), not
    /// for the trace.
    /// </summary>
    public Task<string?> ConversationOfAsync(HttpContext caller, string traceId, CancellationToken cancellationToken) =>
        Ids.IsValid(traceId)
            ? ReadAsync(caller, traceId, $"v1/traces/{Uri.EscapeDataString(traceId)}/conversation", answer =>
                answer.TryGetProperty("contextId", out var context) && context.ValueKind == JsonValueKind.String
                    && context.GetString() is { Length: > 0 } id ? id : null,
                cancellationToken)
            : Task.FromResult<string?>(null); // the request's own validation answers 400

    /// <summary>
    /// The query of step <paramref name="stepId"/> (its <c>inputs.query</c>, or its inputs when they
    /// are a string), or null: it conditions a memory feedback that names a retrieval step. Reads that
    /// one step (<c>GET /v1/traces/{traceId}/steps/{stepId}</c>), not the trace.
    /// </summary>
    public Task<string?> StepQueryAsync(HttpContext caller, string traceId, string stepId, CancellationToken cancellationToken) =>
        Ids.IsValid(traceId) && Ids.IsValid(stepId)
            ? ReadAsync(caller, traceId, $"v1/traces/{Uri.EscapeDataString(traceId)}/steps/{Uri.EscapeDataString(stepId)}", step =>
                step.TryGetProperty("inputs", out var inputs) ? QueryOf(inputs) : null,
                cancellationToken)
            : Task.FromResult<string?>(null); // the request's own validation answers 400

    // What `select` finds in the trace app's JSON answer at `path`; null when it answers anything but 2xx.
    private async Task<string?> ReadAsync(HttpContext caller, string traceId, string path, Func<JsonElement, string?> select, CancellationToken cancellationToken)
    {
        try
        {
            using var call = new HttpRequestMessage(HttpMethod.Get, path);
            using var response = await invoker.InvokeAsync(TraceAppId, call.WithIdentityOf(caller), cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                return null;
            }
            await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
            using var answer = await JsonDocument.ParseAsync(body, cancellationToken: cancellationToken);
            return answer.RootElement.ValueKind == JsonValueKind.Object ? select(answer.RootElement) : null;
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
