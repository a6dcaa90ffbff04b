using System.Security.Cryptography;
using System.Text.Json;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts;
using CloudMemory.Conversations.Sessions;
using Dapr.Actors.Client;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CloudMemory.Session.Features.SharedContexts;

/// <summary>
/// The shared-context API. Every route needs the calling agent (<c>X-Agent-Id</c>) and works within
/// the caller's tenant; changes go through <see cref="SharedContextActor"/>, reads straight to the store.
/// </summary>
public static class SharedContextEndpoints
{
    /// <summary>Most field changes in one request.</summary>
    public const int MaxChanges = 256;

    /// <summary>How often a quiet change stream re-reads the store (a missed notification still arrives).</summary>
    public static readonly TimeSpan StreamPoll = TimeSpan.FromSeconds(5);


    /// <summary>Maps <c>/v1/shared-contexts</c>.</summary>
    public static IEndpointRouteBuilder MapSharedContextApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/v1/shared-contexts").WithTags("SharedContexts");
        group.MapPost("/", CreateAsync).WithName("CreateSharedContext");
        group.MapGet("/{id}", GetAsync).WithName("GetSharedContext");
        group.MapPatch("/{id}", UpdateAsync).WithName("UpdateSharedContext");
        group.MapPost("/{id}/members", AddMemberAsync).WithName("JoinOrInviteSharedContext");
        group.MapPut("/{id}/members/{agentId}", ChangeRoleAsync).WithName("ChangeSharedContextRole");
        group.MapDelete("/{id}/members/{agentId}", RemoveMemberAsync).WithName("LeaveSharedContext");
        group.MapPost("/{id}/close", CloseAsync).WithName("CloseSharedContext");
        group.MapPost("/{id}/rollback", RollbackAsync).WithName("RollbackSharedContext");
        group.MapGet("/{id}/changes", ChangesAsync).WithName("SharedContextChanges");
        group.MapPost("/{id}/turn/pass", PassTurnAsync).WithName("PassSharedContextTurn");
        group.MapPost("/{id}/claims", ClaimAsync).WithName("ClaimSharedContextFields");
        group.MapDelete("/{id}/claims/{claimId}", ReleaseClaimAsync).WithName("ReleaseSharedContextClaim");
        group.MapPost("/{id}/proposals", ProposeAsync).WithName("ProposeSharedContextChange");
        group.MapGet("/{id}/proposals/{proposalId}", GetProposalAsync).WithName("GetSharedContextProposal");
        group.MapPost("/{id}/proposals/{proposalId}/votes", VoteAsync).WithName("VoteOnSharedContextProposal");
        return endpoints;
    }

    /// <summary>Creates a shared context: 201 when new, 200 for an identical retry.</summary>
    public static async Task<IResult> CreateAsync(CreateSharedContextRequest? request, HttpContext http, IActorProxyFactory actors, SessionSnapshots sessions, TimeProvider time, CancellationToken ct)
    {
        var (tenant, agent) = Caller(http);
        if (request is null)
        {
            throw new ProblemException(400, "missing-body", "A JSON body {mode, policy, members, fields} is required.");
        }
        var id = request.Id is null ? "sc-" + Guid.NewGuid().ToString("N")[..16] : Ids.Require(request.Id, "id");
        Dictionary<string, JsonElement>? fromConversation = null;
        if (request.FromConversation is not null)
        {
            var conversationId = Ids.Require(request.FromConversation, "fromConversation");
            var reply = await sessions.GetAsync(tenant, conversationId, ct);
            if (!reply.IsSuccess)
            {
                throw new ProblemException(reply.Status, reply.Code!, reply.Detail ?? reply.Code!);
            }
            var global = reply.Value!.Session.GlobalState;
            fromConversation = SharedContextFactory.FieldsOf(JsonSerializer.SerializeToElement(global.Entities ?? global.Shared, ContractsJson.Options));
        }
        var hash = Convert.ToHexStringLower(SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(request with { Id = id }, ContractsJson.Options)));
        var command = new CreateSharedContextCommand(tenant, id, agent, request with { Id = id }, fromConversation, hash);
        SharedContextFactory.Build(command, time.GetUtcNow()); // a bad request is refused here, before the actor
        var result = await actors.SharedContext(tenant, id).Create(command);
        if (!result.IsSuccess)
        {
            return Problem(result);
        }
        return result.Value!.Created
            ? TypedResults.Created($"/v1/shared-contexts/{id}", result.Value.Ack)
            : TypedResults.Ok(result.Value.Ack);
    }

    /// <summary>The shared context (members only); <c>?version=</c> gives the fields as they were at that version.</summary>
    public static async Task<IResult> GetAsync(string id, long? version, HttpContext http, SharedContextStore store, CancellationToken ct)
    {
        var (tenant, agent) = Caller(http);
        var doc = await ReadableAsync(store, tenant, Ids.Require(id, "id"), agent, ct);
        var fields = doc.Fields.ToDictionary(f => f.Key, f => new SharedFieldView(f.Value.Value, f.Value.Conflict, f.Value.Version, f.Value.Schema, f.Value.AppendOnly), StringComparer.Ordinal);
        var shownVersion = doc.Version;
        if (version is { } wanted && wanted != doc.Version)
        {
            if (wanted < 1 || wanted > doc.Version)
            {
                throw new ProblemException(404, "version-not-found", $"Shared context '{id}' has versions 1 to {doc.Version}.");
            }
            var past = await store.FieldsAtAsync(doc, wanted, ct);
            fields = past.ToDictionary(f => f.Key, f => fields[f.Key] with { Value = f.Value, Version = Math.Min(fields[f.Key].Version, wanted) }, StringComparer.Ordinal);
            shownVersion = wanted;
        }
        http.Response.Headers.ETag = $"\"{shownVersion}\"";
        return TypedResults.Ok(new SharedContextView(doc.Id, doc.Owner, doc.Mode, doc.Policy, doc.Status, shownVersion, doc.Seq, fields, doc.Members, doc.Links,
            doc.TurnHolder, doc.TurnOrder, doc.Lead, doc.Voting, doc.Claims, doc.Proposals, doc.CreatedAt, doc.UpdatedAt));
    }

    /// <summary>A versioned update: 200 {version, seq}; 409 with the current value and version; 403.</summary>
    public static async Task<IResult> UpdateAsync(string id, UpdateSharedContextRequest? request, HttpContext http, IActorProxyFactory actors, CancellationToken ct)
    {
        var (tenant, agent) = Caller(http);
        Ids.Require(id, "id");
        if (request is null)
        {
            throw new ProblemException(400, "missing-body", "A JSON body {baseVersion, changes} is required.");
        }
        if (request.BaseVersion is not { } baseVersion || baseVersion < 0)
        {
            throw new ProblemException(400, "missing-baseVersion", "'baseVersion' (the version you read) is required.");
        }
        CheckChanges(request.Changes);
        CheckOptionalId(request.ChangeId, "changeId");
        var (traceId, stepId) = StepOf(http, request.TraceId, request.StepId);
        return Result(await actors.SharedContext(tenant, id).Update(new UpdateSharedContextCommand(tenant, id, agent, request with { TraceId = traceId, StepId = stepId })));
    }

    /// <summary>Join (agentId = caller) or invite (an admin adds another agent).</summary>
    public static async Task<IResult> AddMemberAsync(string id, MemberSpec? member, HttpContext http, IActorProxyFactory actors, TimeProvider time, CancellationToken ct)
    {
        var (tenant, agent) = Caller(http);
        Ids.Require(id, "id");
        var spec = SharedContextFactory.Member(member ?? new MemberSpec(agent), time.GetUtcNow());
        return Result(await actors.SharedContext(tenant, id).AddMember(new MemberCommand(tenant, id, agent, spec.AgentId, member?.Role, spec.Fields)));
    }

    /// <summary>Changes a member's role (admin).</summary>
    public static async Task<IResult> ChangeRoleAsync(string id, string agentId, ChangeRoleRequest? request, HttpContext http, IActorProxyFactory actors, TimeProvider time, CancellationToken ct)
    {
        var (tenant, agent) = Caller(http);
        Ids.Require(id, "id");
        if (request?.Role is null)
        {
            throw new ProblemException(400, "missing-role", "'role' is required.");
        }
        var spec = SharedContextFactory.Member(new MemberSpec(agentId, request.Role, request.Fields), time.GetUtcNow());
        return Result(await actors.SharedContext(tenant, id).ChangeRole(new MemberCommand(tenant, id, agent, spec.AgentId, spec.Role, spec.Fields)));
    }

    /// <summary>Leave (agentId = caller) or remove (admin).</summary>
    public static async Task<IResult> RemoveMemberAsync(string id, string agentId, HttpContext http, IActorProxyFactory actors, CancellationToken ct)
    {
        var (tenant, agent) = Caller(http);
        Ids.Require(id, "id");
        Ids.Require(agentId, "agentId");
        return Result(await actors.SharedContext(tenant, id).RemoveMember(new MemberCommand(tenant, id, agent, agentId, null, null)));
    }

    /// <summary>Closes (admin).</summary>
    public static async Task<IResult> CloseAsync(string id, HttpContext http, IActorProxyFactory actors, CancellationToken ct)
    {
        var (tenant, agent) = Caller(http);
        Ids.Require(id, "id");
        return Result(await actors.SharedContext(tenant, id).Close(new SimpleCommand(tenant, id, agent)));
    }

    /// <summary>Rolls the fields back to a version, as a new version (admin).</summary>
    public static async Task<IResult> RollbackAsync(string id, RollbackRequest? request, HttpContext http, IActorProxyFactory actors, CancellationToken ct)
    {
        var (tenant, agent) = Caller(http);
        Ids.Require(id, "id");
        if (request?.ToVersion is not { } toVersion)
        {
            throw new ProblemException(400, "missing-toVersion", "'toVersion' is required.");
        }
        var (traceId, stepId) = StepOf(http, request.TraceId, request.StepId);
        return Result(await actors.SharedContext(tenant, id).Rollback(new SimpleCommand(tenant, id, agent, StepId: stepId, Number: toVersion, TraceId: traceId)));
    }

    /// <summary>
    /// The ordered change log after <c>afterSeq</c> (members only). With <c>Accept: text/event-stream</c>
    /// it is a server-sent event stream (event id = seq) that stays open for live changes and resumes
    /// from <c>Last-Event-ID</c>.
    /// </summary>
    public static async Task<IResult> ChangesAsync(string id, long? afterSeq, int? limit, HttpContext http, SharedContextStore store, SharedContextFeed feed, CancellationToken ct)
    {
        var (tenant, agent) = Caller(http);
        var doc = await ReadableAsync(store, tenant, Ids.Require(id, "id"), agent, ct);
        var after = afterSeq ?? 0;
        var lastEventId = http.Request.Headers["Last-Event-ID"].ToString();
        if (lastEventId.Length > 0 && !long.TryParse(lastEventId, out after))
        {
            throw new ProblemException(400, "invalid-last-event-id", "Last-Event-ID is the seq of the last change received.");
        }
        if (after < 0)
        {
            throw new ProblemException(400, "invalid-afterSeq", "'afterSeq' is not negative.");
        }
        if (http.Request.Headers.Accept.ToString().Contains("text/event-stream", StringComparison.OrdinalIgnoreCase))
        {
            await StreamAsync(http, store, feed, doc, agent, after, ct);
            return Results.Empty;
        }
        var take = limit ?? 100;
        if (take is < 1 or > 1000)
        {
            throw new ProblemException(400, "invalid-limit", "'limit' is between 1 and 1000.");
        }
        var changes = after >= doc.Seq ? [] : await store.ChangesAsync(tenant, id, after + 1, Math.Min(doc.Seq, after + take), ct);
        return TypedResults.Ok(new SharedContextChangePage(id, after, doc.Seq, changes));
    }

    /// <summary>Sequential mode: passes the turn token.</summary>
    public static async Task<IResult> PassTurnAsync(string id, HttpContext http, IActorProxyFactory actors, CancellationToken ct)
    {
        var (tenant, agent) = Caller(http);
        Ids.Require(id, "id");
        return Result(await actors.SharedContext(tenant, id).PassTurn(new SimpleCommand(tenant, id, agent)));
    }

    /// <summary>Parallel mode: claims fields.</summary>
    public static async Task<IResult> ClaimAsync(string id, ClaimRequest? request, HttpContext http, IActorProxyFactory actors, CancellationToken ct)
    {
        var (tenant, agent) = Caller(http);
        Ids.Require(id, "id");
        if (request?.Fields is not { Count: > 0 } fields)
        {
            throw new ProblemException(400, "missing-fields", "'fields' lists the fields to claim.");
        }
        foreach (var field in fields)
        {
            Ids.Require(field, "field");
        }
        var ttl = request.TtlSeconds ?? 60;
        if (ttl is < 1 or > 3600)
        {
            throw new ProblemException(400, "invalid-ttlSeconds", "'ttlSeconds' is between 1 and 3600.");
        }
        return Result(await actors.SharedContext(tenant, id).Claim(new ClaimCommand(tenant, id, agent, fields.Distinct().ToList(), ttl)));
    }

    /// <summary>Parallel mode: releases a claim.</summary>
    public static async Task<IResult> ReleaseClaimAsync(string id, string claimId, HttpContext http, IActorProxyFactory actors, CancellationToken ct)
    {
        var (tenant, agent) = Caller(http);
        Ids.Require(id, "id");
        Ids.Require(claimId, "claimId");
        return Result(await actors.SharedContext(tenant, id).ReleaseClaim(new SimpleCommand(tenant, id, agent, Target: claimId)));
    }

    /// <summary>Hierarchical and democratic modes: proposes changes (201).</summary>
    public static async Task<IResult> ProposeAsync(string id, ProposalRequest? request, HttpContext http, IActorProxyFactory actors, CancellationToken ct)
    {
        var (tenant, agent) = Caller(http);
        Ids.Require(id, "id");
        if (request is null)
        {
            throw new ProblemException(400, "missing-body", "A JSON body {baseVersion, changes} is required.");
        }
        if (request.BaseVersion is not >= 0)
        {
            throw new ProblemException(400, "missing-baseVersion", "'baseVersion' (the version you read) is required.");
        }
        CheckChanges(request.Changes);
        CheckOptionalId(request.ProposalId, "proposalId");
        var (traceId, stepId) = StepOf(http, request.TraceId, request.StepId);
        request = request with { TraceId = traceId, StepId = stepId };
        if (request.DeadlineSeconds is < 1 or > 7 * 24 * 3600)
        {
            throw new ProblemException(400, "invalid-deadlineSeconds", "'deadlineSeconds' is between 1 and 604800.");
        }
        var reply = await actors.SharedContext(tenant, id).Propose(new ProposeCommand(tenant, id, agent, request));
        return reply.IsSuccess ? TypedResults.Created($"/v1/shared-contexts/{id}/proposals/{reply.Value!.ProposalId}", reply.Value) : Problem(reply);
    }

    /// <summary>A proposal.</summary>
    public static async Task<IResult> GetProposalAsync(string id, string proposalId, HttpContext http, IActorProxyFactory actors, CancellationToken ct)
    {
        var (tenant, agent) = Caller(http);
        Ids.Require(id, "id");
        Ids.Require(proposalId, "proposalId");
        return Result(await actors.SharedContext(tenant, id).GetProposal(new VoteCommand(tenant, id, agent, proposalId, false)));
    }

    /// <summary>Votes on a proposal (hierarchical: the lead decides).</summary>
    public static async Task<IResult> VoteAsync(string id, string proposalId, VoteRequest? request, HttpContext http, IActorProxyFactory actors, CancellationToken ct)
    {
        var (tenant, agent) = Caller(http);
        Ids.Require(id, "id");
        Ids.Require(proposalId, "proposalId");
        if (request?.Approve is not { } approve)
        {
            throw new ProblemException(400, "missing-approve", "'approve' (true or false) is required.");
        }
        return Result(await actors.SharedContext(tenant, id).Vote(new VoteCommand(tenant, id, agent, proposalId, approve)));
    }

    private static async Task StreamAsync(HttpContext http, SharedContextStore store, SharedContextFeed feed, SharedContextDocument doc, string agent, long after, CancellationToken ct)
    {
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        await http.Response.WriteAsync(": connected\n\n", ct);
        await http.Response.Body.FlushAsync(ct);
        try
        {
            await foreach (var change in SharedContextFollower.FollowAsync(store, feed, doc.TenantId, doc.Id, after, StreamPoll, ct))
            {
                var json = JsonSerializer.Serialize(change, ContractsJson.Options);
                await http.Response.WriteAsync($"id: {change.Seq}\nevent: {change.Kind}\ndata: {json}\n\n", ct);
                await http.Response.Body.FlushAsync(ct);
                if (change.Kind is "member-left" or "member-removed" && change.Detail is { } detail
                    && detail.TryGetProperty("agentId", out var removed) && removed.GetString() == agent)
                {
                    break; // no longer a member: the stream ends with the entry that says so
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // the follower disconnected
        }
    }

    private static async Task<SharedContextDocument> ReadableAsync(SharedContextStore store, string tenant, string id, string agent, CancellationToken ct)
    {
        var doc = await store.GetAsync(tenant, id, ct) ?? throw new ProblemException(404, "shared-context-not-found", $"Shared context '{id}' is unknown.");
        return doc.ActiveMember(agent) is null
            ? throw new ProblemException(403, "not-a-member", $"'{agent}' is not a member of shared context '{id}'.")
            : doc;
    }

    private static (string Tenant, string Agent) Caller(HttpContext http)
    {
        var tenant = Tenant.From(http);
        var agent = http.Request.Headers[Tenant.AgentHeaderName].ToString();
        if (string.IsNullOrEmpty(agent))
        {
            throw new ProblemException(403, "agent-id-required", $"Send {Tenant.AgentHeaderName}: the calling agent.");
        }
        return (tenant, Ids.Require(agent, "agentId"));
    }

    private static void CheckChanges(Dictionary<string, FieldChange>? changes)
    {
        if (changes is not { Count: > 0 })
        {
            throw new ProblemException(400, "missing-changes", "'changes' maps field names to {set|add|remove|increment}.");
        }
        if (changes.Count > MaxChanges)
        {
            throw new ProblemException(400, "too-many-changes", $"At most {MaxChanges} fields change in one request.");
        }
        foreach (var (name, change) in changes)
        {
            Ids.Require(name, "field");
            FieldRules.Operation(name, change);
        }
    }

    // The trace step a change is made from: the body's stepId/traceId, else the request's X-Trace-Id + X-Step-Id or traceparent.
    private static (string? TraceId, string? StepId) StepOf(HttpContext http, string? traceId, string? stepId)
    {
        CheckOptionalId(traceId, "traceId");
        CheckOptionalId(stepId, "stepId");
        var link = TraceLink.From(http);
        return (traceId ?? link?.TraceId, stepId ?? link?.StepId);
    }

    private static void CheckOptionalId(string? value, string name)
    {
        if (value is not null)
        {
            Ids.Require(value, name);
        }
    }


    private static IResult Result<T>(SharedReply<T> reply) => reply.IsSuccess ? TypedResults.Ok(reply.Value) : Problem(reply);

    private static ProblemHttpResult Problem<T>(SharedReply<T> reply) =>
        Problems.Create(reply.Status, reply.Code!, reply.Status switch
        {
            400 => "The request is invalid.",
            403 => "Forbidden.",
            404 => "Not found.",
            409 => "Conflict.",
            413 => "The request is too large.",
            _ => "The request failed.",
        }, reply.Detail, reply.Extensions?.ToDictionary(e => e.Key, e => (object?)e.Value));
}
