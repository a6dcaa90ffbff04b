using System.Text.Json;
using System.Text.Json.Serialization;

namespace CloudMemory.Contracts.Sessions;

/// <summary>How the history handed to the model is built.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<MemoryMode>))]
public enum MemoryMode
{
    /// <summary>Every message since the last checkpoint (or since the start).</summary>
    [JsonStringEnumMemberName("FULL_HISTORY")] FullHistory,

    /// <summary>The cumulative summary plus the most recent turns.</summary>
    [JsonStringEnumMemberName("SUMMARY_N")] SummaryN,
}

/// <summary>Lifecycle of a conversation's short-term memory.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<SessionStatus>))]
public enum SessionStatus
{
    /// <summary>Turns may be written.</summary>
    [JsonStringEnumMemberName("ACTIVE")] Active,

    /// <summary>Finalized: the final checkpoint is written and no more turns are accepted.</summary>
    [JsonStringEnumMemberName("FINALIZED")] Finalized,
}

/// <summary>Short-term memory of one conversation (seed 002 <c>SessionValue</c>).</summary>
public sealed record SessionValue
{
    /// <summary>Identity and bookkeeping.</summary>
    public MetaInfo Meta { get; set; } = new();

    /// <summary>Which agent runs and how far the conversation is.</summary>
    public FlowContext FlowContext { get; set; } = new();

    /// <summary>Summary, window and mode: what the next LLM call sees.</summary>
    public MessageContext MessageContext { get; set; } = new();

    /// <summary>State shared between the agents of the conversation.</summary>
    public GlobalState GlobalState { get; set; } = new();

    /// <summary>The user's profile; allergies are safety-critical.</summary>
    public UserProfile UserSnapshot { get; set; } = new();

    /// <summary>A deep copy (the value is mutable; callers must not share instances).</summary>
    public SessionValue DeepCopy() =>
        JsonSerializer.Deserialize<SessionValue>(JsonSerializer.SerializeToUtf8Bytes(this, ContractsJson.Options), ContractsJson.Options)!;
}

/// <summary>Identity and bookkeeping of a session.</summary>
public sealed record MetaInfo
{
    /// <summary>The conversation id.</summary>
    public string ConversationId { get; set; } = "";

    /// <summary>The user the conversation belongs to.</summary>
    public string UserId { get; set; } = "";

    /// <summary>Last change, unix seconds.</summary>
    public long UpdatedAt { get; set; }

    /// <summary>Creation, unix seconds.</summary>
    public long CreatedAt { get; set; }

    /// <summary>Active or finalized.</summary>
    public SessionStatus Status { get; set; } = SessionStatus.Active;

    /// <summary>Incremented by every change; the HTTP ETag is derived from it.</summary>
    public long Version { get; set; }
}

/// <summary>Flow of the conversation.</summary>
public sealed record FlowContext
{
    /// <summary>Code of the agent that handled the last turn.</summary>
    public string CurrentAgentKey { get; set; } = "";

    /// <summary>The last assistant message.</summary>
    public string LastBotMessage { get; set; } = "";

    /// <summary>Turns written so far.</summary>
    public int TurnCount { get; set; }
}

/// <summary>What the next LLM call sees.</summary>
public sealed record MessageContext
{
    /// <summary>Cumulative summary of everything before the window.</summary>
    public string Summary { get; set; } = "";

    /// <summary>The most recent messages (RecentTurns turns).</summary>
    public List<ChatMessage> WindowMessages { get; set; } = [];

    /// <summary>FULL_HISTORY or SUMMARY_N.</summary>
    public MemoryMode Mode { get; set; } = MemoryMode.FullHistory;

    /// <summary>Id of the current checkpoint message in the log; empty before the first.</summary>
    public string CheckpointMessageId { get; set; } = "";

    /// <summary>How many checkpoints were written.</summary>
    public int CheckpointCount { get; set; }

    /// <summary>How many turns the window keeps (the last checkpoint's RecentTurns).</summary>
    public int WindowTurns { get; set; }
}

/// <summary>State shared between the agents of a conversation.</summary>
public sealed record GlobalState
{
    /// <summary>Shared entities under their old name (kept equal to <see cref="Entities"/>).</summary>
    public SharedEntities? Shared { get; set; }

    /// <summary>Shared entities under their new name.</summary>
    public SharedEntities? Entities { get; set; }

    /// <summary>Private state per agent code; only that agent may write its slot.</summary>
    public Dictionary<string, JsonElement> AgentSlots { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The current intent.</summary>
    public string CurrentIntent { get; set; } = "";

    /// <summary>A tool call waiting for the user, if any.</summary>
    public PendingAction? PendingAction { get; set; }
}

/// <summary>The public protocol area the router and supervisor decide on.</summary>
public sealed record SharedEntities
{
    /// <summary>Symptoms so far.</summary>
    public string SymptomSummary { get; set; } = "";

    /// <summary>Suspected disease.</summary>
    public string Disease { get; set; } = "";

    /// <summary>Target department.</summary>
    public string TargetDept { get; set; } = "";

    /// <summary>Target doctor.</summary>
    public string TargetDoctor { get; set; } = "";

    /// <summary>Intent tag, e.g. book_ticket.</summary>
    public string IntentTag { get; set; } = "";
}

/// <summary>A tool call suspended until the user confirms.</summary>
public sealed record PendingAction
{
    /// <summary>Tool name.</summary>
    public string ToolName { get; set; } = "";

    /// <summary>Tool parameters.</summary>
    public Dictionary<string, JsonElement> ToolParams { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Why it waits.</summary>
    public string Reason { get; set; } = "";
}

/// <summary>The user's profile (seed <c>UserProfile</c>).</summary>
public sealed record UserProfile
{
    /// <summary>User id.</summary>
    public string UserId { get; set; } = "";

    /// <summary>How to address the user.</summary>
    public string Name { get; set; } = "";

    /// <summary>Allergies: safety-critical, never dropped by a summary or a write.</summary>
    public List<string> Allergies { get; set; } = [];

    /// <summary>Chronic diseases.</summary>
    public List<string> ChronicDiseases { get; set; } = [];

    /// <summary>Surgery history.</summary>
    public List<string> SurgeryHistory { get; set; } = [];

    /// <summary>Preferences.</summary>
    public List<string> Preferences { get; set; } = [];
}
