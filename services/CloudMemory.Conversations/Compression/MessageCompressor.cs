using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Conversations.Text;

namespace CloudMemory.Conversations.Compression;

/// <summary>A compressed history.</summary>
/// <param name="Messages">The messages kept, in order, each with its role, name and tool calls; condensed ones hold their selected sentences.</param>
/// <param name="SourceIndexes">For each kept message, its index in the original list.</param>
/// <param name="OriginalUnits">Token units of the original rendering, as the compression's counter counts them.</param>
/// <param name="KeptUnits">Token units of the compressed rendering, as the compression's counter counts them.</param>
/// <param name="Verbatim">Messages kept word for word.</param>
/// <param name="Condensed">Messages reduced to selected sentences.</param>
/// <param name="Dropped">Messages left out.</param>
/// <param name="Scores">The importance of every original message.</param>
public sealed record CompressionResult(IReadOnlyList<ChatMessage> Messages, IReadOnlyList<int> SourceIndexes, long OriginalUnits, long KeptUnits,
    int Verbatim, int Condensed, IReadOnlyList<DroppedMessage> Dropped, IReadOnlyList<MessageImportance> Scores)
{
    /// <summary>Estimated tokens before.</summary>
    public int OriginalTokens => TokenEstimator.TokensFromUnits(OriginalUnits);

    /// <summary>Estimated tokens after.</summary>
    public int KeptTokens => TokenEstimator.TokensFromUnits(KeptUnits);
}

/// <summary>
/// Extractive, importance-based compression of a conversation to a token budget. The structure
/// stays: every kept message keeps its role, name, tool calls and place in the order (so who said
/// what, and turn boundaries, are intact). Within the budget: safety facts and the newest turn are
/// kept verbatim first, then (optionally, <see cref="VerbatimShare"/>) the most important messages
/// verbatim, then sentences by how likely they state a fact (self-disclosure, answers, events, new
/// words; questions and reactions last), each condensed (function words left out), with the other
/// sentences of a message already kept preferred; budget left over turns condensed messages back
/// into their own words. Messages with nothing selected are dropped and reported, never silently.
/// </summary>
public sealed class MessageCompressor(ImportanceEvaluator evaluator)
{
    /// <summary>Marks where dropped messages were.</summary>
    public const string GapMarker = "… ";

    /// <summary>
    /// How the budget is counted (in <see cref="TokenEstimator"/> quarter-token units): the estimator
    /// (a quarter token per character) by default; a tokenizer (<see cref="TokenCounters"/>) counts
    /// the model's own tokens. Condensed text is mostly long content words, which the estimator counts
    /// about a quarter above o200k's count: a ratio in the estimator's tokens leaves part of the model's
    /// budget unused.
    /// </summary>
    public ITokenCounter Counter { get; init; } = TokenCounters.Estimator;

    /// <summary>Share of the budget the verbatim tier may use.</summary>
    public double VerbatimShare { get; init; }

    /// <summary>Sentences are ranked by value / units^LengthExponent (1: per token; lower favours longer sentences).</summary>
    public double LengthExponent { get; init; }

    /// <summary>Once a message appears, its other sentences rank (1 + this) times higher.</summary>
    public double CoherenceBoost { get; init; } = 1.0;

    /// <summary>Share of a sentence's rank that depends on recency (the temporal part of its message's importance).</summary>
    public double RecencyWeight { get; init; } = 0.3;

    /// <summary>How much a sentence's specificity (mean in-conversation IDF of its content words, in [0, 1]) raises its rank: × (1 + this × specificity).</summary>
    public double SpecificityWeight { get; init; } = 3.0;

    /// <summary>Rank factor for a sentence that dates something ("yesterday", "last week", a month, a year).</summary>
    public double DateBoost { get; init; } = 1.0;

    /// <summary>How much a sentence's novelty (share of its content words not said before) raises its rank: × (1 + this × novelty).</summary>
    public double NoveltyWeight { get; init; } = 1.0;

    /// <summary>Rank factor for a description (no first person, no second person, no question: a statement about the world, a shared photo's caption).</summary>
    public double DescriptionFactor { get; init; } = 1.3;

    /// <summary>
    /// Condensed sentences leave out the words already said in the kept sentences before them in
    /// the same message (and repeats within the sentence): the budget goes to new words.
    /// </summary>
    public bool OmitRepeatedWords { get; init; } = true;

    /// <summary>How many sentences back <see cref="OmitRepeatedWords"/> looks (bounds the work on a message of thousands of sentences).</summary>
    public int RepeatWindow { get; init; } = 8;

    /// <summary>
    /// Condensed sentences leave out the names of the other speakers of the conversation (their
    /// <see cref="ChatMessage.Name"/>, or a short form of it such as "Mel" for "Melanie"): in a
    /// conversation they address the listener ("Thanks, Jon!") rather than state a fact.
    /// </summary>
    public bool OmitAddressedNames { get; init; } = true;

    /// <summary>Rank factor for a sentence about the other speaker only ("you", "your", no first person): a reaction rather than a fact of the speaker's own life.</summary>
    public double ReactionFactor { get; init; } = 1.0;

    /// <summary>
    /// Rank factor for the first message of a segment, when system lines divide the history into two
    /// or more (the sessions of a long conversation, each opened by a line such as "Session 4, 8 May
    /// 2023."): a session opens with the news since the last one. With no such division it does nothing.
    /// </summary>
    public double OpeningFactor { get; init; } = 2.0;

    /// <summary>Condensed sentences also leave out discourse markers, hedges and interjections ("gonna", "btw", "here's"; words of uncertainty such as "maybe" stay).</summary>
    public bool OmitHedges { get; init; } = true;

    /// <summary>Lowest importance at which a message may be kept verbatim in the verbatim tier.</summary>
    public double VerbatimCutoff { get; init; } = 0.55;

    /// <summary>
    /// Compresses <paramref name="messages"/> (oldest first) to at most <paramref name="targetUnits"/>
    /// token units as <see cref="Counter"/> counts the rendering.
    /// </summary>
    public CompressionResult Compress(IReadOnlyList<ChatMessage> messages, long targetUnits, IReadOnlyCollection<string>? safetyTerms = null, bool keepLastTurn = true) =>
        Compress(Prepare(messages, safetyTerms), targetUnits, keepLastTurn);

    /// <summary>
    /// Compresses a history this compressor prepared (<see cref="Prepare"/>: its ranks depend on this
    /// compressor's settings) to at most <paramref name="targetUnits"/> token units as its counter
    /// counts the rendering; a history can be compressed to several budgets in turn.
    /// </summary>
    public CompressionResult Compress(PreparedHistory history, long targetUnits, bool keepLastTurn = true)
    {
        var result = Select(history, targetUnits, keepLastTurn);
        // A tokenizer's count of a whole rendering can differ from the sum of its parts' counts (the
        // parts are counted where they are joined, so rarely): select again within a budget lowered by the excess.
        for (var attempt = 1; attempt <= 3 && result.KeptUnits > targetUnits && !ReferenceEquals(history.Counter, TokenCounters.Estimator); attempt++)
        {
            var retry = Select(history, targetUnits - attempt * (result.KeptUnits - targetUnits), keepLastTurn);
            if (retry.KeptUnits >= result.KeptUnits)
            {
                break; // what is over is what must stay (safety facts, the tool-call skeleton)
            }
            result = retry;
        }
        return result;
    }

    /// <summary>
    /// Scores <paramref name="messages"/> and splits them into condensed sentences, counted by
    /// <paramref name="counter"/> (default <see cref="Counter"/>): everything a compression needs that
    /// does not depend on its budget.
    /// </summary>
    public PreparedHistory Prepare(IReadOnlyList<ChatMessage> messages, IReadOnlyCollection<string>? safetyTerms = null, ITokenCounter? counter = null)
    {
        counter ??= Counter;
        var scores = evaluator.EvaluateMessages(messages, safetyTerms);
        var n = messages.Count;
        var sentences = new List<CompressionSentence>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var documentFrequency = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var message in messages)
        {
            foreach (var word in MessageWords(message.Content))
            {
                documentFrequency[word] = documentFrequency.GetValueOrDefault(word) + 1;
            }
        }
        var maxIdf = Math.Log(Math.Max(2, n));
        var names = OmitAddressedNames
            ? messages.Select(m => m.Name).Where(name => !string.IsNullOrWhiteSpace(name)).Select(name => name!.Trim().ToLowerInvariant()).Distinct(StringComparer.Ordinal).ToList()
            : [];
        var openings = Openings(messages);
        for (var i = 0; i < n; i++)
        {
            var own = messages[i].Name?.Trim().ToLowerInvariant();
            var addressees = names.Where(name => name != own).ToList();
            var index = 0;
            var answers = i > 0 && messages[i].Role != ChatMessage.SystemRole && messages[i - 1].Role != messages[i].Role
                && TextSignals.Of(messages[i - 1].Content).Question;
            var place = openings.Contains(i) ? OpeningFactor : 1;
            var recency = 1 - RecencyWeight + RecencyWeight * scores[i].Temporal;
            foreach (var text in TextSignals.Sentences(messages[i].Content))
            {
                var signals = TextSignals.Of(text, safetyTerms);
                var tokens = TextSignals.CondensedTokens(text);
                if (OmitHedges && tokens.Any(t => TextSignals.IsHedge(TextSignals.WordKey(t)))
                    && tokens.Where(t => !TextSignals.IsHedge(TextSignals.WordKey(t))).ToList() is { Count: > 0 } withoutHedges)
                {
                    tokens = withoutHedges; // a sentence of hedges only keeps them
                }
                if (addressees.Count > 0)
                {
                    // The other speakers' names (or their short forms, "Mel" for Melanie) address them: no fact.
                    var withoutNames = tokens.Where(t => t.TrimStart('[', '(', '"') is not { Length: > 0 } head || !char.IsUpper(head[0]) || TextSignals.WordKey(t) is not { Length: >= 3 } key
                        || !addressees.Any(a => a.StartsWith(key, StringComparison.Ordinal))).ToList();
                    tokens = withoutNames; // a sentence that only addresses someone ("Hey Gina!") has nothing left to keep
                }
                var words = MessageWords(text);
                var novelty = words.Count == 0 ? 0 : (double)words.Count(w => !seen.Contains(w)) / words.Count;
                var specificity = words.Count == 0 ? 0 : words.Average(w => Math.Log((double)n / documentFrequency.GetValueOrDefault(w, 1))) / maxIdf;
                seen.UnionWith(words);
                var value = messages[i].Role == ChatMessage.SystemRole ? 0.5
                    : TextSignals.FactLikelihood(text, signals) * (answers ? 2 : 1) * (1 + NoveltyWeight * novelty) * (1 + SpecificityWeight * specificity)
                        * (signals.Dates > 0 ? DateBoost : 1) * (TextSignals.IsReaction(text) ? ReactionFactor : 1) * (TextSignals.IsDescription(text) ? DescriptionFactor : 1) * recency * place;
                sentences.Add(new CompressionSentence(i, index++, sentences.Count, text, tokens, signals.Safety, value, PreparedHistory.ContentUnits(counter, string.Join(' ', tokens))));
            }
        }
        // "role:" and the tool calls, without the content: the message's rendering emptied, less the space its content starts with.
        var headers = new long[n];
        for (var i = 0; i < n; i++)
        {
            var empty = ConversationText.RenderMessage(messages[i] with { Content = "" });
            var role = messages[i].Role.Length + 1;
            headers[i] = counter.Units(empty[..role]) + counter.Units(empty[(role + 1)..]);
        }
        return new PreparedHistory(messages, counter, Units(messages, counter), scores, sentences, headers);
    }

    private CompressionResult Select(PreparedHistory history, long targetUnits, bool keepLastTurn)
    {
        var (messages, counter, scores, sentences, headers) = (history.Messages, history.Counter, history.Scores, history.Sentences, history.Headers);
        var n = messages.Count;
        long ContentUnits(string text) => PreparedHistory.ContentUnits(counter, text);
        var gapMarkerUnits = ContentUnits(GapMarker.TrimEnd());
        var bySentenceOf = history.BySentenceOf;
        double Rank(CompressionSentence s) => s.Value / Math.Pow(s.CondensedUnits, LengthExponent);
        var verbatim = new bool[n];
        // Per sentence (by position): kept condensed, and what it adds to its message.
        var chosen = new bool[sentences.Count];
        var sentenceUnits = new long[sentences.Count];
        var chosenCount = new int[n];
        var chosenUnits = new long[n];
        long used = 0;

        var skeleton = new bool[n];
        bool Appears(int i) => verbatim[i] || chosenCount[i] > 0 || skeleton[i];
        bool HasContent(int i) => verbatim[i] ? messages[i].Content.Length > 0 : chosenCount[i] > 0;
        // Message overhead, paid once a message appears at all: its header, the separator, and the
        // gap marker exactly as rendered — its own when the message before it is dropped, less the
        // next message's when that one is kept already and no longer follows a gap.
        long Overhead(int i) => headers[i] + 1 + (i > 0 && !Appears(i - 1) ? gapMarkerUnits : 0) - (i + 1 < n && HasContent(i + 1) ? gapMarkerUnits : 0);
        // What a kept sentence adds to its message: its text (safety) or its condensed words, without
        // (OmitRepeatedWords) the words of the kept sentences among the RepeatWindow before it. Counted
        // when chosen, and counted again (only ever shorter) when a sentence before it is kept later.
        string Rendered(CompressionSentence s)
        {
            if (s.Safety)
            {
                return s.Text;
            }
            if (!OmitRepeatedWords)
            {
                return string.Join(' ', s.Tokens);
            }
            var said = new HashSet<string>(StringComparer.Ordinal);
            for (var d = 1; d <= Math.Min(RepeatWindow, s.Index); d++)
            {
                var before = sentences[s.Position - d];
                if (chosen[before.Position])
                {
                    said.UnionWith(before.Tokens.Select(TextSignals.WordKey));
                }
            }
            return string.Join(' ', s.Tokens.Where(t => said.Add(TextSignals.WordKey(t))));
        }
        long UnitsOf(CompressionSentence s)
        {
            var text = Rendered(s);
            return text.Length == 0 ? 0 : ContentUnits(text);
        }
        void Choose(CompressionSentence s, long units)
        {
            chosen[s.Position] = true;
            chosenCount[s.Message]++;
            chosenUnits[s.Message] += units;
            sentenceUnits[s.Position] = units;
            if (!OmitRepeatedWords)
            {
                return;
            }
            for (var k = s.Position + 1; k <= s.Position + RepeatWindow && k < sentences.Count && sentences[k].Message == s.Message; k++)
            {
                var later = sentences[k];
                if (!chosen[k])
                {
                    continue;
                }
                var before = sentenceUnits[k];
                var now = UnitsOf(later);
                sentenceUnits[k] = now;
                chosenUnits[s.Message] -= before - now;
                used -= before - now;
            }
        }
        long Cost(int i, long textUnits) => textUnits + (Appears(i) ? 0 : Overhead(i));
        bool TryVerbatim(int i, long limit)
        {
            if (verbatim[i])
            {
                return true;
            }
            var cost = Cost(i, ContentUnits(messages[i].Content)) - chosenUnits[i];
            if (used + cost > limit)
            {
                return false;
            }
            used += cost;
            verbatim[i] = true;
            foreach (var k in bySentenceOf[i])
            {
                chosen[k] = false;
            }
            chosenCount[i] = 0;
            chosenUnits[i] = 0;
            return true;
        }

        // 0. A tool call and its result always stay (paired for the model), at least as a skeleton.
        for (var i = 0; i < n; i++)
        {
            if (messages[i].ToolCalls is { Count: > 0 } || messages[i].Role == ChatMessage.ToolRole)
            {
                used += headers[i] + ContentUnits("") + 1 + gapMarkerUnits; // an empty content, and a marker should content come later
                skeleton[i] = true;
            }
        }
        // 1. Safety facts, whole messages when they fit, else their safety sentences.
        foreach (var i in Enumerable.Range(0, n).Where(i => scores[i].Safety))
        {
            if (!TryVerbatim(i, targetUnits))
            {
                foreach (var s in bySentenceOf[i].Select(k => sentences[k]).Where(s => s.Safety))
                {
                    var units = UnitsOf(s);
                    used += Cost(i, units); // safety sentences are kept even past the budget
                    Choose(s, units);
                }
            }
        }
        // 2. The newest turn (from its user message on) verbatim: what the next answer continues.
        if (keepLastTurn && n > 0)
        {
            var start = n - 1;
            while (start > 0 && messages[start].Role != ChatMessage.UserRole)
            {
                start--;
            }
            for (var i = n - 1; i >= start; i--)
            {
                TryVerbatim(i, targetUnits);
            }
        }
        // 3. The most important messages verbatim, within their share of the budget.
        var verbatimLimit = (long)(targetUnits * VerbatimShare);
        foreach (var i in Enumerable.Range(0, n).OrderByDescending(i => scores[i].Score).ThenByDescending(i => i))
        {
            if (used >= verbatimLimit)
            {
                break;
            }
            if (scores[i].Score >= VerbatimCutoff && ContentUnits(messages[i].Content) <= verbatimLimit / 4)
            {
                TryVerbatim(i, verbatimLimit);
            }
        }
        // 4. Sentences by how likely they state a fact, condensed. Once a message appears, its other
        //    sentences count double: a fact often spans sentences, and the message's overhead is paid.
        var queue = new PriorityQueue<int, double>();
        for (var k = 0; k < sentences.Count; k++)
        {
            if (!verbatim[sentences[k].Message] && sentences[k].Tokens.Count > 0)
            {
                queue.Enqueue(k, -Rank(sentences[k]));
            }
        }
        var boosted = new bool[sentences.Count];
        var done = new bool[sentences.Count];
        while (queue.TryDequeue(out var k, out _))
        {
            var s = sentences[k];
            if (done[k] || verbatim[s.Message] || chosen[k])
            {
                continue;
            }
            var first = !Appears(s.Message);
            var units = UnitsOf(s);
            var cost = Cost(s.Message, units);
            done[k] = true;
            if (used + cost > targetUnits)
            {
                continue;
            }
            used += cost;
            Choose(s, units);
            if (first)
            {
                foreach (var other in bySentenceOf[s.Message].Where(o => !done[o] && !boosted[o] && sentences[o].Tokens.Count > 0))
                {
                    boosted[other] = true;
                    queue.Enqueue(other, -Rank(sentences[other]) * (1 + CoherenceBoost));
                }
            }
        }

        // 5. Budget left over (at mild ratios): condensed messages back to their own words, the most
        //    valuable first — a superset of what was kept, easier for the model to read.
        foreach (var i in Enumerable.Range(0, n).Where(i => chosenCount[i] > 0).OrderByDescending(i => bySentenceOf[i].Max(k => sentences[k].Value)).ToList())
        {
            TryVerbatim(i, targetUnits);
        }

        var byMessage = sentences.ToLookup(s => s.Message);
        var kept = new List<ChatMessage>();
        var sources = new List<int>();
        var dropped = new List<DroppedMessage>();
        var condensedCount = 0;
        var gap = false;
        for (var i = 0; i < n; i++)
        {
            var message = messages[i];
            string? content = null;
            if (verbatim[i])
            {
                content = message.Content;
            }
            else if (chosenCount[i] > 0)
            {
                content = string.Join(" ", byMessage[i].Where(s => chosen[s.Position])
                    .Select(Rendered).Where(text => text.Length > 0));
                condensedCount++;
            }
            else if (message.ToolCalls is { Count: > 0 } || message.Role == ChatMessage.ToolRole)
            {
                content = ""; // a tool call and its result stay paired for the model, even emptied
            }
            if (content is null)
            {
                dropped.Add(new DroppedMessage(i, message.Role, message.Name, TokenEstimator.TokensFromUnits(counter.Units(ConversationText.RenderMessage(message))), scores[i].Score, scores[i].Why));
                gap = true;
                continue;
            }
            kept.Add(message with { Content = gap && content.Length > 0 ? GapMarker + content : content });
            sources.Add(i);
            gap = false;
        }
        return new CompressionResult(kept, sources, history.OriginalUnits, Units(kept, counter), verbatim.Count(v => v), condensedCount, dropped, scores);
    }

    // The first message of each segment, when system lines divide the history into two or more.
    private static HashSet<int> Openings(IReadOnlyList<ChatMessage> messages)
    {
        var openings = new HashSet<int>();
        for (var i = 0; i < messages.Count; i++)
        {
            if (messages[i].Role != ChatMessage.SystemRole && (i == 0 || messages[i - 1].Role == ChatMessage.SystemRole))
            {
                openings.Add(i);
            }
        }
        return openings.Count >= 2 ? openings : [];
    }

    private static HashSet<string> MessageWords(string text) =>
        TextSignals.ContentWords(text).Select(w => w.Trim('\'')).Where(w => w.Length > 1).ToHashSet(StringComparer.Ordinal);

    // The units of a rendered history as the log counts it: each message, and one per separator.
    private static long Units(IReadOnlyList<ChatMessage> messages, ITokenCounter counter) => counter.JoinedUnits(messages.Select(ConversationText.RenderMessage));

}

/// <summary>
/// A history made ready for <see cref="MessageCompressor.Compress(PreparedHistory, long, bool)"/>: its
/// messages scored and split into condensed sentences, each part counted by <see cref="Counter"/>.
/// Nothing here depends on the budget, so one preparation serves every budget tried.
/// </summary>
public sealed class PreparedHistory
{
    internal PreparedHistory(IReadOnlyList<ChatMessage> messages, ITokenCounter counter, long originalUnits, IReadOnlyList<MessageImportance> scores,
        List<CompressionSentence> sentences, long[] headers)
    {
        Messages = messages;
        Counter = counter;
        OriginalUnits = originalUnits;
        Scores = scores;
        Sentences = sentences;
        BySentenceOf = Enumerable.Range(0, sentences.Count).ToLookup(k => sentences[k].Message);
        Headers = headers;
    }

    /// <summary>The messages, oldest first.</summary>
    public IReadOnlyList<ChatMessage> Messages { get; }

    /// <summary>What counts every part, and the budget.</summary>
    public ITokenCounter Counter { get; }

    /// <summary>Token units of the whole rendering, as <see cref="Counter"/> counts it.</summary>
    public long OriginalUnits { get; }

    internal IReadOnlyList<MessageImportance> Scores { get; }

    internal List<CompressionSentence> Sentences { get; }

    internal ILookup<int, int> BySentenceOf { get; }

    // Per message: "role:" and the tool calls.
    internal long[] Headers { get; }

    // A part is counted as it appears in the rendering "role: … sentence sentence [call …]": after the
    // space that joins it ("role:", " …", " sentence"), so a tokenizer sees that space with the word.
    internal static long ContentUnits(ITokenCounter counter, string text) => counter.Units(" " + text);
}

internal sealed record CompressionSentence(int Message, int Index, int Position, string Text, IReadOnlyList<string> Tokens, bool Safety, double Value, long CondensedUnits);
