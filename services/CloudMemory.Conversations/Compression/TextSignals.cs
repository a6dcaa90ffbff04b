using System.Text.RegularExpressions;

namespace CloudMemory.Conversations.Compression;

/// <summary>
/// What a piece of text carries that a later question may need — named entities, numbers, dates,
/// safety facts, decisions, personal facts — or lacks (greetings and acknowledgements). Cheap
/// pattern signals in English and Chinese; no model.
/// </summary>
public static partial class TextSignals
{
    private static readonly string[] SafetyCues = ["allerg", "anaphyla", "epipen", "intoleran", "过敏", "禁忌"];

    private static readonly string[] DecisionCues =
    [
        "decid", "decision", "will ", "going to", "plan", "confirm", "agree", "book", "chose", "choose", "promise", "let's", "schedul", "appointment",
        "prescrib", "recommend", "should", "must", "决定", "确认", "计划", "同意", "打算", "预约", "建议",
    ];

    private static readonly string[] PersonalCues =
    [
        "my ", "i am", "i'm", "i have", "i've", "i was", "i went", "i love", "i like", "i got", "i did", "i made", "i started", "i'd", "favorite", "favourite",
        "我的", "我是", "我有", "我喜欢",
    ];

    private static readonly HashSet<string> Fillers = new(StringComparer.OrdinalIgnoreCase)
    {
        "hi", "hey", "hello", "thanks", "thank", "wow", "cool", "great", "awesome", "nice", "lol", "haha", "ok", "okay", "sure", "yeah", "yes", "no",
        "bye", "glad", "amazing", "totally", "definitely", "absolutely", "sounds", "good", "love", "you", "too", "so", "that's", "it's", "really",
    };

    /// <summary>English function words left out of condensed sentences.</summary>
    public static readonly HashSet<string> StopWords = new(StringComparer.OrdinalIgnoreCase)
    {
        "a", "an", "the", "and", "or", "but", "so", "of", "to", "in", "on", "at", "for", "with", "by", "from", "as", "is", "are", "was", "were", "be", "been", "being",
        "am", "do", "does", "did", "have", "has", "had", "it", "its", "this", "that", "these", "those", "there", "here", "very", "really", "just", "also",
        "too", "then", "than", "which", "who", "whom", "what", "would", "could", "can", "may", "might", "shall", "about", "into", "over", "some", "any",
        "all", "such", "own", "same", "both", "each", "more", "most", "other", "only", "quite", "well", "oh", "um", "uh", "like", "actually", "totally",
        "definitely", "absolutely", "pretty", "kind", "sort", "thing", "things", "stuff", "lot", "lots", "much", "many", "even", "still", "yeah", "wow",
        "i", "me", "my", "you", "your", "yours", "we", "us", "our", "they", "them", "their", "he", "him", "his", "she", "her", "it's", "i'm", "you're",
        "that's", "i've", "i'd", "i'll", "you've", "you'll", "we're", "they're", "there's", "how", "when", "where", "why", "if", "because", "get", "got",
        "getting", "make", "made", "know", "think", "feel", "felt", "see", "seems", "look", "looks", "going", "go", "really", "super", "always",
    };

    // Words condensed sentences also leave out: reactions that carry no fact.
    private static readonly HashSet<string> Light = new(StringComparer.OrdinalIgnoreCase)
    {
        "hey", "hi", "hello", "thanks", "thank", "wow", "cool", "great", "awesome", "nice", "lol", "haha", "ok", "okay", "sure", "glad", "amazing",
        "happy", "fun", "cute", "sweet", "wonderful", "fantastic", "incredible", "beautiful", "lovely", "exciting", "excited", "proud", "hear", "sounds",
        "hope", "sorry",
    };

    // Discourse markers, hedges and interjections: how something is said, never what. Words of
    // uncertainty ("maybe", "probably", "perhaps", "guess") are not among them: without them "I'll
    // maybe visit Paris" would be remembered as a plan.
    private static readonly HashSet<string> Hedges = new(StringComparer.OrdinalIgnoreCase)
    {
        "gonna", "wanna", "gotta", "btw", "anyway", "anyways", "literally", "basically", "honestly",
        "seriously", "certainly", "surely", "kinda", "sorta", "hmm", "aww", "aw", "woohoo", "yay", "omg", "yep", "yup", "ya", "here's", "what's",
        "bit",
    };

    /// <summary>True for a discourse marker, hedge or interjection ("gonna", "btw", "here's"), given as a <see cref="WordKey"/>.</summary>
    public static bool IsHedge(string word) => Hedges.Contains(word);

    /// <summary>The signals of one sentence or message.</summary>
    public static Signals Of(string text, IReadOnlyCollection<string>? safetyTerms = null)
    {
        var lower = text.ToLowerInvariant();
        var safety = SafetyCues.Any(c => lower.Contains(c, StringComparison.Ordinal))
            || (safetyTerms?.Any(t => t.Length > 1 && lower.Contains(t.ToLowerInvariant(), StringComparison.Ordinal)) ?? false);
        var words = WordPattern().Matches(text).Select(m => m.Value).ToList();
        var entities = EntityPattern().Matches(text).Select(m => m.Value).Where(e => e is not "I" and not "I'm" and not "I've" and not "I'd")
            .Distinct(StringComparer.Ordinal).Count();
        var numbers = NumberPattern().Count(text);
        var dates = DatePattern().Count(lower);
        var decision = DecisionCues.Any(c => lower.Contains(c, StringComparison.Ordinal));
        var personal = PersonalCues.Any(c => lower.Contains(c, StringComparison.Ordinal));
        var content = words.Count(w => !StopWords.Contains(w) && !Fillers.Contains(w));
        var question = text.Contains('?', StringComparison.Ordinal) || text.Contains('？', StringComparison.Ordinal);
        return new Signals(safety, entities, numbers, dates, decision, personal, question, words.Count, content);
    }

    /// <summary>The content words of a text (lower case, stop words and fillers left out).</summary>
    public static IEnumerable<string> ContentWords(string text) =>
        WordPattern().Matches(text.ToLowerInvariant()).Select(m => m.Value).Where(w => !StopWords.Contains(w) && !Fillers.Contains(w));

    /// <summary>
    /// A sentence with English function words left out ("telegraphic"): what a reader needs to
    /// recover the fact at about half the tokens. Text without Latin words is returned as it is.
    /// </summary>
    public static string Condense(string sentence) => string.Join(' ', CondensedTokens(sentence));

    /// <summary>
    /// The words <see cref="Condense"/> keeps, in order: function words, reactions and tokens with
    /// no letter or digit ("-", "&amp;") left out. A sentence with nothing left keeps all its tokens.
    /// </summary>
    public static IReadOnlyList<string> CondensedTokens(string sentence)
    {
        var kept = TokenPattern().Matches(sentence).Select(m => m.Value.Trim(',', '!', ';', ':', '"', '(', ')'))
            .Where(t => t.Any(char.IsLetterOrDigit) && !StopWords.Contains(t.Trim('.', '?')) && !Light.Contains(t.Trim('.', '?'))).ToList();
        return kept.Count > 0 ? kept : TokenPattern().Matches(sentence.Trim()).Select(m => m.Value).ToList();
    }

    /// <summary>A condensed token as a word, for telling repeated words apart: lower case, without punctuation around it.</summary>
    public static string WordKey(string token) => token.Trim('.', '?', '!', ',', ';', ':', '[', ']', '(', ')', '"', '\'').ToLowerInvariant();

    /// <summary>
    /// True when a sentence describes rather than converses: no first person, no second person, no
    /// question ("The lake was frozen.", a shared photo's caption).
    /// </summary>
    public static bool IsDescription(string sentence) =>
        !FirstPersonPattern().IsMatch(sentence) && !SecondPersonPattern().IsMatch(sentence)
        && !sentence.Contains('?', StringComparison.Ordinal) && !sentence.Contains('？', StringComparison.Ordinal);

    /// <summary>
    /// How likely a sentence states a fact a later question asks about, independent of any query:
    /// its content (<see cref="Signals.ContentScore"/>), doubled when the speaker tells about
    /// themselves (first person), ×1.5 for a reported event (past tense), ×0.3 for a question (it
    /// asks rather than tells). Measured on LoCoMo (docs/compression.md): self-disclosure and
    /// answers are where the facts are; questions and reactions are not.
    /// </summary>
    public static double FactLikelihood(string sentence, Signals signals)
    {
        var value = 0.1 + signals.ContentScore;
        if (FirstPersonPattern().IsMatch(sentence))
        {
            value *= 2;
        }
        if (PastTensePattern().IsMatch(sentence))
        {
            value *= 1.5;
        }
        if (signals.Question)
        {
            value *= 0.3;
        }
        return value;
    }

    /// <summary>True when a sentence speaks of the other speaker only (second person, no first person): a reaction to their news rather than the speaker's own.</summary>
    public static bool IsReaction(string sentence) => SecondPersonPattern().IsMatch(sentence) && !FirstPersonPattern().IsMatch(sentence);

    /// <summary>The sentences of a text.</summary>
    public static IEnumerable<string> Sentences(string text) =>
        SentencePattern().Split(text).Select(s => s.Trim()).Where(s => s.Length > 0);

    [GeneratedRegex(@"(?<=[.!?。！？；;])\s+|(?<=[。！？；])|\n+")]
    private static partial Regex SentencePattern();

    [GeneratedRegex(@"\b(i|my|me|i'm|i've|i'd|we|our|us)\b|我", RegexOptions.IgnoreCase)]
    private static partial Regex FirstPersonPattern();

    [GeneratedRegex(@"\b(you|your|you're|you've|you'd|you'll|yours)\b|你", RegexOptions.IgnoreCase)]
    private static partial Regex SecondPersonPattern();

    [GeneratedRegex(@"\b\p{L}+ed\b|了", RegexOptions.IgnoreCase)]
    private static partial Regex PastTensePattern();

    [GeneratedRegex(@"[\p{IsCJKUnifiedIdeographs}]|[\p{L}\p{N}']+")]
    private static partial Regex WordPattern();

    [GeneratedRegex(@"\S+")]
    private static partial Regex TokenPattern();

    // Capitalised words that do not open a sentence (a cheap named-entity signal).
    [GeneratedRegex(@"(?<![.!?]\s|^)\b[A-Z][\p{L}'-]+")]
    private static partial Regex EntityPattern();

    [GeneratedRegex(@"\d+|[一二三四五六七八九十两百千万]+[个天周月年岁次]")]
    private static partial Regex NumberPattern();

    [GeneratedRegex(@"\b(january|february|march|april|may|june|july|august|september|october|november|december|monday|tuesday|wednesday|thursday|friday|saturday|sunday|yesterday|today|tomorrow|tonight|weekend|last (week|month|year|night)|next (week|month|year)|ago|(19|20)\d\d)\b|\d+\s*(年|月|日|号)")]
    private static partial Regex DatePattern();
}

/// <summary>Signals found in a text.</summary>
public sealed record Signals(bool Safety, int Entities, int Numbers, int Dates, bool Decision, bool Personal, bool Question, int Words, int ContentWords)
{
    /// <summary>
    /// The content part of importance in [0, 1]: 1 for a safety fact; otherwise entities, numbers
    /// and dates, decisions and personal facts add up, greetings and fillers score near 0.
    /// </summary>
    public double ContentScore => Safety ? 1.0 : Math.Min(1.0,
        0.12 * Math.Min(Entities, 3) + 0.12 * Math.Min(Numbers + Dates, 2) + (Decision ? 0.15 : 0) + (Personal ? 0.15 : 0)
        + 0.25 * Math.Min(1.0, ContentWords / 8.0));

    /// <summary>Why, in a few words.</summary>
    public string Explain()
    {
        var parts = new List<string>();
        if (Safety)
        {
            parts.Add("safety fact");
        }
        if (Entities > 0)
        {
            parts.Add($"{Entities} entit{(Entities == 1 ? "y" : "ies")}");
        }
        if (Numbers + Dates > 0)
        {
            parts.Add(Dates > 0 ? "date" : "number");
        }
        if (Decision)
        {
            parts.Add("decision");
        }
        if (Personal)
        {
            parts.Add("personal fact");
        }
        if (ContentWords < 3)
        {
            parts.Add("little content");
        }
        return parts.Count == 0 ? $"{ContentWords} content words" : string.Join(", ", parts);
    }
}
