using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Traces;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CloudMemory.Trace.Features.Steps;

/// <summary><c>POST /v1/traces/steps</c>. Handlers are static so tests can call them directly.</summary>
public static class StepEndpoints
{
    /// <summary>Maps the route.</summary>
    public static IEndpointRouteBuilder MapStepEndpoints(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost("/v1/traces/steps", IngestAsync).WithTags("Traces");
        return endpoints;
    }

    /// <summary>202 <c>{accepted, inserted, duplicates}</c> once every step of the batch is durable.</summary>
    public static async Task<Accepted<IngestStepsResult>> IngestAsync(HttpContext http, IngestStepsRequest request, TraceIngestor ingestor, CancellationToken cancellationToken)
    {
        var tenant = Tenant.From(http);
        var agent = http.Request.Headers[Tenant.AgentHeaderName].ToString();
        var result = await ingestor.IngestAsync(tenant, request.Steps, string.IsNullOrEmpty(agent) ? null : agent, cancellationToken);
        return TypedResults.Accepted((string?)null, result);
    }
}
