using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Traces;
using CloudMemory.Trace.Features.Read;
using CloudMemory.Trace.Features.Steps;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CloudMemory.Trace.Features.Audit;

/// <summary>The audit of one step in a report.</summary>
public sealed record StepAuditEntry(string TraceId, int StepIndex, string StepId, string AgentId, string StepType, string Name, DateTimeOffset StartedAt, StepAudit Audit);

/// <summary>Counts of an audit report.</summary>
public sealed record AuditSummary(int Steps, int StepsWithPii, int StepsWithMedical, int Violations, int Redacted, IReadOnlyDictionary<string, int> ByKind);

/// <summary>A compliance alert raised at ingest (also published on <c>trace-compliance-alert</c>).</summary>
public sealed record AuditAlert(string TraceId, string StepId, int StepIndex, IReadOnlyList<string> Violations);

/// <summary>Answer of <c>GET /v1/traces/{traceId}/audit</c>: <see cref="Status"/> is the worst step status.</summary>
public sealed record TraceAuditReport(string TraceId, string Status, AuditSummary Summary, IReadOnlyList<StepAuditEntry> Steps, IReadOnlyList<AuditAlert> Alerts);

/// <summary>Answer of <c>GET /v1/audit/steps</c>: the tenant's sensitive steps in a time range.</summary>
public sealed record TenantAuditReport(DateTimeOffset From, DateTimeOffset To, AuditSummary Summary, IReadOnlyList<StepAuditEntry> Steps, IReadOnlyList<AuditAlert> Alerts);

/// <summary>Audit reports per trace and per tenant and time range.</summary>
public static class AuditEndpoints
{
    /// <summary>Maps the routes.</summary>
    public static IEndpointRouteBuilder MapAuditEndpoints(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/v1/traces/{traceId}/audit", GetTraceAuditAsync).WithTags("Traces");
        endpoints.MapGet("/v1/audit/steps", GetTenantAuditAsync).WithTags("Traces");
        return endpoints;
    }

    /// <summary><c>GET /v1/traces/{traceId}/audit</c>.</summary>
    public static async Task<Ok<TraceAuditReport>> GetTraceAuditAsync(HttpContext http, string traceId, ITraceStore store, CancellationToken cancellationToken)
    {
        var steps = await TraceReadEndpoints.LoadAsync(http, traceId, store, cancellationToken);
        var entries = steps.Select(Entry).ToList();
        var status = steps.Any(s => s.Audit.Status == "violation") ? "violation" : steps.Any(s => s.Audit.Status == "redacted") ? "redacted" : "compliant";
        return TypedResults.Ok(new TraceAuditReport(traceId, status, Summarize(steps), entries, Alerts(steps)));
    }

    /// <summary><c>GET /v1/audit/steps?from=&amp;to=&amp;limit=</c> (default: the last 24 hours).</summary>
    public static async Task<Ok<TenantAuditReport>> GetTenantAuditAsync(HttpContext http, ITraceStore store, TimeProvider time, CancellationToken cancellationToken,
        DateTimeOffset? from = null, DateTimeOffset? to = null, int? limit = null)
    {
        var end = to ?? time.GetUtcNow();
        var start = from ?? end.AddDays(-1);
        if (start >= end)
        {
            throw new ProblemException(400, "invalid-range", "'from' must be before 'to'.");
        }
        var steps = await store.GetSensitiveStepsAsync(Tenant.From(http), start, end, TraceReadEndpoints.Limit(limit, 1000, 10_000), cancellationToken);
        return TypedResults.Ok(new TenantAuditReport(start, end, Summarize(steps), [.. steps.Select(Entry)], Alerts(steps)));
    }

    private static StepAuditEntry Entry(TraceStep s) => new(s.TraceId, s.StepIndex, s.StepId, s.AgentId, s.StepType, s.Name, s.StartedAt, s.Audit);

    private static List<AuditAlert> Alerts(IReadOnlyList<TraceStep> steps) =>
        [.. steps.Where(s => s.Audit.Status == "violation").Select(s => new AuditAlert(s.TraceId, s.StepId, s.StepIndex, s.Audit.Violations))];

    private static AuditSummary Summarize(IReadOnlyList<TraceStep> steps) => new(
        steps.Count,
        steps.Count(s => s.Audit.Sensitivity.Contains("pii")),
        steps.Count(s => s.Audit.Sensitivity.Contains("medical")),
        steps.Count(s => s.Audit.Status == "violation"),
        steps.Count(s => s.Audit.Redacted.Count > 0),
        steps.SelectMany(s => s.Audit.Kinds).GroupBy(k => k).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count()));
}
