using System.Text.Json;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.BuildingBlocks.Workflows;
using CloudMemory.Context.Features.Memories;
using CloudMemory.Context.Features.Memories.Workflows;
using CloudMemory.Context.Features.TurnIndexing;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Events;
using CloudMemory.Conversations.Log;
using CloudMemory.Conversations.Text;

namespace CloudMemory.Context.Features.Consolidation;

/// <summary>
/// The context app's subscriptions: every written turn becomes searchable by its tenant's indexing
/// policy (<see cref="TurnIndexer"/>), and every checkpoint and finalize is consolidated into long-term memory.
/// Handlers are idempotent (deterministic ids), as at-least-once delivery requires.
/// </summary>
public static class ConversationEventHandlers
{
    /// <summary>Dead-letter topic of the context app's subscriptions.</summary>
    public const string DeadLetterTopic = "context-dead-letter";

    /// <summary>Registers the subscriptions.</summary>
    public static IServiceCollection AddConversationEventHandlers(this IServiceCollection services)
    {
        services.AddSingleton(sp => new Subscription(Topics.TurnWritten, "/events/context/turn-written",
            (e, ct) => IndexTurnAsync(sp, e, ct), DeadLetterTopic, Inline: true)); // it only queues the turn for the indexer
        services.AddSingleton(sp => new Subscription(Topics.CheckpointCreated, "/events/context/checkpoint-created",
            (e, ct) => ConsolidateCheckpointAsync(sp, e, ct), DeadLetterTopic));
        services.AddSingleton(sp => new Subscription(Topics.SessionFinalized, "/events/context/session-finalized",
            (e, ct) => ConsolidateFinalAsync(sp, e, ct), DeadLetterTopic));
        return services;
    }

    private static async Task<DeliveryStatus> IndexTurnAsync(IServiceProvider services, CloudEvent cloudEvent, CancellationToken cancellationToken)
    {
        if (!TryRead<TurnWritten>(cloudEvent, out var turn))
        {
            return DeliveryStatus.Drop;
        }
        // Queued by the tenant's indexing policy and indexed in batches; a full backlog asks the broker to redeliver later.
        var queued = await services.GetRequiredService<TurnIndexer>().EnqueueAsync(new PendingTurn(turn.TenantId, turn.ConversationId, turn.MessageId,
            ConversationText.RenderTurn(turn.UserQuery, turn.AgentResponse), DateTimeOffset.FromUnixTimeSeconds(turn.OccurredAt),
            string.IsNullOrEmpty(turn.UserId) ? null : turn.UserId), cancellationToken);
        return queued ? DeliveryStatus.Success : DeliveryStatus.Retry;
    }

    private static async Task<DeliveryStatus> ConsolidateCheckpointAsync(IServiceProvider services, CloudEvent cloudEvent, CancellationToken cancellationToken)
    {
        if (!TryRead<CheckpointCreated>(cloudEvent, out var checkpoint))
        {
            return DeliveryStatus.Drop;
        }
        var stats = await services.GetRequiredService<IConversationLog>().GetStatsAsync(checkpoint.TenantId, checkpoint.ConversationId, cancellationToken);
        await StartAsync(services, checkpoint.TenantId, checkpoint.ConversationId, stats?.UserId ?? "", checkpoint.Summary, checkpoint.CheckpointMessageId, final: false,
            checkpoint.TraceId, checkpoint.StepId, cancellationToken);
        return DeliveryStatus.Success;
    }

    private static async Task<DeliveryStatus> ConsolidateFinalAsync(IServiceProvider services, CloudEvent cloudEvent, CancellationToken cancellationToken)
    {
        if (!TryRead<SessionFinalized>(cloudEvent, out var finalized))
        {
            return DeliveryStatus.Drop;
        }
        await StartAsync(services, finalized.TenantId, finalized.ConversationId, finalized.UserId, finalized.Summary, finalized.CheckpointMessageId, final: true,
            finalized.TraceId, finalized.StepId, cancellationToken);
        return DeliveryStatus.Success;
    }

    private static async Task StartAsync(IServiceProvider services, string tenantId, string conversationId, string userId, string summary, string checkpointId, bool final,
        string? traceId, string? stepId, CancellationToken cancellationToken)
    {
        var recent = await services.GetRequiredService<IConversationLog>().ReadLastTurnsAsync(tenantId, conversationId, 8, cancellationToken);
        var input = new ConsolidationInput(tenantId, conversationId, userId, summary,
            recent.Select(m => ConversationText.RenderTurn(m.Query, m.Answer)).ToList(), final, traceId, stepId);
        // The checkpoint id is letters, digits and dashes: one consolidation per checkpoint.
        await services.GetRequiredService<IWorkflowClient>().ScheduleNewWorkflowAsync(nameof(ConsolidateConversationWorkflow),
            $"consolidate-{checkpointId}", input, cancellationToken);
    }

    private static bool TryRead<T>(CloudEvent cloudEvent, out T value)
    {
        try
        {
            value = cloudEvent.Data.Deserialize<T>(ContractsJson.Options)!;
            return value is not null;
        }
        catch (JsonException)
        {
            value = default!;
            return false; // a malformed event never becomes valid: DROP it to the dead-letter topic
        }
    }
}
