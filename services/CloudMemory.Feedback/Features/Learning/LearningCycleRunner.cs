using System.Collections.Concurrent;
using System.Text.Json;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.BuildingBlocks.Workflows;
using CloudMemory.Contracts;
using CloudMemory.Feedback.Features.Learning.Workflows;
using Microsoft.Extensions.Options;
using CloudMemory.Contracts.Feedback;

namespace CloudMemory.Feedback.Features.Learning;

/// <summary>
/// Starts learning cycles through the workflow runner port and waits for them. Cycles of one agent
/// run one at a time: in this process (a second request waits for the first) and, on PostgreSQL,
/// across every process on the database (<see cref="ILearningStore.LockAgentAsync"/>). The
/// deterministic workflow instance id only keeps one cycle key from running twice on a durable
/// runtime; it does not keep two keys (a scheduled and an on-demand cycle, or two replicas'
/// embedded runners) apart, and in embedded mode each process has a runner of its own.
/// </summary>
public sealed class LearningCycleRunner(IWorkflowClient workflows, ILearningStore store, TimeProvider time)
{
    private readonly ConcurrentDictionary<(string, string), SemaphoreSlim> _gates = new();

    /// <summary>The workflow instance id (also the cycle id) of a cycle.</summary>
    public static string InstanceId(string tenantId, string agentId, string cycleKey) => $"learning-{tenantId}-{agentId}-{cycleKey}";

    /// <summary>Runs (or finds) the cycle <paramref name="cycleKey"/> of an agent; returns it and whether this call ran it.</summary>
    public async Task<(LearningCycle Cycle, bool Created)> RunAsync(string tenantId, string agentId, string cycleKey, CancellationToken cancellationToken = default)
    {
        var id = InstanceId(tenantId, agentId, cycleKey);
        if (id.Length > 400)
        {
            throw new ProblemException(400, "invalid-cycle-id", "tenant, agent and cycle id are too long together.");
        }
        var gate = _gates.GetOrAdd((tenantId, agentId), _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken);
        try
        {
            await using var held = await store.LockAgentAsync(tenantId, agentId, cancellationToken);
            if (await store.GetCycleAsync(tenantId, id, cancellationToken) is { } existing)
            {
                return (existing, false);
            }
            await workflows.ScheduleNewWorkflowAsync(nameof(RunLearningCycleWorkflow), id, new LearningCycleInput(tenantId, agentId, id, time.GetUtcNow()), cancellationToken);
            var state = await workflows.WaitForWorkflowCompletionAsync(id, cancellationToken);
            if (state.RuntimeStatus != WorkflowRuntimeStatus.Completed || state.SerializedOutput is null)
            {
                throw new ProblemException(500, "learning-cycle-failed", $"Learning cycle '{id}' ended {state.RuntimeStatus}: {state.FailureMessage}");
            }
            return (JsonSerializer.Deserialize<LearningCycle>(state.SerializedOutput, ContractsJson.Options)!, true);
        }
        finally
        {
            gate.Release();
        }
    }
}
