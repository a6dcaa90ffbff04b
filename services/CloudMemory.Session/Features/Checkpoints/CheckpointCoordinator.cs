using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Conversations;
using CloudMemory.Conversations.Log;
using CloudMemory.Conversations.Sessions;
using CloudMemory.Conversations.Summaries;
using CloudMemory.Conversations.Text;
using Dapr.Actors.Client;
using Microsoft.Extensions.Options;

namespace CloudMemory.Session.Features.Checkpoints;

/// <summary>What a checkpoint will be made of: the summary and the log position it covers.</summary>
public sealed record CheckpointPlan(string ExpectedPreviousCheckpointId, long CoveredThroughSequence, string Summary, string SummarizerName);

/// <summary>
/// The steps of a checkpoint shared by the background workflow and explicit requests: read what
/// the last checkpoint does not cover, summarize it on top of the previous summary (outside the
/// actor, so a slow LLM never holds up the conversation's turns), then apply it through the actor.
/// </summary>
public sealed class CheckpointCoordinator(
    IConversationLog log,
    IActorProxyFactory actors,
    SessionSnapshots sessions,
    ISummarizer summarizer,
    ExtractiveSummarizer fallback,
    IOptions<MemoryPolicyOptions> policy,
    ILogger<CheckpointCoordinator> logger)
{
    /// <summary>Default RecentTurns.</summary>
    public int DefaultRecentTurns => policy.Value.RecentTurns;

    /// <summary>Plans a checkpoint; null when the conversation is unknown.</summary>
    public async Task<CheckpointPlan?> PlanAsync(string tenantId, string conversationId, string? summary, bool useFallback, CancellationToken cancellationToken = default)
    {
        var segment = await log.ReadSinceCheckpointAsync(tenantId, conversationId, cancellationToken);
        var (stats, messages) = (segment.Stats, segment.Messages);
        if (stats is null)
        {
            return null;
        }
        var turns = messages.Where(m => !m.IsCheckpoint).ToList();
        var covered = turns.Count > 0 ? Math.Max(turns[^1].Sequence, stats.CoveredThroughSequence) : stats.CoveredThroughSequence;
        var profile = await ProfileAsync(tenantId, conversationId, cancellationToken);
        // Summaries are bounded: a share of the context budget, so a checkpoint always brings the history down.
        var maxTokens = MemoryPolicy.Resolve(policy.Value, stats.TurnCount).SummaryTokens;
        if (!string.IsNullOrWhiteSpace(summary))
        {
            var tokens = TokenEstimator.Estimate(summary);
            if (tokens > maxTokens)
            {
                throw new ProblemException(413, "summary-too-large",
                    $"The summary is about {tokens} tokens; a checkpoint summary may take at most {maxTokens} (CloudMemory:Memory:SummaryShare of the context budget).");
            }
            return new CheckpointPlan(stats.CheckpointMessageId, covered, SummarySafety.Bound(summary, maxTokens, profile), "caller");
        }
        var chosen = useFallback ? fallback : summarizer;
        var text = await chosen.SummarizeAsync(new SummaryInput(stats.Summary, turns, profile, maxTokens), cancellationToken);
        return new CheckpointPlan(stats.CheckpointMessageId, covered, SummarySafety.Bound(text, maxTokens, profile), chosen.Name);
    }

    /// <summary>Applies a plan through the conversation's actor.</summary>
    public Task<ActorReply<CheckpointResult>> ApplyAsync(string tenantId, string conversationId, string messageId, CheckpointPlan plan, int recentTurns, bool final, bool automatic, CancellationToken cancellationToken = default) =>
        ApplyAsync(tenantId, conversationId, messageId, plan, recentTurns, final, automatic, producedBy: null, cancellationToken);

    /// <summary>Applies a plan through the conversation's actor; <paramref name="producedBy"/> is the trace step that asked for it (trace-linked memory).</summary>
    public Task<ActorReply<CheckpointResult>> ApplyAsync(string tenantId, string conversationId, string messageId, CheckpointPlan plan, int recentTurns, bool final, bool automatic,
        TraceLink? producedBy, CancellationToken cancellationToken = default) =>
        actors.Conversation(tenantId, conversationId).ApplyCheckpoint(
            new ApplyCheckpointCommand(tenantId, conversationId, messageId, plan.ExpectedPreviousCheckpointId, plan.CoveredThroughSequence, plan.Summary, recentTurns, final, automatic,
                producedBy?.TraceId, producedBy?.StepId));

    /// <summary>
    /// The explicit checkpoint/finalize path: plans with the configured summarizer (extractive on
    /// failure) and applies; planned again once if a background checkpoint landed in between.
    /// </summary>
    public async Task<ActorReply<CheckpointResult>> RunAsync(string tenantId, string conversationId, string? summary, int recentTurns, bool final, TraceLink? producedBy = null,
        CancellationToken cancellationToken = default)
    {
        if (final && await log.GetStatsAsync(tenantId, conversationId, cancellationToken) is { Finalized: true } done)
        {
            // Already finalized: the actor answers as the first time, without summarizing again.
            var same = new CheckpointPlan(done.CheckpointMessageId, done.CoveredThroughSequence, done.Summary, "none");
            return await ApplyAsync(tenantId, conversationId, done.CheckpointMessageId, same, recentTurns, final, automatic: false, producedBy, cancellationToken);
        }
        for (var attempt = 1; ; attempt++)
        {
            CheckpointPlan? plan;
            try
            {
                plan = await PlanAsync(tenantId, conversationId, summary, useFallback: false, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException and not ProblemException)
            {
                logger.LogWarning(ex, "Summarizer failed for {ConversationId}; using the extractive summarizer", conversationId);
                plan = await PlanAsync(tenantId, conversationId, summary, useFallback: true, cancellationToken);
            }
            if (plan is null)
            {
                return ActorReply<CheckpointResult>.Fail(404, "session-not-found", $"Conversation '{conversationId}' is unknown.");
            }
            var id = $"cp-{Guid.NewGuid():N}" + (final ? "-final" : "");
            var reply = await ApplyAsync(tenantId, conversationId, id, plan, recentTurns, final, automatic: false, producedBy, cancellationToken);
            if (reply.Code != "checkpoint-conflict" || attempt == 2)
            {
                return reply;
            }
        }
    }

    private async Task<UserProfile> ProfileAsync(string tenantId, string conversationId, CancellationToken cancellationToken)
    {
        var reply = await sessions.GetAsync(tenantId, conversationId, cancellationToken);
        return reply.Value?.Session.UserSnapshot ?? new UserProfile();
    }
}
