using System.Text.Json;

namespace CloudMemory.Contracts.Sessions;

/// <summary>
/// The <c>ConversationActor</c> (session app) as other apps call it: one actor per tenant and
/// conversation serializes every write to that conversation's short-term memory.
/// </summary>
public static class ConversationActorContract
{
    /// <summary>The actor type name.</summary>
    public const string ActorType = "ConversationActor";

    /// <summary>The actor id of a conversation ('~' never appears in valid ids, so the pair is unambiguous).</summary>
    public static string ActorId(string tenantId, string conversationId) => tenantId + "~" + conversationId;
}

/// <summary>The reply of an actor method: a value, or an error with an HTTP status and a stable code.</summary>
public sealed record ActorReply<T>(T? Value, int Status = 200, string? Code = null, string? Detail = null)
{
    /// <summary>True when <see cref="Value"/> is set.</summary>
    public bool IsSuccess => Code is null;

    /// <summary>A failed reply.</summary>
    public static ActorReply<T> Fail(int status, string code, string detail) => new(default, status, code, detail);
}

/// <summary>A session, its ETag, and whether this call created it.</summary>
public sealed record SessionReply(SessionValue Session, string ETag, bool Created = false);

/// <summary>Create the session (idempotent).</summary>
public sealed record CreateSessionCommand(string TenantId, string ConversationId, string UserId, string AgentCode);

/// <summary>Read the session (rebuilt from the log after expiry).</summary>
public sealed record GetSessionCommand(string TenantId, string ConversationId);

/// <summary>Replace the session under optimistic concurrency.</summary>
public sealed record SetSessionCommand(string TenantId, string ConversationId, SessionValue Session, string IfMatch, string? AgentId);

/// <summary>Append a turn; <c>TraceId</c>/<c>StepId</c> are the trace step the request was made from (they travel to the automatic checkpoint it starts).</summary>
public sealed record WriteTurnCommand(string TenantId, string ConversationId, string? UserId, string? AgentCode, string UserQuery, string AgentResponse, string? TurnId,
    IReadOnlyList<TurnMessage>? Messages = null, string? TraceId = null, string? StepId = null);

/// <summary>Write an agent's private slot.</summary>
public sealed record WriteAgentSlotCommand(string TenantId, string ConversationId, string AgentCode, JsonElement Value);

/// <summary>Apply a checkpoint whose summary was already produced.</summary>
public sealed record ApplyCheckpointCommand(
    string TenantId,
    string ConversationId,
    string MessageId,
    string ExpectedPreviousCheckpointId,
    long CoveredThroughSequence,
    string Summary,
    int RecentTurns,
    bool Final,
    bool Automatic,
    string? TraceId = null,
    string? StepId = null);
