namespace CloudMemory.Contracts.Sessions;

/// <summary>One conversation of the tenant, as <c>GET /v1/sessions</c> lists it.</summary>
/// <param name="ConversationId">The conversation.</param>
/// <param name="UserId">Its user ("" when none was given).</param>
/// <param name="Mode"><c>FULL_HISTORY</c> before the first checkpoint, <c>SUMMARY_N</c> from it on.</param>
/// <param name="TurnCount">Turns written.</param>
/// <param name="CheckpointCount">Checkpoints written.</param>
/// <param name="Tokens">Tokens of the history the next context is built from (current checkpoint message and the turns after it).</param>
/// <param name="Finalized">Whether it was finalized.</param>
/// <param name="LastAgentCode">Agent of the last turn.</param>
/// <param name="CreatedAt">Creation.</param>
/// <param name="UpdatedAt">Last activity (the listing's order, newest first).</param>
public sealed record ConversationListItem(string ConversationId, string UserId, MemoryMode Mode, int TurnCount, int CheckpointCount, long Tokens,
    bool Finalized, string LastAgentCode, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

/// <summary>A page of the tenant's conversations; pass <see cref="NextCursor"/> as <c>cursor</c> for the next (null on the last page).</summary>
public sealed record ConversationListPage(IReadOnlyList<ConversationListItem> Items, string? NextCursor);
