using System.Diagnostics;
using CloudMemory.BuildingBlocks.PubSub;
using Dapr.Client;

namespace CloudMemory.Dapr;

/// <summary>
/// <see cref="IEventPublisher"/> over <see cref="DaprClient.PublishByteEventAsync"/>. The envelope is
/// built here by <see cref="CloudEventFormat"/> (CloudNative.CloudEvents, as on the embedded bus) and
/// sent as <c>application/cloudevents+json</c> so that daprd passes it through and the event id stays ours: a republished event then carries the same id and subscribers drop the copy.
/// </summary>
public sealed class DaprEventPublisher(DaprClient dapr, DaprOptions sidecar, TimeProvider time, string pubSubName = DaprComponents.PubSub) : IEventPublisher
{
    /// <inheritdoc />
    public async Task<string> PublishAsync<T>(string topic, string eventType, T data, PublishOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        var cloudEvent = CloudEventFormat.Create(options?.EventId ?? Guid.NewGuid().ToString("N"), sidecar.AppId, eventType, data, time.GetUtcNow(),
            options?.Subject, topic, pubSubName, Activity.Current?.Id, options?.TenantId);
        var body = CloudEventFormat.Encode(cloudEvent);
        await dapr.PublishByteEventAsync(pubSubName, topic, body, CloudEvent.MediaType, cancellationToken: cancellationToken);
        return cloudEvent.Id;
    }
}
