using CloudMemory.Contracts.Feedback;
using CloudMemory.Feedback.Features.Learning.Activities;
using Dapr.Workflow;

namespace CloudMemory.Feedback.Features.Learning.Workflows;

/// <summary>
/// One learning cycle of an agent: evaluate the running trial (adopt or roll back), and when none
/// is left running, propose strategies from recent feedback and start the strongest as a trial;
/// then write the history record. Started with the deterministic instance id
/// <c>learning-{tenant}-{agent}-{cycle key}</c>, so a cycle runs at most once.
/// </summary>
public sealed class RunLearningCycleWorkflow : Workflow<LearningCycleInput, LearningCycle>
{
    // Changing this breaks in-flight instances on a durable runtime: add a new one instead.
    private static readonly WorkflowRetryPolicy StoreRetry = new(maxNumberOfAttempts: 4, firstRetryInterval: TimeSpan.FromSeconds(1), backoffCoefficient: 2, maxRetryInterval: TimeSpan.FromSeconds(10));

    /// <inheritdoc />
    public override async Task<LearningCycle> RunAsync(WorkflowContext context, LearningCycleInput input)
    {
        var options = new WorkflowTaskOptions(StoreRetry);
        var evaluation = await context.CallActivityAsync<TrialEvaluation>(nameof(EvaluateTrialActivity), input, options);
        ProposalOutcome? proposal = null;
        if (evaluation.Decision != CycleDecisions.TrialContinues)
        {
            proposal = await context.CallActivityAsync<ProposalOutcome>(nameof(ProposeStrategiesActivity), input, options);
        }
        return await context.CallActivityAsync<LearningCycle>(nameof(RecordLearningCycleActivity), new RecordCycleInput(input, evaluation, proposal), options);
    }
}
