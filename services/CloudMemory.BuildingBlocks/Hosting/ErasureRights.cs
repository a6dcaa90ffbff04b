using CloudMemory.Contracts.Erasure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.BuildingBlocks.Hosting;

/// <summary>
/// Who may erase what, and the shape of each service's internal erase endpoint
/// (<c>POST /internal/v1/erasure/{appId}</c>, called by the session service through the service invoker).
/// </summary>
public static class ErasureRights
{
    /// <summary>Most conversations one erase call names.</summary>
    public const int MaxConversationsPerCall = 1000;

    /// <summary>The internal erase route of <paramref name="appId"/>.</summary>
    public static string InternalRoute(string appId) => $"/internal/v1/erasure/{appId}";

    /// <summary>
    /// The caller's tenant, when it may erase a whole user: with authentication on, only a tenant
    /// admin credential may (403 <c>admin-required</c>); in auth mode none every caller is trusted.
    /// </summary>
    public static string RequireTenantAdmin(HttpContext http)
    {
        var tenant = Tenant.From(http);
        return Tenant.Authenticated(http) is { IsAdmin: false }
            ? throw new ProblemException(403, "admin-required", "Erasing a user takes a tenant admin credential.")
            : tenant;
    }

    /// <summary>
    /// Validates an internal erase request and returns the caller's tenant: conversations may be
    /// erased by any caller of the tenant, a user only by a tenant admin.
    /// </summary>
    public static string Authorize(HttpContext http, ErasureRequest? request)
    {
        if (request is null)
        {
            throw new ProblemException(400, "missing-body", "A JSON body {userId, conversationIds} is required.");
        }
        if (request.ConversationIds is null || request.ConversationIds.Count > MaxConversationsPerCall)
        {
            throw new ProblemException(400, "invalid-conversationIds", $"'conversationIds' is required (at most {MaxConversationsPerCall}).");
        }
        foreach (var id in request.ConversationIds)
        {
            Ids.Require(id, "conversationIds");
        }
        if (request.UserId is not null)
        {
            Ids.Require(request.UserId, "userId");
            return RequireTenantAdmin(http);
        }
        return Tenant.From(http);
    }

    /// <summary>
    /// Maps <c>POST /internal/v1/erasure/{appId}</c> for a service whose data hangs off conversations:
    /// <paramref name="delete"/> removes what <typeparamref name="TStore"/> holds of the named
    /// conversations and the answer counts it under <paramref name="countKey"/>.
    /// </summary>
    public static IEndpointRouteBuilder MapConversationErasure<TStore>(this IEndpointRouteBuilder endpoints, string appId, string countKey,
        Func<TStore, string, IReadOnlyCollection<string>, CancellationToken, Task<long>> delete)
        where TStore : notnull
    {
        endpoints.MapPost(InternalRoute(appId), async (ErasureRequest? request, HttpContext http, CancellationToken ct) =>
        {
            var tenant = Authorize(http, request);
            var store = http.RequestServices.GetRequiredService<TStore>();
            var deleted = request!.ConversationIds.Count == 0 ? 0 : await delete(store, tenant, request.ConversationIds, ct);
            return TypedResults.Ok(new ErasureCounts(new Dictionary<string, long> { [countKey] = deleted }));
        }).WithTags("Erasure").ExcludeFromDescription();
        return endpoints;
    }
}
