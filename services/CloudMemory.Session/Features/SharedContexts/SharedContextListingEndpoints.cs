using CloudMemory.BuildingBlocks.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CloudMemory.Session.Features.SharedContexts;

/// <summary>
/// <c>GET /v1/shared-contexts</c>: the caller's tenant's shared contexts, headers only (who is in
/// it, mode, version, links). Fields, proposals and the change feed stay readable by members only.
/// </summary>
public static class SharedContextListingEndpoints
{
    /// <summary>Maps the route.</summary>
    public static IEndpointRouteBuilder MapSharedContextListingApi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/v1/shared-contexts", ListAsync).WithTags("SharedContexts").WithName("ListSharedContexts");
        return endpoints;
    }

    /// <summary><c>GET /v1/shared-contexts?member=&amp;fromConversation=&amp;limit=&amp;cursor=</c>: most recently updated first.</summary>
    public static async Task<Ok<SharedContextListPage>> ListAsync(HttpContext http, SharedContextStore store, CancellationToken ct,
        string? member = null, string? fromConversation = null, int? limit = null, string? cursor = null)
    {
        var tenant = Tenant.From(http);
        var size = Paging.Limit(limit);
        var filter = new SharedContextFilter(
            string.IsNullOrEmpty(member) ? null : Ids.Require(member, "member"),
            string.IsNullOrEmpty(fromConversation) ? null : Ids.Require(fromConversation, "fromConversation"));
        var after = Paging.After(cursor, SharedContextCursor.TryDecode);
        var docs = await store.ListAsync(tenant, filter, after, size + 1, ct);
        var items = docs.Take(size).Select(d => new SharedContextListItem(d.Id, d.Owner, d.Mode, d.Status,
            d.Members.Count(m => m.Status == "active"), d.Members.Count(m => m.Status != "active"), d.Version, d.Seq,
            d.Links.ConversationId, d.Links.TraceId, d.CreatedAt, d.UpdatedAt)).ToList();
        return TypedResults.Ok(new SharedContextListPage(items, docs.Count > size ? SharedContextCursor.After(docs[size - 1]).Encode() : null));
    }
}

/// <summary>One shared context as the listing shows it.</summary>
/// <param name="Id">The shared context.</param>
/// <param name="Owner">The agent that created it.</param>
/// <param name="Mode">Collaboration mode.</param>
/// <param name="Status"><c>open</c> or <c>closed</c>.</param>
/// <param name="Members">Active members.</param>
/// <param name="Invited">Invited members not yet joined.</param>
/// <param name="Version">Version of its fields.</param>
/// <param name="Seq">Last change-log seq.</param>
/// <param name="ConversationId">The conversation it was created from, if any.</param>
/// <param name="TraceId">The trace it belongs to, if any.</param>
/// <param name="CreatedAt">Unix seconds.</param>
/// <param name="UpdatedAt">Unix seconds (the listing's order, newest first).</param>
public sealed record SharedContextListItem(string Id, string Owner, string Mode, string Status, int Members, int Invited, long Version, long Seq,
    string? ConversationId, string? TraceId, long CreatedAt, long UpdatedAt);

/// <summary>A page of the listing; pass <see cref="NextCursor"/> as <c>cursor</c> for the next (null on the last page).</summary>
public sealed record SharedContextListPage(IReadOnlyList<SharedContextListItem> Items, string? NextCursor);
