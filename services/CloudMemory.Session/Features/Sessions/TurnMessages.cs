using System.Text;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Sessions;

namespace CloudMemory.Session.Features.Sessions;

/// <summary>
/// The shape rules of a turn written as a message array: known roles, tool calls only on
/// assistant messages, every tool result answering a call (of this turn, or — checked against the
/// log by the actor — of an earlier one), and the size limit of a turn.
/// </summary>
public static class TurnMessages
{
    /// <summary>Most messages in one turn.</summary>
    public const int MaxMessages = 256;

    private static readonly HashSet<string> Roles = [ChatMessage.SystemRole, ChatMessage.UserRole, ChatMessage.AssistantRole, ChatMessage.ToolRole];

    /// <summary>Throws a 400/413 problem for a malformed array; returns the tool call ids its tool results answer but it does not make.</summary>
    public static List<string> Validate(IReadOnlyList<TurnMessage> messages, int maxTurnBytes)
    {
        if (messages.Count is 0 or > MaxMessages)
        {
            throw new ProblemException(400, "invalid-messages", $"'messages' must hold 1 to {MaxMessages} messages.");
        }
        var calls = new HashSet<string>(StringComparer.Ordinal);
        var earlier = new List<string>();
        long bytes = 0;
        for (var i = 0; i < messages.Count; i++)
        {
            var m = messages[i];
            if (m is null || !Roles.Contains(m.Role ?? ""))
            {
                throw new ProblemException(400, "invalid-message-role", $"messages[{i}].role must be system, user, assistant or tool.");
            }
            if (m.AgentCode is { Length: > 0 })
            {
                Ids.Require(m.AgentCode, $"messages[{i}].agentCode");
            }
            if (m.Name is { Length: > 64 } || m.Id is { Length: > 200 })
            {
                throw new ProblemException(400, "invalid-message", $"messages[{i}]: 'name' is at most 64 characters, 'id' at most 200.");
            }
            if (m.ToolCalls is { Count: > 0 })
            {
                if (m.Role != ChatMessage.AssistantRole)
                {
                    throw new ProblemException(400, "invalid-tool-calls", $"messages[{i}]: only assistant messages make tool calls.");
                }
                foreach (var call in m.ToolCalls)
                {
                    if (call is null || string.IsNullOrWhiteSpace(call.Id) || call.Id.Length > 200 || call.Function is null || string.IsNullOrWhiteSpace(call.Function.Name) || call.Function.Arguments is null)
                    {
                        throw new ProblemException(400, "invalid-tool-calls", $"messages[{i}]: every tool call needs an id, function.name and function.arguments (a JSON text).");
                    }
                    if (!calls.Add(call.Id))
                    {
                        throw new ProblemException(400, "invalid-tool-calls", $"messages[{i}]: tool call id '{call.Id}' is used twice in this turn.");
                    }
                    bytes += Encoding.UTF8.GetByteCount(call.Function.Arguments) + Encoding.UTF8.GetByteCount(call.Function.Name);
                }
            }
            if (m.Role == ChatMessage.ToolRole)
            {
                if (string.IsNullOrWhiteSpace(m.ToolCallId))
                {
                    throw new ProblemException(400, "missing-tool_call_id", $"messages[{i}]: a tool message needs 'tool_call_id'.");
                }
                if (!calls.Contains(m.ToolCallId))
                {
                    earlier.Add(m.ToolCallId);
                }
            }
            else if (m.ToolCallId is not null)
            {
                throw new ProblemException(400, "invalid-message", $"messages[{i}]: only tool messages carry 'tool_call_id'.");
            }
            if (string.IsNullOrEmpty(m.Content) && m.ToolCalls is not { Count: > 0 })
            {
                throw new ProblemException(400, "missing-content", $"messages[{i}]: 'content' is required (it may be empty only for an assistant message that calls tools).");
            }
            bytes += Encoding.UTF8.GetByteCount(m.Content ?? "");
            if (m.Metadata is { } metadata)
            {
                bytes += metadata.Sum(kv => kv.Key.Length + kv.Value.GetRawText().Length);
            }
        }
        if (bytes > maxTurnBytes)
        {
            throw new ProblemException(413, "turn-too-large", $"The turn is {bytes} bytes; the limit is {maxTurnBytes}.");
        }
        return earlier;
    }

    /// <summary>The text the seed's fields carry for a message array: the user messages, and the last assistant answer.</summary>
    public static (string Query, string Answer) Flatten(IReadOnlyList<TurnMessage> messages) =>
        (string.Join("\n", messages.Where(m => m.Role == ChatMessage.UserRole).Select(m => m.Content)),
         messages.LastOrDefault(m => m.Role == ChatMessage.AssistantRole && !string.IsNullOrEmpty(m.Content))?.Content ?? "");
}
