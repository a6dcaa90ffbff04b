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
public sealed record SummaryInput(string PreviousSummary, IReadOnlyList<LogMessage> Messages, UserProfile Profile);

/// <summary>Safety facts every summary keeps, whoever wrote it.</summary>
public static class SummarySafety
{
    /// <summary>
    /// Appends the allergies (and chronic diseases) of <paramref name="profile"/> that
    /// <paramref name="summary"/> does not mention, so no summary can drop a safety fact.
    /// </summary>
    public static string EnsureSafetyFacts(string summary, UserProfile profile)
    {
        var missingAllergies = profile.Allergies.Where(a => !string.IsNullOrWhiteSpace(a) && !summary.Contains(a, StringComparison.OrdinalIgnoreCase)).ToList();
        var missingChronic = profile.ChronicDiseases.Where(d => !string.IsNullOrWhiteSpace(d) && !summary.Contains(d, StringComparison.OrdinalIgnoreCase)).ToList();
        var result = summary.Trim();
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
