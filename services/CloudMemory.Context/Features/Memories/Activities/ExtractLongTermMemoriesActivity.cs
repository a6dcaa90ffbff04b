using System.Text.RegularExpressions;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Context.Features.Memories.Workflows;
using Dapr.Workflow;

namespace CloudMemory.Context.Features.Memories.Activities;

/// <summary>The entries a consolidation writes.</summary>
public sealed record ConsolidationPlan(string TenantId, IReadOnlyList<CreateMemoryRequest> Entries);

/// <summary>
/// Derives long-term entries from a conversation's summary and recent turns, deterministically
/// (no clock, no randomness): an episodic summary with experience tags (the most frequent content
/// words) and one preference entry per sentence that states a preference.
/// </summary>
public sealed partial class ExtractLongTermMemoriesActivity : WorkflowActivity<ConsolidationInput, ConsolidationPlan>
{
    private const int MaxTags = 8;

    /// <inheritdoc />
    public override Task<ConsolidationPlan> RunAsync(WorkflowActivityContext context, ConsolidationInput input) =>
        Task.FromResult(Plan(input));

    /// <summary>The plan for <paramref name="input"/>.</summary>
    public static ConsolidationPlan Plan(ConsolidationInput input)
    {
        var entries = new List<CreateMemoryRequest>();
        var turns = input.RecentTurns ?? [];
        var summary = string.IsNullOrWhiteSpace(input.Summary) ? string.Join("\n", turns) : input.Summary.Trim();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["source"] = "consolidation",
            ["conversationId"] = input.ConversationId,
            ["final"] = input.Final ? "true" : "false",
        };
        if (!string.IsNullOrWhiteSpace(summary))
        {
            // One episode per conversation: a later checkpoint's (cumulative) summary replaces the earlier one.
            entries.Add(new CreateMemoryRequest(
                summary,
                MemoryTypes.Episodic,
                LongTermMemoryService.DeterministicId("episode", input.ConversationId),
                input.UserId,
                input.ConversationId,
                Metadata: metadata,
                Tags: ExperienceTags(summary + "\n" + string.Join("\n", turns))));
        }

        foreach (var preference in Preferences(summary, turns))
        {
            // Keyed by user and statement, so the same preference from two conversations is one entry.
            entries.Add(new CreateMemoryRequest(
                preference,
                MemoryTypes.Preference,
                LongTermMemoryService.DeterministicId("pref", input.UserId, preference.ToLowerInvariant()),
                input.UserId,
                ContextId: null,
                Metadata: new Dictionary<string, string>(StringComparer.Ordinal) { ["source"] = "consolidation", ["conversationId"] = input.ConversationId },
                Tags: ["preference", .. ExperienceTags(preference).Take(3)]));
        }
        return input is { TraceId: { } traceId, StepId: { } stepId } && Ids.IsValid(traceId) && Ids.IsValid(stepId)
            ? new ConsolidationPlan(input.TenantId, [.. entries.Select(e => ProducedBy(e, traceId, stepId))])
            : new ConsolidationPlan(input.TenantId, entries);
    }

    // Trace-linked memory: the entries record the step that asked for the checkpoint (as POST /v1/memories does), which provenance follows.
    private static CreateMemoryRequest ProducedBy(CreateMemoryRequest entry, string traceId, string stepId) =>
        entry with
        {
            TraceId = traceId,
            Metadata = new Dictionary<string, string>(entry.Metadata ?? new Dictionary<string, string>(), StringComparer.Ordinal) { [TraceLink.StepIdMetadataKey] = stepId },
        };

    /// <summary>The most frequent content words (ties alphabetical).</summary>
    public static IReadOnlyList<string> ExperienceTags(string text) =>
        TextAnalysis.Terms(text)
            .Where(t => t.Length is >= 4 and <= 64 && !t.All(char.IsDigit)) // a longer word is no valid tag
            .GroupBy(TextAnalysis.Stem, StringComparer.Ordinal)
            .OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal)
            .Take(MaxTags)
            .Select(g => g.OrderBy(t => t.Length).ThenBy(t => t, StringComparer.Ordinal).First())
            .ToList();

    private static IEnumerable<string> Preferences(string summary, IReadOnlyList<string> turns) =>
        turns.Prepend(summary)
            .SelectMany(t => SentenceSplit().Split(t))
            .Select(s => s.Trim())
            .Where(s => s.Length is > 0 and <= 500 && PreferencePattern().IsMatch(s))
            .Distinct(StringComparer.OrdinalIgnoreCase);

    [GeneratedRegex(@"(?<=[.!?\n])\s+")]
    private static partial Regex SentenceSplit();

    [GeneratedRegex(@"\b(i|user|they|he|she)\s+(really\s+)?(prefer|prefers|like|likes|love|loves|hate|hates|dislike|dislikes|want|wants|would rather|'d rather)\b|\b(my|their|his|her)\s+favou?rite\b|\bplease\s+(always|never|don't|do not)\b|\bprefer(s|red)?\b", RegexOptions.IgnoreCase)]
    private static partial Regex PreferencePattern();
}
