using System.Text.Json;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Events;
using CloudMemory.Trace.Features.Steps;

namespace CloudMemory.Trace.Features.Read;

/// <summary>
/// Trace-linked memory for entries other services make: a checkpoint asked for from a traced step
/// (the session app stamps <c>traceId</c>/<c>stepId</c> on <c>checkpoint-created</c>; an automatic
/// checkpoint carries the step of the turn write that crossed the threshold) is linked to that
/// step, so <c>GET /v1/memories/{checkpointId}/provenance</c> answers with the step, its inputs and
/// outputs and its ancestors. A shared-context field change made from a step
/// (<c>shared-context-changed</c> with <c>traceId</c>/<c>stepId</c>) links the context
/// (<c>{contextId}</c>) and each changed field (<c>{contextId}:{field}</c>) to it. Idempotent, as
/// at-least-once delivery requires.
/// </summary>
public static class ProducedMemoryLinks
{
    /// <summary>Dead-letter topic of the trace app's subscriptions.</summary>
    public const string DeadLetterTopic = "trace-dead-letter";

    /// <summary>The session app's topic of shared-context changes (<c>cloudmemory.shared_context.changed.v1</c>).</summary>
    public const string SharedContextChangedTopic = "shared-context-changed";

    /// <summary>Registers the subscription.</summary>
    public static IServiceCollection AddProducedMemoryLinks(this IServiceCollection services)
    {
        services.AddSingleton(sp => new Subscription(Topics.CheckpointCreated, "/events/trace/checkpoint-created",
            (e, ct) => LinkCheckpointAsync(sp.GetRequiredService<ITraceStore>(), e, ct), DeadLetterTopic));
        services.AddSingleton(sp => new Subscription(SharedContextChangedTopic, "/events/trace/shared-context-changed",
            (e, ct) => LinkSharedContextChangeAsync(sp.GetRequiredService<ITraceStore>(), e, ct), DeadLetterTopic));
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

    /// <summary>
    /// Links a shared-context change that changed fields and was made from a step: the context id and
    /// <c>{contextId}:{field}</c> of every changed field become memory ids produced by that step.
    /// </summary>
    public static async Task<DeliveryStatus> LinkSharedContextChangeAsync(ITraceStore store, CloudEvent cloudEvent, CancellationToken cancellationToken)
    {
        SharedContextFieldChange? change;
        try
        {
            change = cloudEvent.Data.Deserialize<SharedContextFieldChange>(ContractsJson.Options);
        }
        catch (JsonException)
        {
            return DeliveryStatus.Drop;
        }
        if (change is null || !Ids.IsValid(change.TenantId) || !Ids.IsValid(change.ContextId))
        {
            return DeliveryStatus.Drop;
        }
        if (!Ids.IsValid(change.TraceId) || !Ids.IsValid(change.StepId) || change.Diff is not { Count: > 0 } diff)
        {
            return DeliveryStatus.Success; // no field changed, or not made from a traced step
        }
        var links = new List<MemoryLink> { new(change.ContextId, change.TraceId!, change.StepId!) };
        foreach (var field in diff.Keys)
        {
            var memoryId = $"{change.ContextId}:{field}";
            if (Ids.IsValid(memoryId))
            {
                links.Add(new MemoryLink(memoryId, change.TraceId!, change.StepId!));
            }
        }
        await store.LinkMemoriesAsync(change.TenantId, links, cancellationToken);
        return DeliveryStatus.Success;
    }

    /// <summary>The fields of <c>cloudmemory.shared_context.changed.v1</c> the link needs.</summary>
    private sealed record SharedContextFieldChange(string TenantId, string ContextId, string? TraceId, string? StepId, Dictionary<string, JsonElement>? Diff);
}
