using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Conversations.Text;

namespace CloudMemory.Session.Tests.Infrastructure;

/// <summary>How the tests count what a context query returns.</summary>
public static class ContextTokens
{
    /// <summary>
    /// Estimated tokens of what a caller sends, as the budget counts them: the context (as messages
    /// and as history, whichever is larger) and the query.
    /// </summary>
    public static int WithQuery(this MemoryContext context, string query) => Math.Max(
        TokenEstimator.Estimate(ConversationText.RenderMessages(context.Messages!) + "\n" + query),
        TokenEstimator.Estimate(context.History + "\n" + query));

    /// <summary>o200k_base tokens of messages as the log counts them (each rendered message, one quarter token per separator).</summary>
    public static int O200kTokens(IEnumerable<ChatMessage> messages) =>
        TokenEstimator.TokensFromUnits(TokenCounters.Create(TokenCounters.O200kBase).JoinedUnits(messages.Select(ConversationText.RenderMessage)));
}
