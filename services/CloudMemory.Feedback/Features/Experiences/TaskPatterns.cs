using System.Security.Cryptography;
using System.Text;
using CloudMemory.Contracts.Feedback;

namespace CloudMemory.Feedback.Features.Experiences;

/// <summary>
/// The candidates a search reads: patterns sharing at least <see cref="MinShared"/> of
/// <see cref="Tokens"/> (those sharing most first) and, when <see cref="AllOf"/> is given, holding
/// every token of at least one of its sets.
/// </summary>
public sealed record CandidateQuery(IReadOnlyList<string> Tokens, int MinShared, IReadOnlyList<IReadOnlyList<string>>? AllOf = null);

/// <summary>
/// Extracts a task pattern (intent, entities, tools, step signature) and scores how alike two are.
/// Similarity weighs the parts the query has: intent 0.5, tools 0.2, entities 0.15, steps 0.15,
/// renormalized over the parts present (a search before running a task usually has no steps yet).
/// </summary>
public static class TaskPatterns
{
    private const double IntentWeight = 0.5;
    private const double EntityWeight = 0.15;
    private const double ToolWeight = 0.2;
    private const double StepWeight = 0.15;

    private static readonly HashSet<string> StopWords = new(StringComparer.Ordinal)
    {
        "a", "an", "the", "to", "for", "of", "in", "on", "at", "by", "with", "from", "and", "or", "is", "are", "was", "be",
        "i", "me", "my", "we", "our", "you", "your", "it", "this", "that", "please", "can", "could", "would", "will", "want",
        "need", "some", "any", "all", "next", "about", "into", "as", "do", "does", "how", "what", "which", "who", "when", "where",
    };

    /// <summary>The pattern of <paramref name="context"/>.</summary>
    public static TaskPattern Extract(TaskContext context)
    {
        var words = Words(context.Description ?? "");
        var entities = context.Entities is { Count: > 0 } given
            ? Normalize(given)
            : Normalize(words.Where(w => w.Entity).Select(w => w.Text));
        var intent = !string.IsNullOrWhiteSpace(context.Intent)
            ? NormalizeIntent(context.Intent)
            : string.Join('_', words.Where(w => !w.Entity && !StopWords.Contains(w.Text.ToLowerInvariant()) && !entities.Contains(w.Text.ToLowerInvariant()))
                .Select(w => w.Text.ToLowerInvariant()).Take(2));
        var tools = Normalize(context.Tools ?? []);
        var steps = (context.Steps ?? []).Select(s => s.Trim().ToLowerInvariant()).Where(s => s.Length > 0).ToList();
        var key = Key(intent, entities, tools, steps);
        return new TaskPattern(intent, entities, tools, steps, key);
    }

    /// <summary>Index tokens of a pattern: a stored pattern is a search candidate when it shares one.</summary>
    public static IReadOnlyList<string> Tokens(TaskPattern pattern)
    {
        // Strongest first: a capped candidate set keeps exact intents before shared words.
        var tokens = new List<string>();
        if (pattern.Intent.Length > 0)
        {
            tokens.Add("i:" + pattern.Intent);
        }
        if (pattern.Steps.Count > 0)
        {
            tokens.Add("s:" + string.Join('>', pattern.Steps));
        }
        tokens.AddRange(pattern.Tools.Select(t => "t:" + t));
        tokens.AddRange(pattern.Entities.Select(e => "e:" + e));
        tokens.AddRange(pattern.Intent.Split('_', StringSplitOptions.RemoveEmptyEntries).Select(w => "w:" + w));
        return tokens.Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// The tokens a pattern is indexed by: <see cref="Tokens"/> plus <c>n:</c> and the number of its
    /// distinct intent words, so a search can ask for intents of a given size (see <see cref="CandidateFilter"/>).
    /// </summary>
    public static IReadOnlyList<string> IndexTokens(TaskPattern pattern)
    {
        var tokens = Tokens(pattern).ToList();
        var words = IntentWords(pattern.Intent).Count;
        if (words > 0)
        {
            tokens.Add(WordCountToken(words));
        }
        return tokens;
    }

    /// <summary>
    /// What a pattern must have to possibly reach <paramref name="minSimilarity"/>. When the query's
    /// other parts cannot reach it without the intent, a candidate must share intent words: with s
    /// of the query's q words shared and c words of its own, its intent Jaccard is s / (q + c − s),
    /// so only the (s-subset, c) pairs that reach the intent score the threshold requires can match
    /// (<see cref="CandidateQuery.AllOf"/>: the subset's words and the size token <c>n:c</c>, all
    /// found by the index). Only the intent tokens rank candidates then. Otherwise every token
    /// counts and one suffices.
    /// </summary>
    public static CandidateQuery CandidateFilter(TaskPattern query, double minSimilarity)
    {
        var all = Tokens(query);
        var words = IntentWords(query.Intent);
        if (words.Count == 0)
        {
            return new CandidateQuery(all, 1);
        }
        var total = IntentWeight + (query.Entities.Count > 0 ? EntityWeight : 0) + (query.Tools.Count > 0 ? ToolWeight : 0) + (query.Steps.Count > 0 ? StepWeight : 0);
        // The intent score needed with every other part perfect (a small margin for the 4-decimal rounding of similarities).
        var needed = (minSimilarity * total - (total - IntentWeight)) / IntentWeight - 1e-3;
        if (needed <= 0)
        {
            return new CandidateQuery(all, 1);
        }
        var intentTokens = all.Where(t => t.StartsWith("i:", StringComparison.Ordinal) || t.StartsWith("w:", StringComparison.Ordinal)).ToList();
        var q = words.Count;
        var minShared = Math.Max(1, (int)Math.Ceiling(needed * q - 1e-9));
        // Every (s, c) with s / (q + c − s) ≥ needed; c ≤ s / needed − q + s. Too many sets (a long
        // intent) and the count of shared tokens alone filters.
        const int MaxSets = 32;
        var sizes = new List<(int Shared, int Own)>();
        double sets = 0;
        for (var shared = minShared; shared <= q && sets <= MaxSets; shared++)
        {
            for (var own = shared; (double)shared / (q + own - shared) >= needed && sets <= MaxSets; own++)
            {
                sizes.Add((shared, own));
                sets += Binomial(q, shared);
            }
        }
        if (sets > MaxSets)
        {
            return new CandidateQuery(intentTokens, minShared);
        }
        var allOf = new List<IReadOnlyList<string>>();
        foreach (var (shared, own) in sizes)
        {
            foreach (var subset in Subsets(words, shared))
            {
                allOf.Add([.. subset.Select(w => "w:" + w), WordCountToken(own)]);
            }
        }
        return new CandidateQuery(intentTokens, minShared, allOf);
    }

    private static List<string> IntentWords(string intent) => intent.Split('_', StringSplitOptions.RemoveEmptyEntries).Distinct(StringComparer.Ordinal).ToList();

    private static string WordCountToken(int words) => "n:" + words.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static double Binomial(int n, int k)
    {
        double result = 1;
        for (var i = 0; i < k; i++)
        {
            result = result * (n - i) / (i + 1);
        }
        return result;
    }

    private static IEnumerable<List<string>> Subsets(List<string> items, int size, int from = 0)
    {
        if (size == 0)
        {
            yield return [];
            yield break;
        }
        for (var i = from; i <= items.Count - size; i++)
        {
            foreach (var rest in Subsets(items, size - 1, i + 1))
            {
                rest.Insert(0, items[i]);
                yield return rest;
            }
        }
    }

    /// <summary>How alike <paramref name="candidate"/> is to <paramref name="query"/>, in [0, 1], part by part.</summary>
    public static (double Similarity, PatternMatch Match) Compare(TaskPattern query, TaskPattern candidate)
    {
        double total = 0, weights = 0;
        double intent = 0, entities = 0, tools = 0, steps = 0;
        IReadOnlyList<string> sharedEntities = [], sharedTools = [];
        if (query.Intent.Length > 0)
        {
            intent = query.Intent == candidate.Intent ? 1 : Jaccard(query.Intent.Split('_'), candidate.Intent.Split('_'), out _);
            total += IntentWeight * intent;
            weights += IntentWeight;
        }
        if (query.Entities.Count > 0)
        {
            entities = Jaccard(query.Entities, candidate.Entities, out sharedEntities);
            total += EntityWeight * entities;
            weights += EntityWeight;
        }
        if (query.Tools.Count > 0)
        {
            tools = Jaccard(query.Tools, candidate.Tools, out sharedTools);
            total += ToolWeight * tools;
            weights += ToolWeight;
        }
        if (query.Steps.Count > 0)
        {
            steps = 1 - (double)EditDistance(query.Steps, candidate.Steps) / Math.Max(query.Steps.Count, candidate.Steps.Count);
            total += StepWeight * steps;
            weights += StepWeight;
        }
        var similarity = weights == 0 ? 0 : total / weights;
        return (Math.Round(similarity, 4), new PatternMatch(Math.Round(intent, 4), Math.Round(entities, 4), Math.Round(tools, 4), Math.Round(steps, 4), sharedEntities, sharedTools));
    }

    /// <summary>Why a candidate matched, in words.</summary>
    public static string Reason(TaskPattern query, TaskPattern candidate, PatternMatch match, PatternStats stats)
    {
        var parts = new List<string>();
        if (query.Intent.Length > 0)
        {
            parts.Add(match.Intent == 1 ? $"same intent '{candidate.Intent}'" : $"similar intent '{candidate.Intent}' ({match.Intent:0.##})");
        }
        if (query.Entities.Count > 0)
        {
            parts.Add(match.SharedEntities.Count > 0 ? $"shares entities {string.Join(", ", match.SharedEntities)}" : "no shared entities");
        }
        if (query.Tools.Count > 0)
        {
            parts.Add(match.SharedTools.Count > 0 ? $"uses tools {string.Join(", ", match.SharedTools)}" : "other tools");
        }
        if (query.Steps.Count > 0)
        {
            parts.Add($"step signature {match.Steps:P0} alike");
        }
        parts.Add($"{stats.Successes} of {stats.Attempts} past runs succeeded");
        return string.Join("; ", parts);
    }

    private static string NormalizeIntent(string intent) =>
        string.Join('_', intent.Trim().ToLowerInvariant().Split([' ', '_', '-', '.', '/'], StringSplitOptions.RemoveEmptyEntries));

    private static List<string> Normalize(IEnumerable<string> values) =>
        values.Select(v => v.Trim().ToLowerInvariant()).Where(v => v.Length > 0).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();

    /// <summary>Words of a description; capitalized words after the first and numbers are entities.</summary>
    private static List<(string Text, bool Entity)> Words(string text)
    {
        var result = new List<(string, bool)>();
        var current = new StringBuilder();
        var first = true;
        void Flush()
        {
            if (current.Length == 0)
            {
                return;
            }
            var word = current.ToString();
            var entity = char.IsDigit(word[0]) || (!first && char.IsUpper(word[0]));
            result.Add((word, entity));
            first = false;
            current.Clear();
        }
        foreach (var c in text)
        {
            if (char.IsLetterOrDigit(c) || c == '-')
            {
                current.Append(c);
            }
            else
            {
                Flush();
                if (c is '.' or '?' or '!')
                {
                    first = true;
                }
            }
        }
        Flush();
        return result;
    }

    private static double Jaccard(IReadOnlyCollection<string> a, IReadOnlyCollection<string> b, out IReadOnlyList<string> shared)
    {
        var setB = new HashSet<string>(b, StringComparer.Ordinal);
        var common = a.Where(setB.Contains).Distinct(StringComparer.Ordinal).ToList();
        shared = common;
        var union = a.Concat(b).Distinct(StringComparer.Ordinal).Count();
        return union == 0 ? 0 : (double)common.Count / union;
    }

    private static int EditDistance(IReadOnlyList<string> a, IReadOnlyList<string> b)
    {
        var previous = new int[b.Count + 1];
        var current = new int[b.Count + 1];
        for (var j = 0; j <= b.Count; j++)
        {
            previous[j] = j;
        }
        for (var i = 1; i <= a.Count; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Count; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }
            (previous, current) = (current, previous);
        }
        return previous[b.Count];
    }

    private static string Key(string intent, IReadOnlyList<string> entities, IReadOnlyList<string> tools, IReadOnlyList<string> steps)
    {
        var canonical = $"{intent}\n{string.Join('|', entities)}\n{string.Join('|', tools)}\n{string.Join('>', steps)}";
        return "p-" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)), 0, 12).ToLowerInvariant();
    }
}
