using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Sessions;

namespace CloudMemory.Conversations.Log;

/// <summary>
/// The durable message log of conversations (seed <c>ai_message</c>): turns and checkpoint
/// messages in order, with running counts so that the token ratio is O(1) to compute.
/// Implementations: in memory and PostgreSQL; one behavioural test suite covers both.
/// </summary>
public interface IConversationLog
{
    /// <summary>Registers a conversation (idempotent); returns its stats.</summary>
    Task<ConversationStats> EnsureConversationAsync(string tenantId, string conversationId, string userId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Appends a turn. With a <see cref="TurnAppend.TurnId"/> already in the log nothing is written
    /// and the existing message comes back with <c>Duplicate = true</c>.
    /// </summary>
    Task<AppendResult> AppendTurnAsync(string tenantId, TurnAppend turn, CancellationToken cancellationToken = default);

    /// <summary>
    /// Writes a checkpoint message covering the log through <see cref="CheckpointAppend.CoveredThroughSequence"/>.
    /// Idempotent by message id; refused (returns null) when the current checkpoint is no longer
    /// <see cref="CheckpointAppend.ExpectedPreviousCheckpointId"/>.
    /// </summary>
    Task<CheckpointAppendResult?> AppendCheckpointAsync(string tenantId, CheckpointAppend checkpoint, CancellationToken cancellationToken = default);

    /// <summary>Running counts of a conversation, or null when it is unknown.</summary>
    Task<ConversationStats?> GetStatsAsync(string tenantId, string conversationId, CancellationToken cancellationToken = default);

    /// <summary>
    /// The current checkpoint message (if any) followed by the turns after what it covers, with the
    /// running counts, in one read (one round trip on PostgreSQL).
    /// </summary>
    Task<HistorySegment> ReadSinceCheckpointAsync(string tenantId, string conversationId, CancellationToken cancellationToken = default);

    /// <summary>The last <paramref name="turns"/> turns, oldest first.</summary>
    Task<IReadOnlyList<LogMessage>> ReadLastTurnsAsync(string tenantId, string conversationId, int turns, CancellationToken cancellationToken = default);

    /// <summary>A page of the log in sequence order, starting after <paramref name="afterSequence"/>.</summary>
    Task<IReadOnlyList<LogMessage>> ReadAsync(string tenantId, string conversationId, long afterSequence, int limit, CancellationToken cancellationToken = default);

    /// <summary>Stores the durable copy of a user's profile (allergies survive session expiry).</summary>
    Task SaveUserProfileAsync(string tenantId, UserProfile profile, CancellationToken cancellationToken = default);

    /// <summary>The durable copy of a user's profile, or null.</summary>
    Task<UserProfile?> GetUserProfileAsync(string tenantId, string userId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Stores the part of a session the log cannot derive (global state, agent slots, pending
    /// action, profile snapshot: <paramref name="stateJson"/>) and raises the conversation's session
    /// version to at least <paramref name="version"/>; false when the conversation is unknown.
    /// </summary>
    Task<bool> SaveSessionStateAsync(string tenantId, string conversationId, string stateJson, long version, CancellationToken cancellationToken = default);

    /// <summary>Which of <paramref name="toolCallIds"/> were made by an assistant message of the conversation.</summary>
    Task<IReadOnlySet<string>> FindToolCallsAsync(string tenantId, string conversationId, IReadOnlyCollection<string> toolCallIds, CancellationToken cancellationToken = default);

    /// <summary>
    /// The tenant's conversations that match <paramref name="filter"/>, newest activity first
    /// (<see cref="ConversationStats.UpdatedAt"/>, then conversation id, both descending), strictly
    /// after <paramref name="after"/> in that order; at most <paramref name="limit"/>.
    /// </summary>
    Task<IReadOnlyList<ConversationStats>> ListConversationsAsync(string tenantId, ConversationFilter filter, ConversationCursor? after, int limit, CancellationToken cancellationToken = default);

    /// <summary>
    /// Removes a conversation: its counts, durable session state and every message (turns and
    /// checkpoints) with their look-up keys, atomically. Null when the conversation is unknown.
    /// </summary>
    Task<ConversationDeletion?> DeleteConversationAsync(string tenantId, string conversationId, CancellationToken cancellationToken = default);

    /// <summary>Removes the durable copy of a user's profile; false when there was none.</summary>
    Task<bool> DeleteUserProfileAsync(string tenantId, string userId, CancellationToken cancellationToken = default);
}

/// <summary>
/// What the current checkpoint does not cover, and the counts; <see cref="Stats"/> is null for an
/// unknown conversation. A log may hand out the same instance until the conversation changes (the
/// in-memory log does), so what is derived from the rows is computed once per instance.
/// </summary>
public sealed class HistorySegment(ConversationStats? stats, IReadOnlyList<LogMessage> messages)
{
    // Renderings computed once, on first use (a class, not a record: these are not part of its value).
    private string? _history;
    private List<ChatMessage>? _chat;
    private long? _chatUnits;

    /// <summary>The conversation's counts (null when it is unknown).</summary>
    public ConversationStats? Stats { get; } = stats;

    /// <summary>The rows since the last checkpoint, in order (the checkpoint first when there is one).</summary>
    public IReadOnlyList<LogMessage> Messages { get; } = messages;

    /// <summary>The rows rendered as one history text (<see cref="Text.ConversationText.RenderHistory"/>).</summary>
    public string History => _history ??= Text.ConversationText.RenderHistory(Messages);

    /// <summary>The rows as chat messages, in order (<see cref="Text.ConversationText.MessagesOf"/>); shared: never change it.</summary>
    public List<ChatMessage> ChatMessages => _chat ??= Messages.SelectMany(Text.ConversationText.MessagesOf).ToList();

    /// <summary>The estimator's units of <see cref="ChatMessages"/> rendered (what context compression measures).</summary>
    public long ChatMessageUnits => _chatUnits ??= Text.TokenEstimator.Units(Text.ConversationText.RenderMessages(ChatMessages));

    /// <summary>True when the counts describe exactly these rows (a concurrent append can make them differ).</summary>
    public bool CountsMatchRows => Stats is not null && Stats.MessagesSinceCheckpoint == Messages.Count
        && Stats.CheckpointMessageId == (Messages.Count > 0 && Messages[0].IsCheckpoint ? Messages[0].MessageId : "");
}

/// <summary>A turn to append.</summary>
/// <param name="ConversationId">The conversation.</param>
/// <param name="TurnId">Client id that makes retries idempotent.</param>
/// <param name="UserId">The user.</param>
/// <param name="AgentCode">The agent that answered.</param>
/// <param name="Query">What the user said (the user messages' text for a message array).</param>
/// <param name="Answer">What the agent answered (the last assistant text for a message array).</param>
/// <param name="Messages">The turn's message array, when it was written as one.</param>
/// <param name="SessionVersion">The session version this turn makes (recorded so versions never go back).</param>
public sealed record TurnAppend(string ConversationId, string? TurnId, string UserId, string AgentCode, string Query, string Answer,
    IReadOnlyList<TurnMessage>? Messages = null, long SessionVersion = 0)
{
    /// <summary>The turn as the model sees it (what its tokens are counted on).</summary>
    public string Render() => Messages is { Count: > 0 }
        ? Text.ConversationText.RenderMessages(Messages.Select(m => m.ToChatMessage()))
        : Text.ConversationText.RenderTurn(Query, Answer);

    /// <summary>The ids of the tool calls this turn makes.</summary>
    public string[] ToolCallIds() => Messages is null ? [] : Messages.SelectMany(m => m.ToolCalls ?? []).Select(c => c.Id).ToArray();
}

/// <summary>The result of appending a turn.</summary>
/// <param name="Message">The appended message (for a duplicate, the one stored first).</param>
/// <param name="Duplicate">The turn id was already in the log: nothing was written.</param>
/// <param name="Stats">
/// The conversation's counts after the append. An append does not read back the checkpoint summary
/// or the durable session state (kilobytes each, and a turn needs neither): here
/// <see cref="ConversationStats.Summary"/> is empty and <see cref="ConversationStats.SessionState"/>
/// null in every log; <see cref="IConversationLog.GetStatsAsync"/> reads them.
/// </param>
public sealed record AppendResult(LogMessage Message, bool Duplicate, ConversationStats Stats)
{
    /// <summary>The counts after the append, without the summary and the session state.</summary>
    public ConversationStats Stats { get; init; } = Stats.Summary.Length == 0 && Stats.SessionState is null ? Stats : Stats with { Summary = "", SessionState = null };
}

/// <summary>A checkpoint to write.</summary>
/// <param name="ConversationId">The conversation.</param>
/// <param name="MessageId">Deterministic id: a retried checkpoint writes nothing new.</param>
/// <param name="ExpectedPreviousCheckpointId">The checkpoint this one replaces ("" for none).</param>
/// <param name="CoveredThroughSequence">The last log sequence the summary covers.</param>
/// <param name="Summary">The cumulative summary.</param>
/// <param name="WindowTurns">Turns kept verbatim.</param>
/// <param name="Content">The checkpoint message text (summary + recent turns).</param>
/// <param name="Final">True for finalize.</param>
/// <param name="SessionVersion">The session version this checkpoint makes.</param>
public sealed record CheckpointAppend(string ConversationId, string MessageId, string ExpectedPreviousCheckpointId, long CoveredThroughSequence, string Summary, int WindowTurns, string Content, bool Final, long SessionVersion = 0);

/// <summary>The result of writing a checkpoint.</summary>
public sealed record CheckpointAppendResult(LogMessage Message, bool Duplicate, ConversationStats Stats);

/// <summary>Running counts of one conversation.</summary>
/// <param name="ConversationId">The conversation.</param>
/// <param name="UserId">Its user.</param>
/// <param name="TurnCount">Turns written.</param>
/// <param name="CheckpointCount">Checkpoints written.</param>
/// <param name="CheckpointMessageId">The current checkpoint ("" before the first).</param>
/// <param name="CoveredThroughSequence">Last sequence the current checkpoint covers (0 without one).</param>
/// <param name="Summary">The current cumulative summary.</param>
/// <param name="WindowTurns">The current checkpoint's RecentTurns.</param>
/// <param name="UnitsSinceCheckpoint">Token units of the rendered messages since the checkpoint (checkpoint message included).</param>
/// <param name="MessagesSinceCheckpoint">How many rendered messages that is.</param>
/// <param name="LastSequence">The last sequence used.</param>
/// <param name="LastAgentCode">Agent of the last turn.</param>
/// <param name="LastAnswer">Answer of the last turn.</param>
/// <param name="Finalized">Whether the conversation was finalized.</param>
/// <param name="UpdatedAt">Last change.</param>
/// <param name="CreatedAt">Creation (stable across session expiry).</param>
/// <param name="SessionVersion">The highest session version recorded (1 at creation).</param>
/// <param name="SessionState">The durable part of the session (JSON), or null before the first save.</param>
public sealed record ConversationStats(
    string ConversationId,
    string UserId,
    int TurnCount,
    int CheckpointCount,
    string CheckpointMessageId,
    long CoveredThroughSequence,
    string Summary,
    int WindowTurns,
    long UnitsSinceCheckpoint,
    int MessagesSinceCheckpoint,
    long LastSequence,
    string LastAgentCode,
    string LastAnswer,
    bool Finalized,
    DateTimeOffset UpdatedAt,
    DateTimeOffset CreatedAt = default,
    long SessionVersion = 0,
    string? SessionState = null)
{
    /// <summary>Units of the full history (messages joined by a one-unit separator).</summary>
    public long HistoryUnits => MessagesSinceCheckpoint == 0 ? 0 : UnitsSinceCheckpoint + MessagesSinceCheckpoint - 1;
}

/// <summary>A position in a user's conversation listing (newest activity first); opaque to clients once encoded.</summary>
public sealed record ConversationCursor(DateTimeOffset UpdatedAt, string ConversationId)
{
    /// <summary>The cursor of the entry <paramref name="stats"/> (the next page starts after it).</summary>
    public static ConversationCursor After(ConversationStats stats) => new(stats.UpdatedAt, stats.ConversationId);

    /// <summary>True when <paramref name="stats"/> comes after this cursor in the listing's order.</summary>
    public bool Precedes(ConversationStats stats) =>
        stats.UpdatedAt < UpdatedAt || (stats.UpdatedAt == UpdatedAt && string.CompareOrdinal(stats.ConversationId, ConversationId) < 0);

    /// <summary>The listing's order: newest activity first, then conversation id descending (ordinal).</summary>
    public static int Compare(ConversationStats a, ConversationStats b)
    {
        var byTime = b.UpdatedAt.CompareTo(a.UpdatedAt);
        return byTime != 0 ? byTime : string.CompareOrdinal(b.ConversationId, a.ConversationId);
    }

    /// <summary>URL-safe text form.</summary>
    public string Encode() =>
        Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{UpdatedAt.UtcTicks}|{ConversationId}")).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>Parses <see cref="Encode"/>'s form; null when it is not one.</summary>
    public static ConversationCursor? TryDecode(string text)
    {
        try
        {
            var base64 = text.Replace('-', '+').Replace('_', '/');
            base64 += new string('=', (4 - (base64.Length % 4)) % 4);
            var parts = System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(base64)).Split('|', 2);
            return parts.Length == 2 && long.TryParse(parts[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var ticks)
                && ticks <= DateTimeOffset.MaxValue.UtcTicks && parts[1].Length > 0
                ? new ConversationCursor(new DateTimeOffset(ticks, TimeSpan.Zero), parts[1])
                : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }
}

/// <summary>Which of a tenant's conversations a listing returns; every criterion left null matches all.</summary>
/// <param name="UserId">Only this user's.</param>
/// <param name="Checkpointed">True: only those with a checkpoint (mode SUMMARY_N); false: only those without (FULL_HISTORY).</param>
/// <param name="ActiveSince">Only those whose last activity is at or after this instant.</param>
/// <param name="ActiveBefore">Only those whose last activity is before this instant.</param>
public sealed record ConversationFilter(string? UserId = null, bool? Checkpointed = null, DateTimeOffset? ActiveSince = null, DateTimeOffset? ActiveBefore = null)
{
    /// <summary>True when <paramref name="stats"/> matches.</summary>
    public bool Matches(ConversationStats stats) =>
        (UserId is null || stats.UserId == UserId)
        && (Checkpointed is null || (stats.CheckpointCount > 0) == Checkpointed)
        && (ActiveSince is null || stats.UpdatedAt >= ActiveSince)
        && (ActiveBefore is null || stats.UpdatedAt < ActiveBefore);
}

/// <summary>What deleting a conversation removed.</summary>
/// <param name="UserId">The conversation's user ("" when none).</param>
/// <param name="Messages">Messages removed (turns and checkpoints).</param>
/// <param name="Checkpoints">Checkpoint messages among them.</param>
public sealed record ConversationDeletion(string UserId, int Messages, int Checkpoints);
