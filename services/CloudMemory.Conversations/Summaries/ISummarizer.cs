using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Sessions;

namespace CloudMemory.Conversations.Summaries;

/// <summary>Produces the cumulative summary of a checkpoint.</summary>
public interface ISummarizer
{
    /// <summary>A name for logs and events ("extractive", "llm").</summary>
    string Name { get; }

    /// <summary>Summarizes <see cref="SummaryInput.Messages"/> on top of the previous summary.</summary>
    Task<string> SummarizeAsync(SummaryInput input, CancellationToken cancellationToken = default);
}

/// <summary>What a summary is made from.</summary>
/// <param name="PreviousSummary">The summary of the previous checkpoint (cumulative).</param>
/// <param name="Messages">The turns since the previous checkpoint (checkpoint rows excluded).</param>
/// <param name="Profile">The user's profile: its safety facts must survive the summary.</param>
/// <param name="MaxTokens">Largest summary in tokens (safety facts included).</param>
public sealed record SummaryInput(string PreviousSummary, IReadOnlyList<LogMessage> Messages, UserProfile Profile, int MaxTokens = 300);

/// <summary>Safety facts every summary keeps, whoever wrote it.</summary>
public static class SummarySafety
{
    /// <summary>
    /// Appends the allergies (and chronic diseases) of <paramref name="profile"/> that
    /// <paramref name="summary"/> does not mention, so no summary can drop a safety fact.
    /// </summary>
    public static string EnsureSafetyFacts(string summary, UserProfile profile)
    {
        var (allergies, chronic) = Missing(summary, profile);
        return Append(summary.Trim(), allergies, chronic);
    }

    /// <summary>
    /// The summary with its safety facts, cut to <paramref name="maxTokens"/>: the facts are kept
    /// whole and the rest of the text is truncated (with a marker) to what is left.
    /// </summary>
    public static string Bound(string summary, int maxTokens, UserProfile profile)
    {
        var complete = EnsureSafetyFacts(summary, profile);
        if (Text.TokenEstimator.Estimate(complete) <= maxTokens)
        {
            return complete;
        }
        var facts = Append("", profile.Allergies.Where(a => !string.IsNullOrWhiteSpace(a)).ToList(),
            profile.ChronicDiseases.Where(d => !string.IsNullOrWhiteSpace(d)).ToList());
        var room = Text.ContextFit.UnitsOf(maxTokens) - Text.TokenEstimator.Units(facts) - (facts.Length > 0 ? 1 : 0);
        var body = room > 0 ? Text.ContextFit.TruncateToUnits(summary.Trim(), room) : "";
        return (body + " " + facts).Trim();
    }

    private static (List<string> Allergies, List<string> Chronic) Missing(string summary, UserProfile profile) =>
        (profile.Allergies.Where(a => !string.IsNullOrWhiteSpace(a) && !summary.Contains(a, StringComparison.OrdinalIgnoreCase)).ToList(),
         profile.ChronicDiseases.Where(d => !string.IsNullOrWhiteSpace(d) && !summary.Contains(d, StringComparison.OrdinalIgnoreCase)).ToList());

    private static string Append(string result, List<string> missingAllergies, List<string> missingChronic)
    {
        if (missingAllergies.Count > 0)
        {
            result += (result.Length > 0 ? " " : "") + "Allergies: " + string.Join(", ", missingAllergies) + ".";
        }
        if (missingChronic.Count > 0)
        {
            result += (result.Length > 0 ? " " : "") + "Chronic conditions: " + string.Join(", ", missingChronic) + ".";
        }
        return result;
    }
}
