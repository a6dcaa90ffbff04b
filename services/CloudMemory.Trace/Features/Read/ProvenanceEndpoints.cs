using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Traces;
using CloudMemory.Trace.Features.Steps;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CloudMemory.Trace.Features.Read;

/// <summary>Where a memory entry came from: the steps that recorded producing it (with their inputs and outputs) and the steps above them.</summary>
public sealed record MemoryProvenance(string MemoryId, IReadOnlyList<TraceStep> Steps, IReadOnlyList<TraceStep> Ancestors);

/// <summary>Answer of <c>DELETE /v1/traces?olderThan=</c>.</summary>
public sealed record RetentionResult(DateTimeOffset OlderThan, long Deleted);

/// <summary>Trace-linked memory and retention.</summary>
public static class ProvenanceEndpoints
{
    /// <summary>Maps the routes.</summary>
    public static IEndpointRouteBuilder MapProvenanceEndpoints(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/v1/memories/{id}/provenance", GetProvenanceAsync).WithTags("Traces");
        endpoints.MapDelete("/v1/traces", DeleteOlderThanAsync).WithTags("Traces");
        return endpoints;
    }

    /// <summary>
    /// <c>GET /v1/memories/{id}/provenance</c>: steps that listed the memory id in <c>memoryIds</c>,
    /// oldest first, and their ancestors in their traces (empty when nothing recorded producing it).
    /// </summary>
    public static async Task<Ok<MemoryProvenance>> GetProvenanceAsync(HttpContext http, string id, ITraceStore store, CancellationToken cancellationToken)
    {
        var tenant = Tenant.From(http);
        Ids.Require(id, "memoryId");
        var steps = await store.GetMemoryProvenanceAsync(tenant, id, cancellationToken);
        var ancestors = new List<TraceStep>();
        foreach (var trace in steps.GroupBy(s => s.TraceId))
        {
            var all = (await store.GetTraceAsync(tenant, trace.Key, cancellationToken)).ToDictionary(s => s.StepId, StringComparer.Ordinal);
            var seen = new HashSet<string>(trace.Select(s => s.StepId), StringComparer.Ordinal);
            foreach (var step in trace)
            {
                for (var p = step.ParentStepId; p is not null && all.TryGetValue(p, out var parent) && seen.Add(p); p = parent.ParentStepId)
                {
                    ancestors.Add(parent);
                }
            }
        }
        return TypedResults.Ok(new MemoryProvenance(id, steps, ancestors));
    }

    /// <summary><c>DELETE /v1/traces?olderThan=</c>: retention by age for the caller's tenant.</summary>
    public static async Task<Ok<RetentionResult>> DeleteOlderThanAsync(HttpContext http, ITraceStore store, CancellationToken cancellationToken, DateTimeOffset? olderThan = null)
    {
        var cutoff = olderThan ?? throw new ProblemException(400, "missing-olderThan", "'olderThan' (an RFC 3339 time) is required.");
        return TypedResults.Ok(new RetentionResult(cutoff, await store.DeleteOlderThanAsync(Tenant.From(http), cutoff, cancellationToken)));
    }
}

/// <summary>Deletes steps older than each configured tenant's retention (<c>CloudMemory:Trace:Retention:Tenants</c>).</summary>
public sealed class RetentionSweeper(ITraceStore store, Microsoft.Extensions.Options.IOptions<TraceOptions> options, TimeProvider time, ILogger<RetentionSweeper> logger) : BackgroundService
{
    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var retention = options.Value.Retention;
        if (retention.Tenants.Count == 0)
        {
            return;
        }
        using var timer = new PeriodicTimer(retention.SweepInterval, time);
        do
        {
            foreach (var (tenant, age) in retention.Tenants)
            {
                try
                {
                    var deleted = await store.DeleteOlderThanAsync(tenant, time.GetUtcNow() - age, stoppingToken);
                    if (deleted > 0)
                    {
                        logger.LogInformation("Retention deleted {Count} trace steps of tenant {Tenant}", deleted, tenant);
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    logger.LogWarning(ex, "Retention sweep of tenant {Tenant} failed", tenant);
                }
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
