using CloudMemory.Feedback.Features.Feedback;
using Microsoft.Extensions.Options;
using CloudMemory.Contracts.Feedback;

namespace CloudMemory.Feedback.Features.Learning;

/// <summary>
/// Runs a learning cycle for every agent with recent feedback once per <see cref="LearningOptions.ScheduleInterval"/>.
/// The cycle key is the interval's slot number, so a restart or a second replica in the same slot
/// starts no second cycle (same workflow instance id).
/// </summary>
public sealed class LearningScheduler(IFeedbackStore feedback, LearningCycleRunner runner, IOptions<LearningOptions> options, TimeProvider time, ILogger<LearningScheduler> logger) : BackgroundService
{
    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = options.Value.ScheduleInterval;
        if (interval <= TimeSpan.Zero)
        {
            return;
        }
        using var timer = new PeriodicTimer(interval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await RunDueCyclesAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning(e, "Scheduled learning cycles failed; retrying next interval");
            }
        }
    }

    /// <summary>One round: a cycle for each agent with feedback in the lookback period.</summary>
    public async Task RunDueCyclesAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var slot = now.ToUnixTimeMilliseconds() / (long)options.Value.ScheduleInterval.TotalMilliseconds;
        foreach (var (tenantId, agentId) in await feedback.ListActiveAgentsAsync(now - options.Value.Lookback, cancellationToken))
        {
            try
            {
                await runner.RunAsync(tenantId, agentId, $"s{slot}", cancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning(e, "Learning cycle of {Agent} in {Tenant} failed", agentId, tenantId);
            }
        }
    }
}
