using System.Text.Json;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.BuildingBlocks.Invocation;
using CloudMemory.Contracts;

namespace CloudMemory.Feedback.Features.Experiences;

/// <summary>
/// The conversation of an experience that names only its trace: asks the trace app (service
/// invocation with the caller's identity headers) for the trace and takes its steps' <c>contextId</c>,
/// so erasing that conversation erases the experience too. Best effort: with the trace app away,
/// the trace unknown or without a context, the experience is stored without a conversation.
/// </summary>
public sealed class TraceConversationLookup(IServiceInvoker invoker, ILogger<TraceConversationLookup> logger)
{
    /// <summary>App id of the trace service.</summary>
    public const string TraceAppId = "trace";

    /// <summary>The conversation (context id) the trace's steps belong to, or null.</summary>
    public async Task<string?> FindAsync(HttpContext caller, string traceId, CancellationToken cancellationToken)
    {
        if (!Ids.IsValid(traceId))
        {
            return null; // the experience's own validation answers 400
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
                if (step.TryGetProperty("contextId", out var context) && context.ValueKind == JsonValueKind.String && context.GetString() is { Length: > 0 } id)
                {
                    return id;
                }
            }
            return null;
        }
        catch (Exception ex) when (ex is HttpRequestException or JsonException or InvalidOperationException
            || (ex is TaskCanceledException && !cancellationToken.IsCancellationRequested))
        {
            logger.LogWarning(ex, "Could not read trace {TraceId}; the experience is stored without its conversation", traceId);
            return null;
        }
    }
}
