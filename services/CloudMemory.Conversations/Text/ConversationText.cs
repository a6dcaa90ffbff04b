using System.Text;
using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Sessions;

namespace CloudMemory.Conversations.Text;

/// <summary>How turns, checkpoints and histories are rendered as text for the model (one place, so counts match).</summary>
public static class ConversationText
{
    /// <summary>Separator between rendered messages.</summary>
    public const char Separator = '\n';

    /// <summary>Renders a user/assistant turn.</summary>
    public static string RenderTurn(string query, string answer) => $"user: {query}\nassistant: {answer}";

    /// <summary>Renders one message as <c>role: content</c>, tool calls as <c>[call name arguments]</c>.</summary>
    public static string RenderMessage(ChatMessage message)
    {
        if (message.ToolCalls is not { Count: > 0 } calls)
        {
            return $"{message.Role}: {message.Content}";
        }
        var builder = new StringBuilder(message.Role).Append(": ").Append(message.Content);
        foreach (var call in calls)
        {
            builder.Append(" [call ").Append(call.Function.Name).Append(' ').Append(call.Function.Arguments).Append(']');
        }
        return builder.ToString();
    }

    /// <summary>
    /// Token units of <see cref="RenderMessage"/>'s text, counted without building it (units are
    /// additive, so this equals <c>TokenEstimator.Units(RenderMessage(message))</c>).
    /// </summary>
    public static long MessageUnits(ChatMessage message)
    {
        var units = TokenEstimator.Units(message.Role) + 2 + TokenEstimator.Units(message.Content);
        foreach (var call in message.ToolCalls ?? [])
        {
            units += 7 + TokenEstimator.Units(call.Function.Name) + 1 + TokenEstimator.Units(call.Function.Arguments) + 1; // " [call " name ' ' arguments ']'
        }
        return units;
    }

    /// <summary>Renders messages joined by <see cref="Separator"/>.</summary>
    public static string RenderMessages(IEnumerable<ChatMessage> messages) => string.Join(Separator, messages.Select(RenderMessage));

    /// <summary>Renders one log row.</summary>
    public static string Render(LogMessage message) =>
        message.IsCheckpoint ? message.Answer
        : message.Messages is { Count: > 0 } ? RenderMessages(MessagesOf(message))
        : RenderTurn(message.Query, message.Answer);

    /// <summary>The chat messages of one turn row (its message array, or its user/assistant pair).</summary>
    public static List<ChatMessage> MessagesOf(LogMessage turn) =>
        turn.IsCheckpoint ? [new ChatMessage(ChatMessage.SystemRole, turn.Answer)]
        : turn.Messages is { Count: > 0 } messages ? messages.Select(m => m.ToChatMessage()).ToList()
        : [new ChatMessage(ChatMessage.UserRole, turn.Query), new ChatMessage(ChatMessage.AssistantRole, turn.Answer)];

    /// <summary>Renders rows joined by <see cref="Separator"/>.</summary>
    public static string RenderHistory(IReadOnlyList<LogMessage> messages)
    {
        var builder = new StringBuilder();
        foreach (var message in messages)
        {
            if (builder.Length > 0)
            {
                builder.Append(Separator);
            }
            builder.Append(Render(message));
        }
        return builder.ToString();
    }

    /// <summary>Summary followed by the recent window (the checkpoint message and the SUMMARY_N history).</summary>
    public static string ComposeSummaryAndRecent(string summary, IReadOnlyList<ChatMessage> window)
    {
        var builder = new StringBuilder();
        builder.Append("[summary] ").Append(summary.Trim());
        foreach (var message in window)
        {
            builder.Append('\n').Append(RenderMessage(message));
        }
        return builder.ToString();
    }

    /// <summary>The last <paramref name="turns"/> turns as chat messages.</summary>
    public static List<ChatMessage> WindowOf(IEnumerable<LogMessage> turnsOldestFirst, int turns)
    {
        var list = turnsOldestFirst.Where(m => !m.IsCheckpoint).ToList();
        var window = new List<ChatMessage>(Math.Min(list.Count, turns) * 2);
        foreach (var m in list.Skip(Math.Max(0, list.Count - turns)))
        {
            window.AddRange(MessagesOf(m));
        }
        return window;
    }

    /// <summary>
    /// Appends a turn to a window and trims it to <paramref name="turns"/> turns and to
    /// <paramref name="maxUnits"/> token units (never below the last turn, which is truncated with
    /// a marker when it alone is larger).
    /// </summary>
    public static void Slide(List<ChatMessage> window, IReadOnlyList<ChatMessage> turn, int turns, long maxUnits)
    {
        window.AddRange(turn);
        var groups = ContextFit.Turns(window);
        var fitted = ContextFit.Fit(null, groups.Skip(Math.Max(0, groups.Count - turns)).ToList(), maxUnits, 0, renderHistory: false);
        window.Clear();
        window.AddRange(fitted.Messages);
    }
}
