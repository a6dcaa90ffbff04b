using System.Text.Json;
using System.Text.Json.Serialization;

namespace CloudMemory.BuildingBlocks.PubSub;

/// <summary>A CloudEvents 1.0 envelope in JSON structured mode, with Dapr's extension attributes.</summary>
public sealed record CloudEvent
{
    /// <summary>Unique id; subscribers deduplicate by it.</summary>
    [JsonPropertyName("id")] public required string Id { get; init; }

    /// <summary>The publishing app id.</summary>
    [JsonPropertyName("source")] public required string Source { get; init; }

    /// <summary>Versioned event type, e.g. cloudmemory.turn.written.v1.</summary>
    [JsonPropertyName("type")] public required string Type { get; init; }

    /// <summary>Always 1.0.</summary>
    [JsonPropertyName("specversion")] public string SpecVersion { get; init; } = "1.0";

    /// <summary>Content type of <see cref="Data"/>.</summary>
    [JsonPropertyName("datacontenttype")] public string DataContentType { get; init; } = "application/json";

    /// <summary>When the event happened (RFC 3339).</summary>
    [JsonPropertyName("time")] public DateTimeOffset? Time { get; init; }

    /// <summary>Subject, e.g. the conversation id.</summary>
    [JsonPropertyName("subject")] public string? Subject { get; init; }

    /// <summary>Topic (Dapr extension).</summary>
    [JsonPropertyName("topic")] public string? Topic { get; init; }

    /// <summary>Pub/sub component (Dapr extension).</summary>
    [JsonPropertyName("pubsubname")] public string? PubSubName { get; init; }

    /// <summary>W3C trace context (Dapr extension).</summary>
    [JsonPropertyName("traceparent")] public string? TraceParent { get; init; }

    /// <summary>Tenant of the event (CloudMemory extension attribute).</summary>
    [JsonPropertyName("tenantid")] public string? TenantId { get; init; }

    /// <summary>The payload.</summary>
    [JsonPropertyName("data")] public JsonElement Data { get; init; }

    /// <summary>The media type of structured-mode CloudEvents.</summary>
    public const string MediaType = "application/cloudevents+json";
}

/// <summary>What a subscriber tells the broker (Dapr's SUCCESS / RETRY / DROP).</summary>
public enum DeliveryStatus
{
    /// <summary>Processed; do not deliver again.</summary>
    Success,

    /// <summary>Failed for now; deliver again later.</summary>
    Retry,

    /// <summary>Never processable; drop (to the dead-letter topic when one is set).</summary>
    Drop,
}

/// <summary>Handles one delivered event.</summary>
public delegate Task<DeliveryStatus> CloudEventHandler(CloudEvent cloudEvent, CancellationToken cancellationToken);

/// <summary>A subscription of this app to a topic (served from <c>GET /dapr/subscribe</c> on Dapr).</summary>
/// <param name="Topic">The topic.</param>
/// <param name="Route">The app route Dapr delivers to.</param>
/// <param name="Handler">The handler.</param>
/// <param name="DeadLetterTopic">Where dropped or exhausted events go.</param>
/// <param name="PubSubName">The pub/sub component.</param>
/// <param name="Inline">
/// The handler returns quickly without blocking (it only queues work of its own). The embedded bus then
/// calls it on the publisher's thread rather than waking a delivery worker for each event; retries and
/// dead letters are as for any subscription. Dapr delivers over HTTP either way.
/// </param>
public sealed record Subscription(string Topic, string Route, CloudEventHandler Handler, string? DeadLetterTopic = null, string PubSubName = "pubsub",
    bool Inline = false);

/// <summary>Publishes integration events as CloudEvents.</summary>
public interface IEventPublisher
{
    /// <summary>Publishes <paramref name="data"/> on <paramref name="topic"/>; returns the event id.</summary>
    Task<string> PublishAsync<T>(string topic, string eventType, T data, PublishOptions? options = null, CancellationToken cancellationToken = default);
}

/// <summary>Optional attributes of a published event.</summary>
/// <param name="EventId">A deterministic id makes republishing idempotent for subscribers.</param>
/// <param name="Subject">CloudEvent subject.</param>
/// <param name="TenantId">Tenant extension attribute.</param>
public sealed record PublishOptions(string? EventId = null, string? Subject = null, string? TenantId = null);
