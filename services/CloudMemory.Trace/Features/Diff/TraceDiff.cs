using System.Text.Json;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Traces;
using CloudMemory.Trace.Features.Read;
using CloudMemory.Trace.Features.Steps;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CloudMemory.Trace.Features.Diff;

/// <summary>One difference between the steps at the same index of two traces.</summary>
/// <param name="StepIndex">Where.</param>
/// <param name="Field"><c>missing</c>, <c>stepType</c>, <c>agentId</c>, <c>toolChoice</c>, <c>name</c>, <c>inputHash</c>, <c>outputs</c> or <c>error</c>.</param>
/// <param name="Left">The value in the first trace.</param>
/// <param name="Right">The value in the second trace.</param>
public sealed record StepDifference(int StepIndex, string Field, JsonElement? Left, JsonElement? Right);

/// <summary>Answer of <c>GET /v1/traces/{traceId}/diff/{otherTraceId}</c>.</summary>
public sealed record TraceDiffResult(string TraceId, string OtherTraceId, int ComparedSteps, StepDifference? FirstDivergence, IReadOnlyList<StepDifference> Differences);

/// <summary>
/// Compares two runs step by step (aligned by step index). Inputs and outputs compare by their
/// canonical hashes taken at ingest (before redaction), so formatting and property order never count
/// as a difference and a diff never re-reads payloads it does not report.
/// </summary>
public static class TraceDiff
{
    /// <summary>Maps the route.</summary>
    public static IEndpointRouteBuilder MapTraceDiff(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/v1/traces/{traceId}/diff/{otherTraceId}", GetAsync).WithTags("Traces");
        return endpoints;
    }

    /// <summary><c>GET /v1/traces/{traceId}/diff/{otherTraceId}</c>.</summary>
    public static async Task<Ok<TraceDiffResult>> GetAsync(HttpContext http, string traceId, string otherTraceId, ITraceStore store, CancellationToken cancellationToken)
    {
        var left = TraceReadEndpoints.LoadAsync(http, traceId, store, cancellationToken);
        var right = TraceReadEndpoints.LoadAsync(http, otherTraceId, store, cancellationToken);
        return TypedResults.Ok(Compare(traceId, await left, otherTraceId, await right));
    }

    /// <summary>Every difference, in step order; the first is the divergence.</summary>
    public static TraceDiffResult Compare(string traceId, IReadOnlyList<TraceStep> left, string otherTraceId, IReadOnlyList<TraceStep> right)
    {
        var differences = new List<StepDifference>();
        int i = 0, j = 0, compared = 0;
        while (i < left.Count || j < right.Count)
        {
            var l = i < left.Count ? left[i] : null;
            var r = j < right.Count ? right[j] : null;
            if (r is null || (l is not null && l.StepIndex < r.StepIndex))
            {
                differences.Add(new StepDifference(l!.StepIndex, "missing", Summary(l), null));
                i++;
                continue;
            }
            if (l is null || r.StepIndex < l.StepIndex)
            {
                differences.Add(new StepDifference(r.StepIndex, "missing", null, Summary(r)));
                j++;
                continue;
            }
            compared++;
            Steps(l, r, differences);
            i++;
            j++;
        }
        return new TraceDiffResult(traceId, otherTraceId, compared, differences.Count > 0 ? differences[0] : null, differences);
    }

    /// <summary>The differences between two steps at the same index.</summary>
    public static void Steps(TraceStep l, TraceStep r, List<StepDifference> into)
    {
        var index = l.StepIndex;
        if (l.StepType != r.StepType)
        {
            into.Add(new StepDifference(index, "stepType", Json(l.StepType), Json(r.StepType)));
        }
        if (l.AgentId != r.AgentId)
        {
            into.Add(new StepDifference(index, "agentId", Json(l.AgentId), Json(r.AgentId)));
        }
        if (l.Name != r.Name)
        {
            // For tool steps the name is the tool the agent chose.
            into.Add(new StepDifference(index, l.StepType == StepTypes.Tool && r.StepType == StepTypes.Tool ? "toolChoice" : "name", Json(l.Name), Json(r.Name)));
        }
        if (l.InputHash != r.InputHash)
        {
            into.Add(new StepDifference(index, "inputHash", Json(l.InputHash), Json(r.InputHash)));
        }
        if (l.OutputHash != r.OutputHash)
        {
            into.Add(new StepDifference(index, "outputs", l.Outputs, r.Outputs));
        }
        if (l.Success != r.Success || l.Error?.Type != r.Error?.Type)
        {
            into.Add(new StepDifference(index, "error", Json(l.Error), Json(r.Error)));
        }
    }

    private static JsonElement Summary(TraceStep s) =>
        JsonSerializer.SerializeToElement(new { s.StepId, s.StepType, s.AgentId, s.Name }, ContractsJson.Options);

    private static JsonElement Json<T>(T value) => JsonSerializer.SerializeToElement(value, ContractsJson.Options);
}
