using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Conversations.Sessions;
using CloudMemory.Session.Features.Sessions;
using Dapr.Actors.Client;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CloudMemory.Session.Features.Snapshots;

/// <summary>Session snapshots over HTTP: create, list, read, diff, restore.</summary>
public static class SnapshotEndpoints
{
    /// <summary>Longest accepted label.</summary>
    public const int MaxLabelLength = 200;

    /// <summary>Maps <c>/v1/sessions/{conversationId}/snapshots</c>.</summary>
    public static IEndpointRouteBuilder MapSnapshotApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/v1/sessions/{conversationId}/snapshots").WithTags("Snapshots");
        group.MapPost("/", CreateAsync).WithName("CreateSessionSnapshot");
        group.MapGet("/", ListAsync).WithName("ListSessionSnapshots");
        group.MapGet("/{snapshotId}", GetAsync).WithName("GetSessionSnapshot");
        group.MapGet("/{snapshotId}/diff", DiffAsync).WithName("DiffSessionSnapshots");
        group.MapPost("/{snapshotId}/restore", RestoreAsync).WithName("RestoreSessionSnapshot");
        return endpoints;
    }

    /// <summary>Takes a snapshot: 201 with its id, time and the version it captured.</summary>
    public static async Task<Created<SnapshotHandle>> CreateAsync(string conversationId, CreateSnapshotRequest? request, HttpContext http, IActorProxyFactory actors, CancellationToken ct)
    {
        var tenant = Tenant.From(http);
        Ids.Require(conversationId, "conversationId");
        var label = request?.Label;
        if (label is not null && (label.Length > MaxLabelLength || label.Any(char.IsControl)))
        {
            throw new ProblemException(400, "invalid-label", $"'label' must be at most {MaxLabelLength} characters without control characters.");
        }
        var handle = (await actors.Conversation(tenant, conversationId).CreateSnapshot(new CreateSnapshotCommand(tenant, conversationId, string.IsNullOrWhiteSpace(label) ? null : label.Trim()))).ValueOrProblem();
        return TypedResults.Created($"/v1/sessions/{conversationId}/snapshots/{handle.SnapshotId}", handle);
    }

    /// <summary>The snapshots, newest first, each with its <c>compressed</c> flag.</summary>
    public static async Task<Ok<SnapshotList>> ListAsync(string conversationId, HttpContext http, IActorProxyFactory actors, CancellationToken ct)
    {
        var tenant = Tenant.From(http);
        Ids.Require(conversationId, "conversationId");
        return TypedResults.Ok((await actors.Conversation(tenant, conversationId).ListSnapshots(new ListSnapshotsCommand(tenant, conversationId))).ValueOrProblem());
    }

    /// <summary>The full snapshot (decompressed transparently).</summary>
    public static async Task<Ok<SessionSnapshot>> GetAsync(string conversationId, string snapshotId, HttpContext http, IActorProxyFactory actors, CancellationToken ct) =>
        TypedResults.Ok(await ReadAsync(Tenant.From(http), conversationId, snapshotId, actors, ct));

    /// <summary>What changed from <c>snapshotId</c> to <c>?to=</c> (another snapshot).</summary>
    public static async Task<Ok<SnapshotDiff>> DiffAsync(string conversationId, string snapshotId, string? to, HttpContext http, IActorProxyFactory actors, CancellationToken ct)
    {
        var tenant = Tenant.From(http);
        if (string.IsNullOrEmpty(to))
        {
            throw new ProblemException(400, "missing-to", "'to' (the snapshot id to compare with) is required.");
        }
        var from = await ReadAsync(tenant, conversationId, snapshotId, actors, ct);
        var other = await ReadAsync(tenant, conversationId, Ids.Require(to, "to"), actors, ct);
        return TypedResults.Ok(SnapshotDiffer.Diff(from, other));
    }

    /// <summary>Restores the session as the snapshot has it, with a new version; optionally rolls back the log position.</summary>
    public static async Task<Ok<RestoreResult>> RestoreAsync(string conversationId, string snapshotId, RestoreSnapshotRequest? request, HttpContext http, IActorProxyFactory actors, CancellationToken ct)
    {
        var tenant = Tenant.From(http);
        Ids.Require(conversationId, "conversationId");
        Ids.Require(snapshotId, "snapshotId");
        var result = (await actors.Conversation(tenant, conversationId).RestoreSnapshot(new RestoreSnapshotCommand(tenant, conversationId, snapshotId, request?.RollbackLog ?? false))).ValueOrProblem();
        http.Response.Headers.ETag = Conversations.Sessions.SessionKeys.ETag(result.Version);
        return TypedResults.Ok(result);
    }

    private static async Task<SessionSnapshot> ReadAsync(string tenant, string conversationId, string snapshotId, IActorProxyFactory actors, CancellationToken ct)
    {
        Ids.Require(conversationId, "conversationId");
        Ids.Require(snapshotId, "snapshotId");
        return (await actors.Conversation(tenant, conversationId).GetSnapshot(new GetSnapshotCommand(tenant, conversationId, snapshotId))).ValueOrProblem();
    }

}
