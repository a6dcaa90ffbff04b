using System.Text.Json;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Events;
using CloudMemory.Trace.Features.Steps;

namespace CloudMemory.Trace.Features.Read;

/// <summary>
/// Trace-linked memory for entries other services make: a checkpoint asked for from a traced step
/// (the session app stamps <c>traceId</c>/<c>stepId</c> on <c>checkpoint-created</c>) is linked to that
/// step, so <c>GET /v1/memories/{checkpointId}/provenance</c> answers with the step, its inputs and
/// outputs and its ancestors. Idempotent, as at-least-once delivery requires.
/// </summary>
public static class ProducedMemoryLinks
{
    /// <summary>Dead-letter topic of the trace app's subscriptions.</summary>
    public const string DeadLetterTopic = "trace-dead-letter";

    /// <summary>Registers the subscription.</summary>
    public static IServiceCollection AddProducedMemoryLinks(this IServiceCollection services)
    {
        services.AddSingleton(sp => new Subscription(Topics.CheckpointCreated, "/events/trace/checkpoint-created",
            (e, ct) => LinkCheckpointAsync(sp.GetRequiredService<ITraceStore>(), e, ct), DeadLetterTopic));
        return services;
    }

    /// <summary>Links the checkpoint of a <c>checkpoint-created</c> event to the step that asked for it, if any.</summary>
    public static async Task<DeliveryStatus> LinkCheckpointAsync(ITraceStore store, CloudEvent cloudEvent, CancellationToken cancellationToken)
    {
        CheckpointCreated? checkpoint;
        try
        {
            checkpoint = cloudEvent.Data.Deserialize<CheckpointCreated>(ContractsJson.Options);
        }
        catch (JsonException)
        {
            return DeliveryStatus.Drop; // never becomes valid: to the dead-letter topic
        }
        if (checkpoint is null || !Ids.IsValid(checkpoint.TenantId) || !Ids.IsValid(checkpoint.CheckpointMessageId))
        {
            return DeliveryStatus.Drop;
        }
        if (!Ids.IsValid(checkpoint.TraceId) || !Ids.IsValid(checkpoint.StepId))
        {
            return DeliveryStatus.Success; // not asked for from a traced step: nothing to link
        }
        await store.LinkMemoriesAsync(checkpoint.TenantId, [new MemoryLink(checkpoint.CheckpointMessageId, checkpoint.TraceId!, checkpoint.StepId!)], cancellationToken);
        return DeliveryStatus.Success;
    }
}
