using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.BuildingBlocks.Invocation;
using CloudMemory.Contracts.Feedback;
using CloudMemory.Feedback.Features.Feedback;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CloudMemory.Feedback.Features.Traces;

/// <summary>
/// System feedback from the trace service's analysis (seed §5: performance metrics and anomalies):
/// asks the trace app (as the caller) for <c>GET /v1/traces/{traceId}/analysis</c> and records a
/// <c>latency_ms</c> feedback on every step above its learned threshold and an <c>anomaly</c>
/// feedback on every step of a failure that was not recovered. Ids are derived from the trace and
/// step, so importing a trace again records nothing twice; the records carry only what does not
/// change as the tenant's history grows, so a repeat is the same feedback (never a conflict).
/// </summary>
public sealed class TraceAnalysisFeedback(IServiceInvoker invoker, FeedbackRecorder recorder, TraceReader traces, ILogger<TraceAnalysisFeedback> logger)
{
    /// <summary>The issue a slow step is recorded with (analysis counts it under <c>speed</c>).</summary>
    public const string SlowStepIssue = "slow step: above the learned latency threshold of its step type";

    /// <summary>Imports the analysis of the request's trace.</summary>
    public async Task<TraceFeedbackImport> ImportAsync(HttpContext caller, ImportTraceFeedbackRequest? request, CancellationToken cancellationToken)
    {
        var tenant = Tenant.From(caller);
        var traceId = Ids.Require(request?.TraceId, "traceId");
        using var analysis = await AnalysisAsync(caller, traceId, cancellationToken);
        var feedback = FeedbackOf(traceId, analysis.RootElement).ToList();
        // The conversation of the trace, so the feedback is erased with it and analysed with the agent's conversations.
        var conversationId = feedback.Count == 0 ? null : await traces.ConversationOfAsync(caller, traceId, cancellationToken);
        var items = new List<FeedbackRecord>();
        var created = 0;
        foreach (var one in feedback)
        {
            try
            {
                var (record, isNew) = await recorder.RecordAsync(tenant, one with { ConversationId = conversationId }, cancellationToken);
                items.Add(record);
                created += isNew ? 1 : 0;
            }
            catch (ProblemException e) when (e.Status == 409)
            {
                // Recorded before with the conversation the trace app did (not) name then: that record stands.
                logger.LogWarning("System feedback {Id} of trace {TraceId} was recorded before with another conversation; kept as it was", one.Id, traceId);
            }
        }
        return new TraceFeedbackImport(traceId, items, created);
    }

    /// <summary>The system feedback an analysis answer (<c>performance[].anomalies</c>, <c>failures</c>) calls for.</summary>
    public static IEnumerable<RecordFeedbackRequest> FeedbackOf(string traceId, JsonElement analysis)
    {
        foreach (var performance in Items(analysis, "performance"))
        {
            var agentId = ValidOrNull(Text(performance, "agentId"));
            var stepType = ValidOrNull(Text(performance, "stepType"));
            foreach (var anomaly in Items(performance, "anomalies"))
            {
                if (ValidOrNull(Text(anomaly, "stepId")) is not { } stepId || !anomaly.TryGetProperty("durationMs", out var duration) || !duration.TryGetDouble(out var ms))
                {
                    continue;
                }
                yield return new RecordFeedbackRequest(IdOf(traceId, stepId, "latency"), new FeedbackTarget(FeedbackTargetTypes.Step, stepId), agentId,
                    FeedbackKinds.System, "latency_ms", JsonSerializer.SerializeToElement(ms), Issues: [SlowStepIssue], StepType: stepType,
                    Metrics: new Dictionary<string, double> { ["latencyMs"] = ms }, TraceId: traceId, StepId: stepId);
            }
        }
        foreach (var failure in Items(analysis, "failures"))
        {
            if (failure.TryGetProperty("recovered", out var recovered) && recovered.ValueKind == JsonValueKind.True)
            {
                continue;
            }
            var signature = Text(failure, "signature") ?? "";
            var what = $"unrecovered failure {Text(failure, "errorType") ?? "error"} in {signature}";
            foreach (var step in Items(failure, "stepIds"))
            {
                if (step.ValueKind == JsonValueKind.String && ValidOrNull(step.GetString()) is { } stepId)
                {
                    yield return new RecordFeedbackRequest(IdOf(traceId, stepId, "failure"), new FeedbackTarget(FeedbackTargetTypes.Step, stepId),
                        ValidOrNull(signature.Split('/')[0]), FeedbackKinds.System, "anomaly", JsonSerializer.SerializeToElement(what),
                        TraceId: traceId, StepId: stepId);
                }
            }
        }
    }

    private async Task<JsonDocument> AnalysisAsync(HttpContext caller, string traceId, CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        try
        {
            using var call = new HttpRequestMessage(HttpMethod.Get, $"v1/traces/{Uri.EscapeDataString(traceId)}/analysis");
            response = await invoker.InvokeAsync(TraceReader.TraceAppId, call.WithIdentityOf(caller), cancellationToken);
        }
        catch (Exception ex) when (ex is HttpRequestException or InvalidOperationException || (ex is TaskCanceledException && !cancellationToken.IsCancellationRequested))
        {
            logger.LogWarning(ex, "The trace app did not answer the analysis of {TraceId}", traceId);
            throw new ProblemException(503, "trace-unavailable", "The trace app did not answer; retry later (an import is idempotent).");
        }
        using (response)
        {
            if (response.StatusCode == System.Net.HttpStatusCode.NotFound)
            {
                throw new ProblemException(404, "trace-not-found", $"The trace app knows no trace '{traceId}'.");
            }
            if (!response.IsSuccessStatusCode)
            {
                logger.LogWarning("The trace app answered {Status} to the analysis of {TraceId}", (int)response.StatusCode, traceId);
                throw new ProblemException(503, "trace-unavailable", $"The trace app answered {(int)response.StatusCode}; retry later (an import is idempotent).");
            }
            try
            {
                return await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(cancellationToken), cancellationToken: cancellationToken);
            }
            catch (JsonException ex)
            {
                logger.LogWarning(ex, "The analysis of {TraceId} is not JSON", traceId);
                throw new ProblemException(503, "trace-unavailable", "The trace app's answer could not be read.");
            }
        }
    }

    private static string IdOf(string traceId, string stepId, string what) =>
        "sys-" + what + "-" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(traceId + "\n" + stepId)), 0, 12).ToLowerInvariant();

    private static IEnumerable<JsonElement> Items(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Array ? value.EnumerateArray() : [];

    private static string? Text(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static string? ValidOrNull(string? id) => Ids.IsValid(id) ? id : null;
}

/// <summary>Maps <c>POST /v1/feedback/from-trace</c>.</summary>
public static class TraceAnalysisFeedbackEndpoints
{
    /// <summary>Maps the route.</summary>
    public static IEndpointRouteBuilder MapTraceAnalysisFeedback(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost("/v1/feedback/from-trace", ImportAsync).WithTags("Feedback");
        return endpoints;
    }

    /// <summary><c>POST /v1/feedback/from-trace</c> <c>{traceId}</c>: 200 with the trace's system feedback; 404 <c>trace-not-found</c>, 503 <c>trace-unavailable</c>.</summary>
    public static async Task<Ok<TraceFeedbackImport>> ImportAsync(HttpContext http, ImportTraceFeedbackRequest? request, TraceAnalysisFeedback import, CancellationToken cancellationToken) =>
        TypedResults.Ok(await import.ImportAsync(http, request, cancellationToken));
}
