using System.Text;
using System.Text.Json;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Conversations.Sessions;
using CloudMemory.Session.Features.Checkpoints;
using Dapr.Actors.Client;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace CloudMemory.Session.Features.Sessions;

/// <summary>The session API (seed 002 operations over HTTP).</summary>
public static class SessionEndpoints
{
    /// <summary>Maps <c>/v1/sessions</c>.</summary>
    public static IEndpointRouteBuilder MapSessionApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/v1/sessions").WithTags("Sessions");
        group.MapPost("/", CreateAsync).WithName("CreateShortMemory");
        group.MapGet("/{conversationId}", GetAsync).WithName("GetShortMemory");
        group.MapPut("/{conversationId}", SetAsync).WithName("SetShortMemory");
        group.MapPost("/{conversationId}/turns", WriteTurnAsync).WithName("WriteTurn");
        group.MapPost("/{conversationId}/checkpoints", CheckpointAsync).WithName("CheckpointShortMemory");
        group.MapPost("/{conversationId}/finalize", FinalizeAsync).WithName("FinalizeSessionMemory");
        group.MapPut("/{conversationId}/agent-slots/{agentCode}", WriteAgentSlotAsync).WithName("WriteAgentSlot");
        return endpoints;
    }

    /// <summary>CreateShortMemory: 201 when new, 200 when it existed.</summary>
    public static async Task<Results<Created<SessionValue>, Ok<SessionValue>>> CreateAsync(CreateSessionRequest? request, HttpContext http, IActorProxyFactory actors, CancellationToken ct)
    {
        var tenant = Tenant.From(http);
        if (request is null)
        {
            throw new ProblemException(400, "missing-body", "A JSON body {conversationId, userId} is required.");
        }
        var conversationId = Ids.Require(request.ConversationId, "conversationId");
        var userId = string.IsNullOrEmpty(request.UserId) ? "" : Ids.Require(request.UserId, "userId");
        var agentCode = string.IsNullOrEmpty(request.AgentCode) ? "" : Ids.Require(request.AgentCode, "agentCode");
        var reply = ActorReplies.ValueOrProblem(await actors.Conversation(tenant, conversationId).Create(new CreateSessionCommand(tenant, conversationId, userId, agentCode)));
        http.Response.Headers.ETag = reply.ETag;
        return reply.Created
            ? TypedResults.Created($"/v1/sessions/{conversationId}", reply.Session)
            : TypedResults.Ok(reply.Session);
    }

    /// <summary>GetShortMemory.</summary>
    public static async Task<Ok<SessionValue>> GetAsync(string conversationId, HttpContext http, SessionSnapshots sessions, CancellationToken ct)
    {
        var tenant = Tenant.From(http);
        Ids.Require(conversationId, "conversationId");
        var reply = ActorReplies.ValueOrProblem(await sessions.GetAsync(tenant, conversationId, ct));
        http.Response.Headers.ETag = reply.ETag;
        return TypedResults.Ok(reply.Session);
    }

    /// <summary>SetShortMemory: If-Match is required; 409 when it is stale.</summary>
    public static async Task<Ok<SessionValue>> SetAsync(string conversationId, SessionValue? session, HttpContext http, IActorProxyFactory actors, IOptions<SessionOptions> options, CancellationToken ct)
    {
        var tenant = Tenant.From(http);
        Ids.Require(conversationId, "conversationId");
        if (session is null)
        {
            throw new ProblemException(400, "missing-body", "A SessionValue JSON body is required.");
        }
        var ifMatch = http.Request.Headers.IfMatch.ToString();
        if (string.IsNullOrEmpty(ifMatch))
        {
            throw new ProblemException(428, "if-match-required", "Send If-Match with the ETag you read (or * to overwrite unconditionally).");
        }
        SessionInputRules.Validate(session);
        if (session.Meta.ConversationId.Length > 0 && session.Meta.ConversationId != conversationId)
        {
            throw new ProblemException(400, "conversation-id-mismatch", "meta.conversationId differs from the route.");
        }
        if (JsonSerializer.SerializeToUtf8Bytes(session, Contracts.ContractsJson.Options).Length > options.Value.MaxSessionBytes)
        {
            throw new ProblemException(413, "session-too-large", $"The session exceeds {options.Value.MaxSessionBytes} bytes.");
        }
        var agentId = OptionalAgent(http);
        var reply = ActorReplies.ValueOrProblem(await actors.Conversation(tenant, conversationId).Set(new SetSessionCommand(tenant, conversationId, session, ifMatch, agentId), ct));
        http.Response.Headers.ETag = reply.ETag;
        return TypedResults.Ok(reply.Session);
    }

    /// <summary>WriteTurn.</summary>
    public static async Task<Ok<WriteTurnResult>> WriteTurnAsync(string conversationId, WriteTurnRequest? request, HttpContext http, IActorProxyFactory actors, IOptions<SessionOptions> options, CancellationToken ct)
    {
        var tenant = Tenant.From(http);
        Ids.Require(conversationId, "conversationId");
        if (request is null)
        {
            throw new ProblemException(400, "missing-body", "A JSON body {userQuery, agentResponse} is required.");
        }
        string userQuery, agentResponse;
        if (request.Messages is not null)
        {
            if (request.UserQuery is not null || request.AgentResponse is not null)
            {
                throw new ProblemException(400, "conflicting-turn-shape", "Send either 'messages' or 'userQuery'/'agentResponse', not both.");
            }
            TurnMessages.Validate(request.Messages, options.Value.MaxTurnBytes);
            (userQuery, agentResponse) = TurnMessages.Flatten(request.Messages);
        }
        else
        {
            if (string.IsNullOrEmpty(request.UserQuery))
            {
                throw new ProblemException(400, "missing-userQuery", "'userQuery' is required.");
            }
            if (request.AgentResponse is null)
            {
                throw new ProblemException(400, "missing-agentResponse", "'agentResponse' is required (it may be empty).");
            }
            var bytes = Encoding.UTF8.GetByteCount(request.UserQuery) + Encoding.UTF8.GetByteCount(request.AgentResponse);
            if (bytes > options.Value.MaxTurnBytes)
            {
                throw new ProblemException(413, "turn-too-large", $"The turn is {bytes} bytes; the limit is {options.Value.MaxTurnBytes}.");
            }
            (userQuery, agentResponse) = (request.UserQuery, request.AgentResponse);
        }
        var userId = string.IsNullOrEmpty(request.UserId) ? null : Ids.Require(request.UserId, "userId");
        var agentCode = string.IsNullOrEmpty(request.AgentCode) ? null : Ids.Require(request.AgentCode, "agentCode");
        var turnId = string.IsNullOrEmpty(request.TurnId) ? null : Ids.Require(request.TurnId, "turnId");
        var producedBy = TraceLink.From(http);
        return TypedResults.Ok(ActorReplies.ValueOrProblem(await actors.Conversation(tenant, conversationId).WriteTurn(new WriteTurnCommand(tenant, conversationId, userId, agentCode, userQuery, agentResponse, turnId, request.Messages,
            producedBy?.TraceId, producedBy?.StepId))));
    }

    /// <summary>CheckpointShortMemory: with no summary, CloudMemory summarizes.</summary>
    public static Task<Ok<CheckpointResult>> CheckpointAsync(string conversationId, CheckpointRequest? request, HttpContext http, CheckpointCoordinator coordinator, CancellationToken ct) =>
        RunCheckpointAsync(conversationId, request, http, coordinator, final: false, ct);

    /// <summary>FinalizeSessionMemory: the final checkpoint; the conversation accepts no more turns.</summary>
    public static Task<Ok<CheckpointResult>> FinalizeAsync(string conversationId, CheckpointRequest? request, HttpContext http, CheckpointCoordinator coordinator, CancellationToken ct) =>
        RunCheckpointAsync(conversationId, request, http, coordinator, final: true, ct);

    /// <summary>Writes an agent's private slot; only that agent (X-Agent-Id) may.</summary>
    public static async Task<Ok<SessionValue>> WriteAgentSlotAsync(string conversationId, string agentCode, JsonElement value, HttpContext http, IActorProxyFactory actors, IOptions<SessionOptions> options, CancellationToken ct)
    {
        var tenant = Tenant.From(http);
        Ids.Require(conversationId, "conversationId");
        Ids.Require(agentCode, "agentCode");
        var agentId = OptionalAgent(http) ?? throw new ProblemException(403, "agent-id-required", $"Send {Tenant.AgentHeaderName}: {agentCode} to write this slot.");
        if (agentId != agentCode)
        {
            throw new ProblemException(403, "agent-slot-forbidden", $"Agent '{agentId}' may not write the slot of '{agentCode}'.");
        }
        if (value.GetRawText().Length > options.Value.MaxTurnBytes)
        {
            throw new ProblemException(413, "slot-too-large", $"The slot exceeds {options.Value.MaxTurnBytes} bytes.");
        }
        var reply = ActorReplies.ValueOrProblem(await actors.Conversation(tenant, conversationId).WriteAgentSlot(new WriteAgentSlotCommand(tenant, conversationId, agentCode, value)));
        http.Response.Headers.ETag = reply.ETag;
        return TypedResults.Ok(reply.Session);
    }

    private static async Task<Ok<CheckpointResult>> RunCheckpointAsync(string conversationId, CheckpointRequest? request, HttpContext http, CheckpointCoordinator coordinator, bool final, CancellationToken ct)
    {
        var tenant = Tenant.From(http);
        Ids.Require(conversationId, "conversationId");
        var recentTurns = request?.RecentTurns ?? coordinator.DefaultRecentTurns;
        if (recentTurns is < 1 or > 1000)
        {
            throw new ProblemException(400, "invalid-recentTurns", "'recentTurns' must be between 1 and 1000.");
        }
        // Trace-linked memory: the checkpoint records the trace step that asked for it (X-Trace-Id + X-Step-Id, or traceparent).
        var reply = await coordinator.RunAsync(tenant, conversationId, request?.Summary, recentTurns, final, TraceLink.From(http), ct);
        return TypedResults.Ok(ActorReplies.ValueOrProblem(reply));
    }

    private static string? OptionalAgent(HttpContext http) => Tenant.AgentFrom(http);
}
