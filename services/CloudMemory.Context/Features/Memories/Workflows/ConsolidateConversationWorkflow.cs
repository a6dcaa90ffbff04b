using CloudMemory.Context.Features.Memories.Activities;
using Dapr.Workflow;

namespace CloudMemory.Context.Features.Memories.Workflows;

/// <summary>Input of <see cref="ConsolidateConversationWorkflow"/>: what a checkpoint or finalize knows about a conversation (and the trace step that asked for it, if any).</summary>
public sealed record ConsolidationInput(string TenantId, string ConversationId, string UserId, string Summary, IReadOnlyList<string> RecentTurns, bool Final,
    string? TraceId = null, string? StepId = null);

/// <summary>The long-term entries written (or confirmed) by a consolidation.</summary>
public sealed record ConsolidationResult(IReadOnlyList<string> EntryIds);

/// <summary>
/// Turns the short-term memory of a conversation into long-term entries: an episodic summary with
/// experience tags, plus user-level preferences. Entry ids are deterministic, so a retried
/// activity or a re-run consolidation rewrites the same entries instead of adding duplicates.
/// Start it with an instance id such as <c>consolidate-{conversationId}-{checkpoint}</c>.
/// </summary>
public sealed class ConsolidateConversationWorkflow : Workflow<ConsolidationInput, ConsolidationResult>
{
    // Changing these breaks in-flight instances on a durable runtime: add new ones instead.
    private static readonly WorkflowRetryPolicy WriteRetry = new(maxNumberOfAttempts: 5, firstRetryInterval: TimeSpan.FromSeconds(1), backoffCoefficient: 2, maxRetryInterval: TimeSpan.FromSeconds(30));

    /// <inheritdoc />
    public override async Task<ConsolidationResult> RunAsync(WorkflowContext context, ConsolidationInput input)
    {
        var plan = await context.CallActivityAsync<ConsolidationPlan>(nameof(ExtractLongTermMemoriesActivity), input);
        var ids = await context.CallActivityAsync<IReadOnlyList<string>>(nameof(WriteLongTermMemoriesActivity), plan, new WorkflowTaskOptions(WriteRetry));
        return new ConsolidationResult(ids);
    }
}
