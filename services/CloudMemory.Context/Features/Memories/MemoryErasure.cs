using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Erasure;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CloudMemory.Context.Features.Memories;

/// <summary>
/// The context service's part of an erasure: every long-term memory of the user and every memory
/// derived from the named conversations (consolidated facts, indexed messages), from storage and
/// both search indexes.
/// </summary>
public static class MemoryErasure
{
    private const int Page = 1000;

    /// <summary>Maps <c>POST /internal/v1/erasure/context</c>.</summary>
    public static IEndpointRouteBuilder MapMemoryErasure(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost(ErasureRights.InternalRoute(ContextServiceCollectionExtensions.AppId), EraseAsync).WithTags("Erasure").ExcludeFromDescription();
        return endpoints;
    }

    /// <summary>Deletes and counts.</summary>
    public static async Task<Ok<ErasureCounts>> EraseAsync(ErasureRequest? request, HttpContext http, ILongTermMemory memory, IMemoryStore store, TimeProvider time, CancellationToken ct)
    {
        var tenant = ErasureRights.Authorize(http, request);
        // Turns of these conversations (and this user) still waiting to be indexed — queued here,
        // redelivered later, or read by another replica before the erasure — must not come back after
        // the deletion: the store refuses them from now on, and a write in flight is waited for.
        await store.RecordErasureAsync(tenant, request!.ConversationIds, request.UserId, time.GetUtcNow(), ct);
        long deleted = 0;
        var queries = request!.ConversationIds.Select(c => new MemoryListQuery(ContextId: c, Limit: Page)).ToList();
        if (request.UserId is { } user)
        {
            queries.Add(new MemoryListQuery(UserId: user, Limit: Page));
        }
        foreach (var query in queries)
        {
            while (true)
            {
                var batch = await memory.ListAsync(tenant, query, ct);
                foreach (var entry in batch)
                {
                    deleted += await memory.DeleteAsync(tenant, entry.Id, ct) ? 1 : 0;
                }
                if (batch.Count < Page)
                {
                    break;
                }
            }
        }
        return TypedResults.Ok(new ErasureCounts(new Dictionary<string, long> { [ErasureCountKeys.Memories] = deleted }));
    }
}
