using CloudMemory.Contracts.Feedback;
using CloudMemory.Contracts.Sessions;

namespace CloudMemory.Contracts.Context;

/// <summary>QueryMemoryContext: <c>POST /v1/context/query</c>.</summary>
public sealed record MemoryQueryRequest(
    string? ConversationId,
    string? EnterpriseId = null,
    string? PatientId = null,
    string? Query = null,
    double? TokenThresholdRatio = null,
    int? RecentTurns = null,
    int? ModelContextWindow = null,
    bool IncludeRelevantMemories = false,
    int? TopK = null,
    int? MaxTokens = null,
    string? Format = null,
    bool IncludeRelevantExperiences = false,
    TaskContext? TaskContext = null,
    int? MaxExperienceTokens = null,
    string? Compression = null,
    bool IncludeStrategy = false,
    string? AgentId = null);

/// <summary>A long-term memory relevant to the query, with why it matched.</summary>
public sealed record RelevantMemory(string Id, string Type, string Content, string? ContextId, double Score, double SemanticScore, double LexicalScore, string Why, DateTimeOffset CreatedAt);

/// <summary>The context for the next LLM call.</summary>
public sealed record MemoryContext(
    string ConversationId,
    MemoryMode Mode,
    SessionValue Session,
    string History,
    string FullHistory,
    int EstimatedTokens,
    double TokenRatio,
    bool ShouldCheckpointSummary,
    double TokenThresholdRatio,
    int ModelContextWindow,
    IReadOnlyList<RelevantMemory>? RelevantMemories = null,
    IReadOnlyList<ChatMessage>? Messages = null,
    int ContextTokens = 0,
    int MaxTokens = 0,
    bool Truncated = false,
    IReadOnlyList<RelevantExperience>? RelevantExperiences = null,
    ContextCompression? Compression = null,
    AnthropicContext? Anthropic = null,
    AgentStrategy? Strategy = null);

/// <summary>
/// What happened before on a similar task (from the feedback app's experience database): the
/// task's intent, how similar it is, how often it succeeded, why it matched, and one line each on the
/// latest run that worked and the latest that failed (with their trace ids).
/// </summary>
public sealed record RelevantExperience(string Intent, double Similarity, double SuccessRate, int Attempts, string Reason,
    string? Worked, string? Failed, string? WorkedTraceId, string? FailedTraceId);

/// <summary>
/// One row of the durable message log: a turn (user query + agent answer, or a message array with
/// tool calls and results) or a checkpoint. <c>TurnNumber</c> is the turn count once the turn was
/// written; <c>AfterCheckpoint</c> whether a checkpoint preceded it (the mode it was written in).
/// </summary>
public sealed record LogMessage(
    string MessageId,
    string ConversationId,
    long Sequence,
    string? TurnId,
    string UserId,
    string AgentCode,
    string Query,
    string Answer,
    bool IsCheckpoint,
    int Tokens,
    DateTimeOffset CreatedAt,
    IReadOnlyList<TurnMessage>? Messages = null,
    int TurnNumber = 0,
    bool AfterCheckpoint = false)
{
    /// <summary>The query of checkpoint messages.</summary>
    public const string CheckpointQuery = "[MEMORY_CHECKPOINT]";
}

/// <summary>A page of the message log.</summary>
public sealed record MessagePage(string ConversationId, IReadOnlyList<LogMessage> Messages, long? NextAfterSequence);
