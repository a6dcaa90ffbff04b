using System.Globalization;
using CloudMemory.Contracts.Sessions;

namespace CloudMemory.Conversations.Compression;

/// <summary>The importance of one message and why.</summary>
/// <param name="Index">Position in the evaluated list.</param>
/// <param name="Score">Weighted score in [0, 1].</param>
/// <param name="Temporal">Recency part in [0, 1].</param>
/// <param name="Content">Content part in [0, 1].</param>
/// <param name="Interaction">Interaction part in [0, 1].</param>
/// <param name="Safety">True when the message states a safety fact (never compressed away).</param>
/// <param name="Why">The score explained.</param>
public sealed record MessageImportance(int Index, double Score, double Temporal, double Content, double Interaction, bool Safety, string Why);

/// <summary>The importance of one long-term memory entry and why.</summary>
public sealed record MemoryImportance(double Score, double Access, double Temporal, double Type, double Content, bool Safety, string Why);

/// <summary>
/// Scores messages (seed 000 §2 ImportanceEvaluator): temporal decay, content (entities, numbers,
/// dates, safety facts, decisions) and interaction (role, answering a question, being referred
/// back to, agent hand-offs), weighted by <see cref="ImportanceWeights"/>; and long-term memory
/// entries by access frequency, temporal decay, memory type and content. Every score carries a
/// readable <c>why</c>.
/// </summary>
public sealed class ImportanceEvaluator(ImportanceWeights weights)
{
    /// <summary>An evaluator with the seed's weights.</summary>
    public ImportanceEvaluator() : this(new ImportanceWeights())
    {
    }

    /// <summary>Scores <paramref name="messages"/> (oldest first); <paramref name="safetyTerms"/> are the user's known safety facts (e.g. allergies).</summary>
    public IReadOnlyList<MessageImportance> EvaluateMessages(IReadOnlyList<ChatMessage> messages, IReadOnlyCollection<string>? safetyTerms = null)
    {
        var total = Math.Max(1e-9, weights.Temporal + weights.Content + weights.Interaction);
        var halfLife = Math.Max(1, weights.HalfLifeMessages);
        var words = messages.Select(m => TextSignals.ContentWords(m.Content).Where(w => w.Length >= 4).ToHashSet(StringComparer.Ordinal)).ToList();
        var signalsOf = messages.Select(m => TextSignals.Of(m.Content, safetyTerms)).ToArray();
        var result = new List<MessageImportance>(messages.Count);
        string? lastAgent = null;
        for (var i = 0; i < messages.Count; i++)
        {
            var message = messages[i];
            var signals = signalsOf[i];
            var age = messages.Count - 1 - i;
            var temporal = Math.Pow(0.5, age / halfLife);

            var reasons = new List<string>();
            var interaction = message.Role switch
            {
                ChatMessage.UserRole => 0.5,
                ChatMessage.SystemRole => 0.6,
                ChatMessage.AssistantRole => 0.35,
                _ => 0.3,
            };
            reasons.Add(message.Role);
            if (i > 0 && Speaker(messages[i - 1]) != Speaker(message) && signalsOf[i - 1].Question && signals.ContentWords > 2)
            {
                interaction += 0.25;
                reasons.Add("answers a question");
            }
            var referredBack = 0;
            for (var j = i + 1; j < Math.Min(messages.Count, i + 12) && words[i].Count > 0; j++)
            {
                if (words[j].Count(words[i].Contains) >= 2)
                {
                    referredBack++;
                }
            }
            if (referredBack > 0)
            {
                interaction += Math.Min(0.3, 0.1 * referredBack);
                reasons.Add($"referred back to {referredBack}×");
            }
            if (message.Role == ChatMessage.AssistantRole && message.Name is { Length: > 0 } name)
            {
                if (lastAgent is { Length: > 0 } previous && previous != name)
                {
                    interaction += 0.2;
                    reasons.Add($"hand-off {previous}→{name}");
                }
                lastAgent = name;
            }
            if (message.ToolCalls is { Count: > 0 })
            {
                interaction += 0.15;
                reasons.Add("tool call");
            }
            interaction = Math.Min(1, interaction);

            var content = signals.ContentScore;
            var score = (weights.Temporal * temporal + weights.Content * content + weights.Interaction * interaction) / total;
            if (signals.Safety)
            {
                score = Math.Max(score, 0.95);
            }
            var why = string.Create(CultureInfo.InvariantCulture,
                $"content {content:0.00} ({signals.Explain()}) · interaction {interaction:0.00} ({string.Join(", ", reasons)}) · temporal {temporal:0.00} ({age} message{(age == 1 ? "" : "s")} before the newest){(signals.Safety ? " · safety fact: kept" : "")}");
            result.Add(new MessageImportance(i, Math.Round(score, 4), Math.Round(temporal, 4), Math.Round(content, 4), Math.Round(interaction, 4), signals.Safety, why));
        }
        return result;
    }

    /// <summary>
    /// Scores a long-term memory entry: how often it was retrieved (<paramref name="accessCount"/>,
    /// saturating), how old it is (half-life 30 days), its type (profile facts and preferences above
    /// plain messages) and what it says.
    /// </summary>
    public static MemoryImportance EvaluateMemory(string type, string content, DateTimeOffset createdAt, int accessCount, DateTimeOffset now, IReadOnlyCollection<string>? safetyTerms = null)
    {
        var signals = TextSignals.Of(content, safetyTerms);
        var access = 1 - Math.Exp(-accessCount / 3.0);
        var ageDays = Math.Max(0, (now - createdAt).TotalDays);
        var temporal = Math.Pow(0.5, ageDays / 30);
        var typeWeight = type.ToLowerInvariant() switch
        {
            "profile" or "fact" or "semantic" => 0.9,
            "preference" or "decision" => 0.8,
            "summary" or "episode" or "episodic" => 0.6,
            "experience" or "procedural" => 0.7,
            _ => 0.3, // plain conversation messages
        };
        var score = 0.3 * access + 0.25 * temporal + 0.2 * typeWeight + 0.25 * signals.ContentScore;
        if (signals.Safety)
        {
            score = Math.Max(score, 0.95);
        }
        var why = string.Create(CultureInfo.InvariantCulture,
            $"access {access:0.00} ({accessCount} retrievals) · temporal {temporal:0.00} ({ageDays:0} days old) · type {typeWeight:0.00} ({type}) · content {signals.ContentScore:0.00} ({signals.Explain()}){(signals.Safety ? " · safety fact: kept" : "")}");
        return new MemoryImportance(Math.Round(score, 4), Math.Round(access, 4), Math.Round(temporal, 4), typeWeight, Math.Round(signals.ContentScore, 4), signals.Safety, why);
    }

    private static string Speaker(ChatMessage message) => message.Role + "/" + message.Name;
}
