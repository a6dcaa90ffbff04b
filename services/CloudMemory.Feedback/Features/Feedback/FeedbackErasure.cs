using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Erasure;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CloudMemory.Feedback.Features.Feedback;

/// <summary>The feedback service's part of an erasure: the feedback recorded on the named conversations.</summary>
public static class FeedbackErasure
{
    /// <summary>Maps <c>POST /internal/v1/erasure/feedback</c>.</summary>
    public static IEndpointRouteBuilder MapFeedbackErasure(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost(ErasureRights.InternalRoute(FeedbackServiceCollectionExtensions.AppId), EraseAsync).WithTags("Erasure").ExcludeFromDescription();
        return endpoints;
    }

    /// <summary>Deletes and counts.</summary>
    public static async Task<Ok<ErasureCounts>> EraseAsync(ErasureRequest? request, HttpContext http, IFeedbackStore store, CancellationToken ct)
    {
        var tenant = ErasureRights.Authorize(http, request);
        var deleted = request!.ConversationIds.Count == 0 ? 0 : await store.DeleteConversationsAsync(tenant, request.ConversationIds, ct);
        return TypedResults.Ok(new ErasureCounts(new Dictionary<string, long> { [ErasureCountKeys.Feedback] = deleted }));
    }
}
