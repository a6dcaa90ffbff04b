namespace CloudMemory.Contracts.Sessions;

/// <summary>CreateShortMemory: <c>POST /v1/sessions</c>.</summary>
public sealed record CreateSessionRequest(string ConversationId, string? UserId, string? AgentCode = null);

/// <summary>WriteTurn: <c>POST /v1/sessions/{id}/turns</c>.</summary>
/// <param name="UserId">Sets the session's user when given.</param>
/// <param name="AgentCode">The agent that produced the response.</param>
/// <param name="UserQuery">What the user said.</param>
/// <param name="AgentResponse">What the agent answered.</param>
/// <param name="TurnId">Client-chosen id that makes retries idempotent.</param>
/// <param name="Messages">The turn as a message array (any roles, tool calls and results, metadata) instead of userQuery/agentResponse.</param>
public sealed record WriteTurnRequest(string? UserId, string? AgentCode, string? UserQuery, string? AgentResponse, string? TurnId = null,
    IReadOnlyList<TurnMessage>? Messages = null);

/// <summary>The result of WriteTurn.</summary>
public sealed record WriteTurnResult(string ConversationId, MemoryMode Mode, long UpdatedAt, int TurnCount);

/// <summary>CheckpointShortMemory / FinalizeSessionMemory body.</summary>
/// <param name="Summary">The summary; CloudMemory summarizes when it is absent.</param>
/// <param name="RecentTurns">Turns kept verbatim in the window (default 8).</param>
public sealed record CheckpointRequest(string? Summary = null, int? RecentTurns = null);

/// <summary>The result of a checkpoint or finalize.</summary>
public sealed record CheckpointResult(string ConversationId, string CheckpointMessageId, MemoryMode Mode, string Summary, int CheckpointCount, SessionStatus Status);

/// <summary>A session and its ETag.</summary>
public sealed record SessionEnvelope(SessionValue Session, string ETag);
