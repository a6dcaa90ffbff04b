using System.Text.Json;
using System.Text.Json.Serialization;
using CloudMemory.Contracts.Sessions;

namespace CloudMemory.Contracts.Context;

/// <summary>
/// The context in the Anthropic Messages format (<c>format: "anthropic"</c>): the system prompt apart
/// (the checkpoint summary and any system messages, joined), and user/assistant messages that
/// alternate, with tool calls as <c>tool_use</c> blocks and tool results as <c>tool_result</c> blocks of a user message.
/// </summary>
/// <param name="System">The system prompt, or null.</param>
/// <param name="Messages">The messages, starting with a user message when the history has one.</param>
public sealed record AnthropicContext(string? System, IReadOnlyList<AnthropicMessage> Messages)
{
    /// <summary>Converts chat messages (OpenAI format, in order) to this format.</summary>
    public static AnthropicContext From(IReadOnlyList<ChatMessage> messages)
    {
        var system = new List<string>();
        var result = new List<AnthropicMessage>();
        foreach (var message in messages)
        {
            if (message.Role == ChatMessage.SystemRole)
            {
                system.Add(message.Content);
                continue;
            }
            var role = message.Role == ChatMessage.AssistantRole ? ChatMessage.AssistantRole : ChatMessage.UserRole;
            var blocks = new List<AnthropicBlock>();
            if (message.Role == ChatMessage.ToolRole)
            {
                blocks.Add(new AnthropicBlock("tool_result") { ToolUseId = message.ToolCallId, Content = message.Content });
            }
            else
            {
                if (message.Content.Length > 0)
                {
                    blocks.Add(new AnthropicBlock("text") { Text = message.Content });
                }
                foreach (var call in message.ToolCalls ?? [])
                {
                    blocks.Add(new AnthropicBlock("tool_use") { Id = call.Id, Name = call.Function.Name, Input = Arguments(call.Function.Arguments) });
                }
            }
            if (blocks.Count == 0)
            {
                continue;
            }
            // Consecutive messages of one role become one message: the API wants the roles to alternate.
            if (result.Count > 0 && result[^1].Role == role)
            {
                result[^1] = result[^1] with { Content = [.. result[^1].Content, .. blocks] };
            }
            else
            {
                result.Add(new AnthropicMessage(role, blocks));
            }
        }
        return new AnthropicContext(system.Count == 0 ? null : string.Join("\n\n", system), result);
    }

    // tool_use input is a JSON object; arguments that are not one are passed as {"arguments": text}.
    private static JsonElement Arguments(string arguments)
    {
        try
        {
            using var document = JsonDocument.Parse(arguments);
            if (document.RootElement.ValueKind == JsonValueKind.Object)
            {
                return document.RootElement.Clone();
            }
        }
        catch (JsonException)
        {
        }
        return JsonSerializer.SerializeToElement(new Dictionary<string, string> { ["arguments"] = arguments });
    }
}

/// <summary>A message of the Anthropic format: <c>user</c> or <c>assistant</c> with content blocks.</summary>
public sealed record AnthropicMessage(
    [property: JsonPropertyName("role")] string Role,
    [property: JsonPropertyName("content")] IReadOnlyList<AnthropicBlock> Content);

/// <summary>A content block: <c>text</c>, <c>tool_use</c> or <c>tool_result</c>.</summary>
public sealed record AnthropicBlock([property: JsonPropertyName("type")] string Type)
{
    /// <summary>Text of a text block.</summary>
    [JsonPropertyName("text"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Text { get; init; }

    /// <summary>Id of a tool_use block.</summary>
    [JsonPropertyName("id"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Id { get; init; }

    /// <summary>Tool name of a tool_use block.</summary>
    [JsonPropertyName("name"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Name { get; init; }

    /// <summary>Arguments of a tool_use block (a JSON object).</summary>
    [JsonPropertyName("input"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public JsonElement? Input { get; init; }

    /// <summary>The tool_use a tool_result answers.</summary>
    [JsonPropertyName("tool_use_id"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ToolUseId { get; init; }

    /// <summary>Result text of a tool_result block.</summary>
    [JsonPropertyName("content"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Content { get; init; }
}
