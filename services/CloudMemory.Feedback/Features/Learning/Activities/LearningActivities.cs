using CloudMemory.Contracts.Feedback;
using Dapr.Workflow;
using Microsoft.Extensions.Hosting;

namespace CloudMemory.Feedback.Features.Learning.Activities;

/// <summary>Measures the running trial and adopts or rolls it back once it reaches its horizon.</summary>
public sealed class EvaluateTrialActivity(LearningEngine engine, IHostApplicationLifetime lifetime) : WorkflowActivity<LearningCycleInput, TrialEvaluation>
{
    /// <inheritdoc />
    public override Task<TrialEvaluation> RunAsync(WorkflowActivityContext context, LearningCycleInput input) =>
        engine.EvaluateTrialAsync(input, lifetime.ApplicationStopping);
}

/// <summary>Proposes strategies from recent feedback and starts the strongest as a trial (ids are deterministic per cycle).</summary>
public sealed class ProposeStrategiesActivity(LearningEngine engine, IHostApplicationLifetime lifetime) : WorkflowActivity<LearningCycleInput, ProposalOutcome>
{
    /// <inheritdoc />
    public override Task<ProposalOutcome> RunAsync(WorkflowActivityContext context, LearningCycleInput input) =>
        engine.ProposeAsync(input, lifetime.ApplicationStopping);
}

/// <summary>Writes the cycle's history record (idempotent by cycle id).</summary>
public sealed class RecordLearningCycleActivity(LearningEngine engine, TimeProvider time, IHostApplicationLifetime lifetime) : WorkflowActivity<RecordCycleInput, LearningCycle>
{
    /// <inheritdoc />
    public override Task<LearningCycle> RunAsync(WorkflowActivityContext context, RecordCycleInput input) =>
        engine.RecordAsync(input, time.GetUtcNow(), lifetime.ApplicationStopping);
}
