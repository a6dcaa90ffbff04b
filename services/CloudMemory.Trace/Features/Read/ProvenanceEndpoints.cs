using System.Text.Json;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.BuildingBlocks.Invocation;
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
    /// <c>GET /v1/memories/{id}/provenance</c>: the step the entry itself records as its producer
    /// (its <c>traceId</c> and <c>traceStepId</c>, stamped from the writing request's trace headers)
    /// and the steps that listed the memory id in <c>memoryIds</c>, oldest first, with their ancestors
    /// in their traces (empty when nothing recorded producing it).
    /// </summary>
    public static async Task<Ok<MemoryProvenance>> GetProvenanceAsync(HttpContext http, string id, ITraceStore store, IServiceInvoker invoker, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        var tenant = Tenant.From(http);
        Ids.Require(id, "memoryId");
        var linked = await store.GetMemoryProvenanceAsync(tenant, id, cancellationToken);
        var steps = linked.ToList();
        if (await ProducingStepAsync(http, id, invoker, loggers, cancellationToken) is { } link
            && !steps.Any(s => s.TraceId == link.TraceId && s.StepId == link.StepId)
            && (await store.GetTraceAsync(tenant, link.TraceId, cancellationToken)).FirstOrDefault(s => s.StepId == link.StepId) is { } producer)
        {
            steps.Insert(0, producer);
        }
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

    // The entry's own record of its producer, read from the context app as the caller (so another
    // tenant's entry is never read); without the context app the links in memoryIds still answer.
    private static async Task<TraceLink?> ProducingStepAsync(HttpContext http, string id, IServiceInvoker invoker, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"v1/memories/{Uri.EscapeDataString(id)}");
            using var response = await invoker.InvokeAsync("context", request.WithIdentityOf(http), cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                return null;
            }
            using var entry = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken));
            var root = entry.RootElement;
            return root.TryGetProperty("traceId", out var trace) && trace.ValueKind == JsonValueKind.String
                && root.TryGetProperty("metadata", out var metadata) && metadata.ValueKind == JsonValueKind.Object
                && metadata.TryGetProperty(TraceLink.StepIdMetadataKey, out var step) && step.ValueKind == JsonValueKind.String
                ? new TraceLink(trace.GetString()!, step.GetString()!)
                : null;
        }
        catch (Exception ex) when (ex is HttpRequestException or InvalidOperationException or JsonException
            || (ex is TaskCanceledException && !cancellationToken.IsCancellationRequested))
        {
            loggers.CreateLogger(typeof(ProvenanceEndpoints)).LogWarning(ex, "Reading memory {MemoryId} from the context app failed; provenance from memoryIds links only", id);
            return null;
        }
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
