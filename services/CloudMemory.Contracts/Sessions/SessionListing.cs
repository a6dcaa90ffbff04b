namespace CloudMemory.Contracts.Sessions;

/// <summary>One conversation of a user, as <c>GET /v1/users/{userId}/sessions</c> lists it.</summary>
/// <param name="ConversationId">The conversation.</param>
/// <param name="UserId">Its user.</param>
/// <param name="TurnCount">Turns written.</param>
/// <param name="CheckpointCount">Checkpoints written.</param>
/// <param name="Finalized">Whether it was finalized.</param>
/// <param name="LastAgentCode">Agent of the last turn.</param>
/// <param name="CreatedAt">Creation.</param>
/// <param name="UpdatedAt">Last activity (the listing's order, newest first).</param>
public sealed record SessionSummary(string ConversationId, string UserId, int TurnCount, int CheckpointCount, bool Finalized, string LastAgentCode,
    DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

/// <summary>A page of a user's conversations; pass <see cref="NextCursor"/> as <c>cursor</c> for the next (null on the last page).</summary>
public sealed record SessionPage(IReadOnlyList<SessionSummary> Items, string? NextCursor);
