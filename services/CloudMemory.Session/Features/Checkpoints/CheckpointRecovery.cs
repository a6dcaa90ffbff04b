using CloudMemory.BuildingBlocks.Workflows;
using CloudMemory.Conversations;
using CloudMemory.Conversations.Log;
using CloudMemory.Conversations.Text;
using CloudMemory.Session.Features.Sessions;
using Microsoft.Extensions.Options;

namespace CloudMemory.Session.Features.Checkpoints;

/// <summary>
/// Restarts the checkpoints a killed process took with it. The conversation actor starts the
/// background checkpoint after the turn is in the log; a crash in between (or during the workflow
/// of the embedded runner, which is not durable) leaves a conversation over the threshold that
/// only its next turn would notice. At start this scans the durable log for such conversations and
/// starts their checkpoint workflow under the same deterministic instance id the actor uses, so a
/// crossing still yields exactly one checkpoint (a checkpoint that did land moved the history below
/// the threshold and is not found; a workflow still alive in a durable runtime is not started twice).
/// </summary>
public sealed class CheckpointRecovery(
    IEnumerable<ICheckpointBacklog> backlogs,
    IWorkflowClient workflows,
    IOptions<MemoryPolicyOptions> policyOptions,
    IOptions<SessionOptions> sessionOptions,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    ILogger<CheckpointRecovery> logger) : BackgroundService
{
    /// <summary>Most conversations one start looks at.</summary>
    public const int ScanLimit = 10_000;

    // Checkpoints run a few at a time, so a long backlog does not crowd out live turns.
    private const int Parallelism = 4;

    /// <summary>Checkpoints this instance started (for tests and logs).</summary>
    public int Started { get; private set; }

    /// <summary>Completes when the scan is done.</summary>
    public Task Completion => _done.Task;

    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Whether a history of <paramref name="historyUnits"/> units after <paramref name="turnCount"/> turns is at the automatic checkpoint threshold (the actor's test).</summary>
    public static bool AtThreshold(MemoryPolicyOptions options, int turnCount, long historyUnits)
    {
        var policy = MemoryPolicy.Resolve(options, turnCount);
        return TokenEstimator.TokensFromUnits(historyUnits + 1) >= policy.TokenThresholdRatio * policy.ModelContextWindow;
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            var backlog = backlogs.FirstOrDefault();
            var policy = policyOptions.Value;
            var hours = sessionOptions.Value.CheckpointRecoveryHours;
            if (backlog is null || !policy.AutoCheckpoint || hours <= 0)
            {
                return;
            }
            // After start: the schema exists and the app is serving.
            var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            await using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
            {
                await started.Task.WaitAsync(stoppingToken);
            }
            // The lowest threshold any turn count can give (the dynamic policy lowers the ratio to 0.6).
            var lowestRatio = policy.DynamicThresholds ? Math.Min(0.6, policy.TokenThresholdRatio) : policy.TokenThresholdRatio;
            var minUnits = Math.Max(0, (long)Math.Floor(lowestRatio * policy.ModelContextWindow * TokenEstimator.UnitsPerToken) - 2 * TokenEstimator.UnitsPerToken);
            var candidates = await backlog.ListOverAsync(minUnits, time.GetUtcNow().AddHours(-hours), ScanLimit, stoppingToken);
            var due = candidates.Where(c => AtThreshold(policy, c.TurnCount, c.HistoryUnits)).ToList();
            if (due.Count == 0)
            {
                return;
            }
            logger.LogWarning("{Count} conversation(s) crossed the checkpoint threshold without a checkpoint (a previous process stopped first); checkpointing them now", due.Count);
            await Parallel.ForEachAsync(due, new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = stoppingToken }, async (c, ct) =>
            {
                var id = ConversationActor.CheckpointId(c.TenantId, c.ConversationId, c.CheckpointCount + 1);
                try
                {
                    var recentTurns = MemoryPolicy.Resolve(policy, c.TurnCount).RecentTurns;
                    await workflows.ScheduleNewWorkflowAsync(nameof(CheckpointConversationWorkflow), id,
                        new CheckpointWorkflowInput(c.TenantId, c.ConversationId, id, recentTurns), ct);
                    lock (_done)
                    {
                        Started++;
                    }
                    await workflows.WaitForWorkflowCompletionAsync(id, ct);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // One conversation's failure does not stop the others; its next turn retries it.
                    logger.LogError(ex, "Recovering checkpoint {CheckpointId} of {ConversationId} failed", id, c.ConversationId);
                }
            });
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // stopping
        }
        finally
        {
            _done.TrySetResult();
        }
    }
}
