using System.Diagnostics;
using System.Text.Json;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.Contracts;
using Dapr.Client;

namespace CloudMemory.Dapr;

/// <summary>
/// <see cref="IEventPublisher"/> over <see cref="DaprClient.PublishByteEventAsync"/>. The envelope is
/// built here and sent as <c>application/cloudevents+json</c> so that daprd passes it through and
/// the event id stays ours: a republished event then carries the same id and subscribers drop the copy.
/// </summary>
public sealed class DaprEventPublisher(DaprClient dapr, DaprOptions sidecar, TimeProvider time, string pubSubName = DaprComponents.PubSub) : IEventPublisher
{
    /// <inheritdoc />
    public async Task<string> PublishAsync<T>(string topic, string eventType, T data, PublishOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        var cloudEvent = new CloudEvent
        {
            Id = options?.EventId ?? Guid.NewGuid().ToString("N"),
            Source = sidecar.AppId,
            Type = eventType,
            Time = time.GetUtcNow(),
            Subject = options?.Subject,
            Topic = topic,
            PubSubName = pubSubName,
            TraceParent = Activity.Current?.Id,
            TenantId = options?.TenantId,
            Data = JsonSerializer.SerializeToElement(data, ContractsJson.Options),
        };
        var body = JsonSerializer.SerializeToUtf8Bytes(cloudEvent, DaprJson.Options);
        await dapr.PublishByteEventAsync(pubSubName, topic, body, CloudEvent.MediaType, cancellationToken: cancellationToken);
        return cloudEvent.Id;
    }
}
