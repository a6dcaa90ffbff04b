using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Erasure;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CloudMemory.Trace.Features.Steps;

/// <summary>The trace service's part of an erasure: the steps recorded for the named conversations (their context id).</summary>
public static class TraceErasure
{
    /// <summary>Maps <c>POST /internal/v1/erasure/trace</c>.</summary>
    public static IEndpointRouteBuilder MapTraceErasure(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost(ErasureRights.InternalRoute(TraceServiceCollectionExtensions.AppId), EraseAsync).WithTags("Erasure").ExcludeFromDescription();
        return endpoints;
    }

    /// <summary>Deletes and counts.</summary>
    public static async Task<Ok<ErasureCounts>> EraseAsync(ErasureRequest? request, HttpContext http, ITraceStore store, CancellationToken ct)
    {
        var tenant = ErasureRights.Authorize(http, request);
        var deleted = request!.ConversationIds.Count == 0 ? 0 : await store.DeleteContextsAsync(tenant, request.ConversationIds, ct);
        return TypedResults.Ok(new ErasureCounts(new Dictionary<string, long> { [ErasureCountKeys.Traces] = deleted }));
    }
}
