using System.Text.Json;
using System.Text.Json.Serialization;

namespace CloudMemory.Contracts.Sessions;

/// <summary>
/// One message in the OpenAI chat format (<c>role</c>, <c>content</c>, <c>name</c>,
/// <c>tool_calls</c>, <c>tool_call_id</c>): what the context's <c>messages</c> hold, ready to send
/// to a chat model, and what a session's window keeps. Absent optional fields are not written.
/// </summary>
public sealed record ChatMessage(string Role, string Content)
{
    /// <summary>Role of system messages.</summary>
    public const string SystemRole = "system";

    /// <summary>Role of user messages.</summary>
    public const string UserRole = "user";

    /// <summary>Role of assistant messages.</summary>
    public const string AssistantRole = "assistant";

    /// <summary>Role of tool results.</summary>
    public const string ToolRole = "tool";

    /// <summary>The participant's name (e.g. the agent that spoke).</summary>
    [JsonPropertyName("name"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Name { get; init; }

    /// <summary>Tool calls an assistant message makes.</summary>
    [JsonPropertyName("tool_calls"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<ToolCall>? ToolCalls { get; init; }

    /// <summary>The tool call a tool message answers.</summary>
    [JsonPropertyName("tool_call_id"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ToolCallId { get; init; }

    /// <summary>Value equality that includes the tool calls (records compare lists by reference).</summary>
    public bool Equals(ChatMessage? other) =>
        other is not null && Role == other.Role && Content == other.Content && Name == other.Name && ToolCallId == other.ToolCallId
        && (ToolCalls ?? []).SequenceEqual(other.ToolCalls ?? []);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Role, Content, Name, ToolCallId, ToolCalls?.Count ?? 0);
}

/// <summary>A tool call of an assistant message (OpenAI: <c>{id, type: "function", function: {name, arguments}}</c>).</summary>
public sealed record ToolCall(string Id, ToolFunction Function, string Type = "function");

/// <summary>The function a tool call invokes; <paramref name="Arguments"/> is a JSON text, as in the OpenAI format.</summary>
public sealed record ToolFunction(string Name, string Arguments);

/// <summary>
/// A message of a turn as WriteTurn accepts it: the OpenAI chat fields plus metadata that is
/// stored with it (never sent to a model).
/// </summary>
public sealed record TurnMessage
{
    /// <summary>system, user, assistant or tool.</summary>
    public string Role { get; init; } = "";

    /// <summary>The text (may be empty for an assistant message that only calls tools).</summary>
    public string? Content { get; init; }

    /// <summary>Participant name.</summary>
    [JsonPropertyName("name")]
    public string? Name { get; init; }

    /// <summary>Tool calls of an assistant message.</summary>
    [JsonPropertyName("tool_calls")]
    public IReadOnlyList<ToolCall>? ToolCalls { get; init; }

    /// <summary>For a tool message: the id of the call it answers (in this turn or an earlier one).</summary>
    [JsonPropertyName("tool_call_id")]
    public string? ToolCallId { get; init; }

    /// <summary>Client id of the message.</summary>
    public string? Id { get; init; }

    /// <summary>The agent that produced the message.</summary>
    public string? AgentCode { get; init; }

    /// <summary>When the message was produced (client clock).</summary>
    public DateTimeOffset? CreatedAt { get; init; }

    /// <summary>Free-form metadata stored with the message.</summary>
    public Dictionary<string, JsonElement>? Metadata { get; init; }

    /// <summary>The message in the OpenAI chat format.</summary>
    public ChatMessage ToChatMessage() => new(Role, Content ?? "")
    {
        Name = Name,
        ToolCalls = ToolCalls is { Count: > 0 } ? ToolCalls : null,
        ToolCallId = ToolCallId,
    };
}
