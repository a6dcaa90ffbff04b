using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Trace.Features.Read;
using CloudMemory.Trace.Features.Steps;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CloudMemory.Trace.Features.Analysis;

/// <summary><c>GET /v1/traces/{traceId}/analysis</c> and the failure-point analysis of one step.</summary>
public static class AnalysisEndpoints
{
    /// <summary>Maps the routes.</summary>
    public static IEndpointRouteBuilder MapAnalysisEndpoints(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/v1/traces/{traceId}/analysis", AnalyzeAsync).WithTags("Traces");
        endpoints.MapGet("/v1/traces/{traceId}/steps/{stepId}/failure", AnalyzeFailureAsync).WithTags("Traces");
        return endpoints;
    }

    /// <summary><c>GET /v1/traces/{traceId}/analysis</c>.</summary>
    public static async Task<Ok<TraceAnalysis>> AnalyzeAsync(HttpContext http, string traceId, ITraceStore store, CancellationToken cancellationToken)
    {
        var steps = await TraceReadEndpoints.LoadAsync(http, traceId, store, cancellationToken);
        var history = await store.GetDurationStatsAsync(Tenant.From(http), cancellationToken);
        return TypedResults.Ok(TraceAnalyzer.Analyze(traceId, steps, history));
    }

    /// <summary><c>GET /v1/traces/{traceId}/steps/{stepId}/failure</c>.</summary>
    public static async Task<Ok<FailureAnalysis>> AnalyzeFailureAsync(HttpContext http, string traceId, string stepId, ITraceStore store, CancellationToken cancellationToken)
    {
        var tenant = Tenant.From(http);
        var steps = await TraceReadEndpoints.LoadAsync(http, traceId, store, cancellationToken);
        var step = steps.FirstOrDefault(s => s.StepId == stepId) ?? throw new ProblemException(404, "step-not-found", $"Trace '{traceId}' has no step '{stepId}'.");
        var lastSuccess = await store.FindLastSuccessAsync(tenant, step.AgentId, step.StepType, step.Name, step.StartedAt, cancellationToken);
        var history = (await store.GetDurationStatsAsync(tenant, cancellationToken)).FirstOrDefault(h => h.StepType == step.StepType && h.AgentId == step.AgentId);
        return TypedResults.Ok(TraceAnalyzer.AnalyzeFailure(steps, step, lastSuccess, history));
    }
}
