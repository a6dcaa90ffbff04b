using CloudMemory.Contracts.Sessions;

namespace CloudMemory.Conversations.Text;

/// <summary>A context cut to a token budget.</summary>
/// <param name="Summary">The summary as kept (null when there is none).</param>
/// <param name="Messages">The chat messages, the summary first as a system message.</param>
/// <param name="Window">The turns' messages only (what a session's window holds).</param>
/// <param name="History">The same as text: the seed's <c>[summary] …</c> and <c>role: content</c> lines.</param>
/// <param name="Units">Token units of the larger of the two renderings.</param>
/// <param name="Trimmed">True when turns were left out or text was truncated.</param>
public sealed record FittedContext(string? Summary, List<ChatMessage> Messages, List<ChatMessage> Window, string History, long Units, bool Trimmed)
{
    /// <summary>Estimated tokens.</summary>
    public int Tokens => TokenEstimator.TokensFromUnits(Units);
}

/// <summary>
/// Cuts a context to a token budget: the summary (within its own budget), then whole turns from
/// the newest back while they fit; never fewer than the last turn, which is truncated with a marker
/// when it alone does not fit. A tool result whose call was left out is left out too, so the
/// messages stay valid for a chat model.
/// </summary>
public static class ContextFit
{
    /// <summary>Prefix of the summary's system message.</summary>
    public const string SummaryPrefix = "Summary of the earlier conversation: ";

    /// <summary>Appended to truncated text.</summary>
    public const string TruncationMarker = " …[truncated]";

    private static readonly long MarkerUnits = TokenEstimator.Units(TruncationMarker);

    /// <summary>Units of a budget in tokens.</summary>
    public static long UnitsOf(int tokens) => (long)tokens * TokenEstimator.UnitsPerToken;

    /// <summary>The summary as the system message that opens <c>messages</c>.</summary>
    public static ChatMessage SummaryMessage(string summary) => new(ChatMessage.SystemRole, SummaryPrefix + summary.Trim());

    /// <summary>Splits a flat window into turns: a turn starts at each user message.</summary>
    public static List<List<ChatMessage>> Turns(IReadOnlyList<ChatMessage> window)
    {
        var turns = new List<List<ChatMessage>>();
        foreach (var message in window)
        {
            if (turns.Count == 0 || message.Role == ChatMessage.UserRole)
            {
                turns.Add([]);
            }
            turns[^1].Add(message);
        }
        return turns;
    }

    /// <summary>
    /// Fits <paramref name="summary"/> (null in FULL_HISTORY) and <paramref name="turns"/> (oldest
    /// first) into <paramref name="budgetUnits"/>, the summary's text into <paramref name="summaryBudgetUnits"/> of it.
    /// </summary>
    /// <remarks>With <paramref name="renderHistory"/> false the text history is left empty (a session window needs only the messages).</remarks>
    public static FittedContext Fit(string? summary, IReadOnlyList<IReadOnlyList<ChatMessage>> turns, long budgetUnits, long summaryBudgetUnits, bool renderHistory = true)
    {
        var trimmed = false;
        long used = 0;
        long summaryUnits = 0;
        if (summary is not null)
        {
            summary = summary.Trim();
            var kept = TruncateToUnits(summary, summaryBudgetUnits);
            trimmed |= kept.Length != summary.Length;
            summary = kept;
            summaryUnits = TokenEstimator.Units(summary);
            used = SummaryLineOverhead + summaryUnits;
        }

        var first = turns.Count;
        for (var i = turns.Count - 1; i >= 0; i--)
        {
            var turnUnits = TurnUnits(turns[i]) + (used > 0 ? 1 : 0);
            if (used + turnUnits > budgetUnits)
            {
                break;
            }
            used += turnUnits;
            first = i;
        }
        var window = new List<ChatMessage>();
        if (first == turns.Count && turns.Count > 0)
        {
            // Not even the last turn fits: it is kept, truncated to what is left.
            window.AddRange(TruncateTurn(turns[^1], budgetUnits - used - (used > 0 ? 1 : 0)));
            trimmed = true;
            first = turns.Count - 1;
        }
        else
        {
            for (var i = first; i < turns.Count; i++)
            {
                window.AddRange(turns[i]);
            }
        }
        trimmed |= first > 0;
        window = DropOrphanToolResults(window);

        var messages = new List<ChatMessage>(window.Count + 1);
        string history;
        // Both renderings are counted from the parts (units are additive), not rendered twice to be counted.
        long windowUnits = Math.Max(0, window.Count - 1);
        foreach (var message in window)
        {
            windowUnits += ConversationText.MessageUnits(message);
        }
        long units;
        if (summary is not null)
        {
            messages.Add(SummaryMessage(summary));
            history = renderHistory ? ConversationText.ComposeSummaryAndRecent(summary, window) : "";
            var separator = window.Count > 0 ? 1 : 0;
            units = Math.Max(SummaryTextOverhead + summaryUnits + separator + windowUnits, SummaryLineOverhead + summaryUnits + separator + windowUnits);
        }
        else
        {
            history = renderHistory ? ConversationText.RenderMessages(window) : "";
            units = windowUnits;
        }
        messages.AddRange(window);
        return new FittedContext(summary, messages, window, history, units, trimmed);
    }

    /// <summary>Cuts text to at most <paramref name="maxUnits"/> units, marking the cut.</summary>
    public static string TruncateToUnits(string text, long maxUnits)
    {
        if (TokenEstimator.Units(text) <= maxUnits)
        {
            return text;
        }
        var allowed = maxUnits - MarkerUnits;
        long units = 0;
        var length = 0;
        while (length < text.Length)
        {
            var next = TokenEstimator.Units(text.AsSpan(length, 1));
            if (units + next > allowed)
            {
                break;
            }
            units += next;
            length++;
        }
        if (length > 0 && char.IsHighSurrogate(text[length - 1]))
        {
            length--;
        }
        return text[..length] + TruncationMarker;
    }

    // Units of the summary's system message without the summary ("system: Summary of ...: "), and of
    // the text history's "[summary] " prefix.
    private static readonly long SummaryLineOverhead = TokenEstimator.Units(ConversationText.RenderMessage(SummaryMessage("")));
    private static readonly long SummaryTextOverhead = TokenEstimator.Units("[summary] ");

    private static long TurnUnits(IReadOnlyList<ChatMessage> turn)
    {
        long units = turn.Count - 1;
        foreach (var message in turn)
        {
            units += ConversationText.MessageUnits(message);
        }
        return units;
    }

    // Every message keeps its role and tool calls; the text budget is shared out fairly: short
    // messages stay whole, the long ones split what is left equally.
    private static List<ChatMessage> TruncateTurn(IReadOnlyList<ChatMessage> turn, long availableUnits)
    {
        var sizes = turn.Select(m => TokenEstimator.Units(m.Content)).ToArray();
        var remaining = Math.Max(0, availableUnits - (TurnUnits(turn) - sizes.Sum()));
        var shares = new long[turn.Count];
        var left = turn.Count;
        foreach (var i in Enumerable.Range(0, turn.Count).OrderBy(i => sizes[i]))
        {
            shares[i] = Math.Min(sizes[i], remaining / left--);
            remaining -= shares[i];
        }
        return turn.Select((m, i) => sizes[i] <= shares[i] ? m : m with { Content = TruncateToUnits(m.Content, shares[i]) }).ToList();
    }

    private static List<ChatMessage> DropOrphanToolResults(List<ChatMessage> window)
    {
        if (!window.Any(m => m.Role == ChatMessage.ToolRole))
        {
            return window;
        }
        var calls = new HashSet<string>(StringComparer.Ordinal);
        var result = new List<ChatMessage>(window.Count);
        foreach (var message in window)
        {
            foreach (var call in message.ToolCalls ?? [])
            {
                calls.Add(call.Id);
            }
            if (message.Role != ChatMessage.ToolRole || (message.ToolCallId is not null && calls.Contains(message.ToolCallId)))
            {
                result.Add(message);
            }
        }
        return result;
    }
}
