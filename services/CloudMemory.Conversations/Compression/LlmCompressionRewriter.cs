using System.Text;
using System.Text.RegularExpressions;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Conversations.Summaries;
using CloudMemory.Conversations.Text;
using ChatMessage = CloudMemory.Contracts.Sessions.ChatMessage;

namespace CloudMemory.Conversations.Compression;

/// <summary>
/// When <c>CloudMemory:Llm</c> is configured, the condensed messages of an extractive compression
/// are rewritten by the model into short readable sentences — one numbered line per message, so the
/// structure (who said what, order, turn boundaries) cannot change. Every line is checked: it is
/// taken only when it keeps every word the extractive step kept and the whole still fits the
/// budget; otherwise that message stays as the extractive step left it. The model adds no fact the
/// extractive step did not select, and verbatim messages (safety facts, the newest turn) are never
/// sent. Failures (after the OpenAI client's retries) are the caller's to fall back on.
/// </summary>
public sealed partial class LlmCompressionRewriter(LlmOptions options)
{
    private readonly OpenAI.Chat.ChatClient _client = options.CreateChatClient();

    /// <summary>
    /// <paramref name="result"/> with its condensed messages rewritten where the model's line passed
    /// the checks; <paramref name="original"/> is the history <paramref name="result"/> was made from,
    /// <paramref name="counter"/> the counter its units are in (default the estimator).
    /// </summary>
    public async Task<(CompressionResult Result, int Rewritten)> RewriteAsync(IReadOnlyList<ChatMessage> original, CompressionResult result, long targetUnits,
        ITokenCounter? counter = null, CancellationToken cancellationToken = default)
    {
        counter ??= TokenCounters.Estimator;
        // The condensed messages: kept, not word for word, with text (an emptied tool call stays as it is).
        var lines = new List<(int Kept, string Text)>();
        for (var k = 0; k < result.Messages.Count; k++)
        {
            var text = Strip(result.Messages[k].Content);
            if (text.Length > 0 && text != original[result.SourceIndexes[k]].Content && result.Messages[k].ToolCalls is not { Count: > 0 } && result.Messages[k].Role != ChatMessage.ToolRole)
            {
                lines.Add((k, text));
            }
        }
        if (lines.Count == 0)
        {
            return (result, 0);
        }
        var prompt = new StringBuilder("""
            Each numbered line below is a message of a conversation reduced to its key words. Rewrite each
            line as one short, readable sentence in the speaker's voice. Keep every word given (names, numbers,
            dates, places, things); add no new facts; do not merge, split, reorder or skip lines. Answer with
            the same numbers, one line each, as: [n] sentence

            """);
        for (var n = 0; n < lines.Count; n++)
        {
            var message = result.Messages[lines[n].Kept];
            prompt.Append('[').Append(n + 1).Append("] ").Append(message.Name ?? message.Role).Append(": ").Append(lines[n].Text).Append('\n');
        }
        var completion = await _client.CompleteChatAsync([new OpenAI.Chat.UserChatMessage(prompt.ToString())], new OpenAI.Chat.ChatCompletionOptions { Temperature = 0f }, cancellationToken);
        var answer = string.Concat(completion.Value.Content.Select(p => p.Text));
        var rewrites = new Dictionary<int, string>();
        foreach (Match match in LinePattern().Matches(answer))
        {
            if (int.TryParse(match.Groups[1].ValueSpan, out var n) && n >= 1 && n <= lines.Count)
            {
                rewrites.TryAdd(n - 1, match.Groups[2].Value.Trim());
            }
        }

        var messages = result.Messages.ToList();
        var used = result.KeptUnits;
        var rewritten = 0;
        for (var n = 0; n < lines.Count; n++)
        {
            if (!rewrites.TryGetValue(n, out var sentence) || sentence.Length == 0 || !KeepsEveryWord(lines[n].Text, sentence))
            {
                continue;
            }
            var (k, text) = lines[n];
            var content = messages[k].Content.StartsWith(MessageCompressor.GapMarker, StringComparison.Ordinal) ? MessageCompressor.GapMarker + sentence : sentence;
            var growth = counter.Units(" " + content) - counter.Units(" " + messages[k].Content);
            if (used + growth > targetUnits)
            {
                continue;
            }
            used += growth;
            messages[k] = messages[k] with { Content = content };
            rewritten++;
        }
        return (result with { Messages = messages, KeptUnits = used }, rewritten);
    }

    private static string Strip(string content) =>
        content.StartsWith(MessageCompressor.GapMarker, StringComparison.Ordinal) ? content[MessageCompressor.GapMarker.Length..] : content;

    // Every content word the extractive step kept is in the rewrite (case-insensitive, as a word).
    private static bool KeepsEveryWord(string condensed, string rewrite)
    {
        var words = TextSignals.ContentWords(rewrite).ToHashSet(StringComparer.Ordinal);
        return TextSignals.ContentWords(condensed).All(words.Contains);
    }

    [GeneratedRegex(@"^\s*\[(\d+)\]\s*(?:[^:\n]{1,40}:\s)?(.*)$", RegexOptions.Multiline)]
    private static partial Regex LinePattern();
}
