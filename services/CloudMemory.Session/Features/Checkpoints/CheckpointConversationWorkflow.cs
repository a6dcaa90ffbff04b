using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Sessions;
using Dapr.Workflow;
using Microsoft.Extensions.Hosting;

namespace CloudMemory.Session.Features.Checkpoints;

/// <summary>Input of the automatic checkpoint; <c>TraceId</c>/<c>StepId</c> are the step of the turn write that started it (null when untraced).</summary>
public sealed record CheckpointWorkflowInput(string TenantId, string ConversationId, string CheckpointId, int RecentTurns, string? TraceId = null, string? StepId = null);

/// <summary>Output of the automatic checkpoint.</summary>
public sealed record CheckpointWorkflowOutput(bool Applied, string? Code, string SummarizerName);

/// <summary>
/// Automatic checkpoint, started by the conversation actor when a turn crosses the token
/// threshold: summarize (retried; the extractive summarizer if the LLM keeps failing) → write the
/// checkpoint and update the session (one actor call; it publishes checkpoint.created). The
/// instance id is the checkpoint id, so a crossing yields exactly one checkpoint.
/// </summary>
public sealed class CheckpointConversationWorkflow : Workflow<CheckpointWorkflowInput, CheckpointWorkflowOutput>
{
    /// <summary>Retry of the summarizer (an LLM call).</summary>
    public static readonly WorkflowRetryPolicy SummarizeRetry = new(maxNumberOfAttempts: 3, firstRetryInterval: TimeSpan.FromSeconds(1), backoffCoefficient: 2, maxRetryInterval: TimeSpan.FromSeconds(10));

    /// <summary>Retry of the checkpoint write.</summary>
    public static readonly WorkflowRetryPolicy ApplyRetry = new(maxNumberOfAttempts: 5, firstRetryInterval: TimeSpan.FromMilliseconds(200), backoffCoefficient: 2, maxRetryInterval: TimeSpan.FromSeconds(5));

    /// <inheritdoc />
    public override async Task<CheckpointWorkflowOutput> RunAsync(WorkflowContext context, CheckpointWorkflowInput input)
    {
        CheckpointPlan? plan;
        try
        {
            plan = await context.CallActivityAsync<CheckpointPlan?>(nameof(SummarizeConversationActivity),
                new SummarizeConversationInput(input.TenantId, input.ConversationId, UseFallback: false), new WorkflowTaskOptions(SummarizeRetry));
        }
        catch (Exception)
        {
            plan = await context.CallActivityAsync<CheckpointPlan?>(nameof(SummarizeConversationActivity),
                new SummarizeConversationInput(input.TenantId, input.ConversationId, UseFallback: true), new WorkflowTaskOptions(SummarizeRetry));
        }
        if (plan is null)
        {
            return new CheckpointWorkflowOutput(false, "session-not-found", "");
        }
        var reply = await context.CallActivityAsync<ActorReply<CheckpointResult>>(nameof(ApplyCheckpointActivity),
            new ApplyCheckpointInput(input, plan), new WorkflowTaskOptions(ApplyRetry));
        return new CheckpointWorkflowOutput(reply.IsSuccess, reply.Code, plan.SummarizerName);
    }
}

/// <summary>Input of <see cref="SummarizeConversationActivity"/>.</summary>
public sealed record SummarizeConversationInput(string TenantId, string ConversationId, bool UseFallback);

/// <summary>Reads what the last checkpoint does not cover and summarizes it.</summary>
public sealed class SummarizeConversationActivity(CheckpointCoordinator coordinator, IHostApplicationLifetime lifetime) : WorkflowActivity<SummarizeConversationInput, CheckpointPlan?>
{
    /// <inheritdoc />
    public override Task<CheckpointPlan?> RunAsync(WorkflowActivityContext context, SummarizeConversationInput input) =>
        coordinator.PlanAsync(input.TenantId, input.ConversationId, summary: null, input.UseFallback, lifetime.ApplicationStopping);
}

/// <summary>Input of <see cref="ApplyCheckpointActivity"/>.</summary>
public sealed record ApplyCheckpointInput(CheckpointWorkflowInput Workflow, CheckpointPlan Plan);

/// <summary>Writes the checkpoint through the conversation actor (idempotent by checkpoint id).</summary>
public sealed class ApplyCheckpointActivity(CheckpointCoordinator coordinator, IHostApplicationLifetime lifetime) : WorkflowActivity<ApplyCheckpointInput, ActorReply<CheckpointResult>>
{
    /// <inheritdoc />
    public override Task<ActorReply<CheckpointResult>> RunAsync(WorkflowActivityContext context, ApplyCheckpointInput input) =>
        coordinator.ApplyAsync(input.Workflow.TenantId, input.Workflow.ConversationId, input.Workflow.CheckpointId, input.Plan,
            input.Workflow.RecentTurns, final: false, automatic: true,
            input.Workflow is { TraceId: { } traceId, StepId: { } stepId } ? new TraceLink(traceId, stepId) : null, lifetime.ApplicationStopping);
}
