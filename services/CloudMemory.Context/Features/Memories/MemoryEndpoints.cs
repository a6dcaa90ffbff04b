using CloudMemory.BuildingBlocks.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CloudMemory.Context.Features.Memories;

/// <summary>List answer of <c>GET /v1/memories</c>.</summary>
public sealed record MemoryList(IReadOnlyList<MemoryEntry> Items);

/// <summary>The <c>/v1/memories</c> endpoint group. Handlers are static so tests can call them directly.</summary>
public static class MemoryEndpoints
{
    /// <summary>
    /// Trace-linked memory: a memory written from a traced step (<c>X-Trace-Id</c> + <c>X-Step-Id</c>,
    /// or the W3C <c>traceparent</c> an OpenTelemetry-instrumented agent sends) records that step: its
    /// trace as <c>traceId</c> (unless the body names one) and the step as metadata
    /// <c>traceStepId</c>, which <c>GET /v1/memories/{id}/provenance</c> follows.
    /// </summary>
    public static CreateMemoryRequest WithProducingStep(CreateMemoryRequest request, HttpContext http)
    {
        if (TraceLink.From(http) is not { } link || (request.TraceId is not null && request.TraceId != link.TraceId)
            || request.Metadata?.ContainsKey(TraceLink.StepIdMetadataKey) == true)
        {
            return request;
        }
        var metadata = new Dictionary<string, string>(request.Metadata ?? new Dictionary<string, string>(), StringComparer.Ordinal)
        {
            [TraceLink.StepIdMetadataKey] = link.StepId,
        };
        return request with { TraceId = link.TraceId, Metadata = metadata };
    }

    /// <summary>Maps the group.</summary>
    public static IEndpointRouteBuilder MapMemoryEndpoints(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/v1/memories").WithTags("Memories");
        group.MapPost("/", CreateAsync);
        group.MapGet("/{id}", GetAsync);
        group.MapPut("/{id}", UpdateAsync);
        group.MapDelete("/{id}", DeleteAsync);
        group.MapGet("/", ListAsync);
        group.MapPost("/search", SearchAsync);
        return endpoints;
    }

    /// <summary><c>POST /v1/memories</c>: 201 new, 200 when the explicit id exists.</summary>
    public static async Task<Results<Created<MemoryEntry>, Ok<MemoryEntry>>> CreateAsync(HttpContext http, CreateMemoryRequest request, ILongTermMemory memory, CancellationToken cancellationToken)
    {
        var (entry, created) = await memory.CreateAsync(Tenant.From(http), WithProducingStep(request, http), cancellationToken);
        return created ? TypedResults.Created($"/v1/memories/{entry.Id}", entry) : TypedResults.Ok(entry);
    }

    /// <summary><c>GET /v1/memories/{id}</c>.</summary>
    public static async Task<Results<Ok<MemoryEntry>, ProblemHttpResult>> GetAsync(HttpContext http, string id, ILongTermMemory memory, CancellationToken cancellationToken) =>
        await memory.GetAsync(Tenant.From(http), id, cancellationToken) is { } entry ? TypedResults.Ok(entry) : NotFound(id);

    /// <summary><c>PUT /v1/memories/{id}</c>.</summary>
    public static async Task<Results<Ok<MemoryEntry>, ProblemHttpResult>> UpdateAsync(HttpContext http, string id, UpdateMemoryRequest request, ILongTermMemory memory, CancellationToken cancellationToken) =>
        await memory.UpdateAsync(Tenant.From(http), id, request, cancellationToken) is { } entry ? TypedResults.Ok(entry) : NotFound(id);

    /// <summary><c>DELETE /v1/memories/{id}</c>.</summary>
    public static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(HttpContext http, string id, ILongTermMemory memory, CancellationToken cancellationToken) =>
        await memory.DeleteAsync(Tenant.From(http), id, cancellationToken) ? TypedResults.NoContent() : NotFound(id);

    /// <summary><c>GET /v1/memories?contextId=&amp;traceId=&amp;userId=&amp;type=&amp;limit=</c>.</summary>
    public static async Task<Ok<MemoryList>> ListAsync(HttpContext http, ILongTermMemory memory, CancellationToken cancellationToken, string? contextId = null, string? traceId = null, string? userId = null, string? type = null, int? limit = null)
    {
        var items = await memory.ListAsync(Tenant.From(http), new MemoryListQuery(contextId, traceId, userId, type, limit ?? 100), cancellationToken);
        return TypedResults.Ok(new MemoryList(items));
    }

    /// <summary><c>POST /v1/memories/search</c>.</summary>
    public static async Task<Ok<MemorySearchResponse>> SearchAsync(HttpContext http, MemorySearchRequest request, ILongTermMemory memory, CancellationToken cancellationToken) =>
        TypedResults.Ok(await memory.SearchAsync(Tenant.From(http), request, cancellationToken));

    private static ProblemHttpResult NotFound(string id) => Problems.NotFound("memory-not-found", $"Memory '{id}' does not exist.");
}
