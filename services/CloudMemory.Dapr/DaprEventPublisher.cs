using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.Contracts;

namespace CloudMemory.Dapr;

/// <summary>
/// <see cref="IEventPublisher"/> over <c>POST /v1.0/publish/{pubsub}/{topic}</c>. The envelope is
/// built here and sent as <c>application/cloudevents+json</c> so that daprd passes it through and
/// the event id stays ours: a retried publish then carries the same id and subscribers drop the copy.
/// </summary>
public sealed class DaprEventPublisher(DaprSidecarClient sidecar, TimeProvider time, string pubSubName = DaprComponents.PubSub) : IEventPublisher
{
    private static readonly MediaTypeHeaderValue CloudEventsMediaType = new(CloudEvent.MediaType);

    /// <inheritdoc />
    public async Task<string> PublishAsync<T>(string topic, string eventType, T data, PublishOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        var cloudEvent = new CloudEvent
        {
            Id = options?.EventId ?? Guid.NewGuid().ToString("N"),
            Source = sidecar.Options.AppId,
            Type = eventType,
            Time = time.GetUtcNow(),
            Subject = options?.Subject,
            Topic = topic,
            PubSubName = pubSubName,
            TraceParent = Activity.Current?.Id,
            TenantId = options?.TenantId,
            Data = JsonSerializer.SerializeToElement(data, ContractsJson.Options),
        };
        var body = JsonSerializer.SerializeToUtf8Bytes(cloudEvent, DaprSidecarClient.Json);
        var uri = sidecar.Uri($"v1.0/publish/{Uri.EscapeDataString(pubSubName)}/{Uri.EscapeDataString(topic)}");
        using var response = await sidecar.SendAsync(() =>
        {
            var content = new ByteArrayContent(body);
            content.Headers.ContentType = CloudEventsMediaType;
            return new HttpRequestMessage(HttpMethod.Post, uri) { Content = content };
        }, idempotent: true, cancellationToken); // same envelope, same id: safe to repeat
        await DaprSidecarClient.EnsureSuccessAsync(response, $"publish to '{topic}'", cancellationToken);
        return cloudEvent.Id;
    }
}
