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

    /// <summary>Renders one log row.</summary>
    public static string Render(LogMessage message) =>
        message.IsCheckpoint ? message.Answer : RenderTurn(message.Query, message.Answer);

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
            builder.Append('\n').Append(message.Role).Append(": ").Append(message.Content);
        }
        return builder.ToString();
    }

    /// <summary>The last <paramref name="turns"/> turns as user/assistant messages.</summary>
    public static List<ChatMessage> WindowOf(IEnumerable<LogMessage> turnsOldestFirst, int turns)
    {
        var list = turnsOldestFirst.Where(m => !m.IsCheckpoint).ToList();
        var window = new List<ChatMessage>(Math.Min(list.Count, turns) * 2);
        foreach (var m in list.Skip(Math.Max(0, list.Count - turns)))
        {
            window.Add(new ChatMessage(ChatMessage.UserRole, m.Query));
            window.Add(new ChatMessage(ChatMessage.AssistantRole, m.Answer));
        }
        return window;
    }

    /// <summary>Appends a turn to a window and trims it to <paramref name="turns"/> turns.</summary>
    public static void Slide(List<ChatMessage> window, string query, string answer, int turns)
    {
        window.Add(new ChatMessage(ChatMessage.UserRole, query));
        window.Add(new ChatMessage(ChatMessage.AssistantRole, answer));
        var excess = window.Count - (turns * 2);
        if (excess > 0)
        {
            window.RemoveRange(0, excess);
        }
    }
}
