using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Erasure;
using CloudMemory.Feedback.Features.Experiences;
using CloudMemory.Feedback.Features.Feedback;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CloudMemory.Feedback.Features.Erasure;

/// <summary>
/// The feedback app's part of an erasure: the feedback on the named conversations, and the
/// experiences recorded for those conversations or (when erasing a user) for that user, with their
/// patterns' success totals recounted without them.
/// </summary>
public static class FeedbackErasure
{
    /// <summary>Maps <c>POST /internal/v1/erasure/feedback</c>.</summary>
    public static IEndpointRouteBuilder MapFeedbackErasure(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost(ErasureRights.InternalRoute(FeedbackServiceCollectionExtensions.AppId), EraseAsync).WithTags("Erasure").ExcludeFromDescription();
        return endpoints;
    }

    /// <summary>Deletes and counts.</summary>
    public static async Task<Ok<ErasureCounts>> EraseAsync(ErasureRequest? request, HttpContext http, IFeedbackStore feedback, IExperienceStore experiences, CancellationToken ct)
    {
        var tenant = ErasureRights.Authorize(http, request);
        var conversations = request!.ConversationIds;
        var feedbackDeleted = conversations.Count == 0 ? 0 : await feedback.DeleteConversationsAsync(tenant, conversations, ct);
        var experiencesDeleted = await experiences.DeleteAsync(tenant, conversations, request.UserId, ct);
        return TypedResults.Ok(new ErasureCounts(new Dictionary<string, long>
        {
            [ErasureCountKeys.Feedback] = feedbackDeleted,
            [ErasureCountKeys.Experiences] = experiencesDeleted,
        }));
    }
}
