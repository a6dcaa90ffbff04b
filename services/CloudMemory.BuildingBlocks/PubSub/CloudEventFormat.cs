using System.Text.Json;
using CloudMemory.Contracts;
using CloudNative.CloudEvents;
using CloudNative.CloudEvents.SystemTextJson;
using SdkCloudEvent = CloudNative.CloudEvents.CloudEvent;

namespace CloudMemory.BuildingBlocks.PubSub;

/// <summary>
/// CloudEvents 1.0 envelopes built, validated and written by the CNCF SDK (CloudNative.CloudEvents):
/// <see cref="Create"/> makes the envelope a publisher sends, <see cref="Encode"/> / <see cref="Decode"/>
/// are its structured-mode JSON (<c>application/cloudevents+json</c>). <see cref="CloudEvent"/> is
/// the typed view handlers receive; its extension attributes are Dapr's and CloudMemory's below.
/// </summary>
public static class CloudEventFormat
{
    /// <summary>Topic (Dapr extension).</summary>
    public static readonly CloudEventAttribute Topic = CloudEventAttribute.CreateExtension("topic", CloudEventAttributeType.String);

    /// <summary>Pub/sub component (Dapr extension).</summary>
    public static readonly CloudEventAttribute PubSubName = CloudEventAttribute.CreateExtension("pubsubname", CloudEventAttributeType.String);

    /// <summary>W3C trace context of the publisher (Dapr extension).</summary>
    public static readonly CloudEventAttribute TraceParent = CloudEventAttribute.CreateExtension("traceparent", CloudEventAttributeType.String);

    /// <summary>Tenant of the event (CloudMemory extension).</summary>
    public static readonly CloudEventAttribute TenantId = CloudEventAttribute.CreateExtension("tenantid", CloudEventAttributeType.String);

    /// <summary>The extension attributes CloudMemory reads and writes.</summary>
    public static readonly IReadOnlyList<CloudEventAttribute> Extensions = [Topic, PubSubName, TraceParent, TenantId];

    private static readonly JsonEventFormatter Formatter = new(ContractsJson.Options, default);

    /// <summary>
    /// A new envelope: <paramref name="data"/> as JSON (CloudMemory's contract options); the SDK
    /// checks the required attributes and the extension values.
    /// </summary>
    public static CloudEvent Create<T>(string id, string source, string type, T data, DateTimeOffset time, string? subject = null,
        string? topic = null, string? pubSubName = null, string? traceParent = null, string? tenantId = null)
    {
        var envelope = new SdkCloudEvent(CloudEventsSpecVersion.V1_0, Extensions)
        {
            Id = id,
            Source = new Uri(source, UriKind.RelativeOrAbsolute),
            Type = type,
            Time = time,
            Subject = subject,
            DataContentType = "application/json",
            Data = JsonSerializer.SerializeToElement(data, ContractsJson.Options),
        };
        Set(envelope, Topic, topic);
        Set(envelope, PubSubName, pubSubName);
        Set(envelope, TraceParent, traceParent);
        Set(envelope, TenantId, tenantId);
        return FromSdk(envelope.Validate());
    }

    /// <summary>The envelope as the SDK's <see cref="SdkCloudEvent"/>.</summary>
    public static SdkCloudEvent ToSdk(CloudEvent cloudEvent)
    {
        var envelope = new SdkCloudEvent(CloudEventsSpecVersion.FromVersionId(cloudEvent.SpecVersion) ?? CloudEventsSpecVersion.V1_0, Extensions)
        {
            Id = cloudEvent.Id,
            Source = new Uri(cloudEvent.Source, UriKind.RelativeOrAbsolute),
            Type = cloudEvent.Type,
            Time = cloudEvent.Time,
            Subject = cloudEvent.Subject,
            DataContentType = cloudEvent.DataContentType,
            Data = cloudEvent.Data.ValueKind == JsonValueKind.Undefined ? null : cloudEvent.Data,
        };
        Set(envelope, Topic, cloudEvent.Topic);
        Set(envelope, PubSubName, cloudEvent.PubSubName);
        Set(envelope, TraceParent, cloudEvent.TraceParent);
        Set(envelope, TenantId, cloudEvent.TenantId);
        return envelope.Validate();
    }

    /// <summary>The typed view of an SDK envelope (data must be JSON).</summary>
    public static CloudEvent FromSdk(SdkCloudEvent envelope)
    {
        envelope.Validate();
        return new CloudEvent
        {
            Id = envelope.Id!,
            Source = envelope.Source!.OriginalString,
            Type = envelope.Type!,
            SpecVersion = envelope.SpecVersion.VersionId,
            DataContentType = envelope.DataContentType ?? "application/json",
            Time = envelope.Time,
            Subject = envelope.Subject,
            Topic = (string?)envelope[Topic],
            PubSubName = (string?)envelope[PubSubName],
            TraceParent = (string?)envelope[TraceParent],
            TenantId = (string?)envelope[TenantId],
            Data = envelope.Data switch
            {
                null => default,
                JsonElement element => element,
                var other => throw new ArgumentException($"CloudEvent {envelope.Id} carries {other.GetType().Name} data; CloudMemory events carry JSON.", nameof(envelope)),
            },
        };
    }

    /// <summary>Structured-mode JSON of the envelope.</summary>
    public static ReadOnlyMemory<byte> Encode(CloudEvent cloudEvent) => Formatter.EncodeStructuredModeMessage(ToSdk(cloudEvent), out _);

    /// <summary>Reads structured-mode JSON; throws <see cref="ArgumentException"/> when it is not a valid CloudEvent.</summary>
    public static CloudEvent Decode(ReadOnlyMemory<byte> body) => FromSdk(Formatter.DecodeStructuredModeMessage(body, null, Extensions));

    private static void Set(SdkCloudEvent envelope, CloudEventAttribute attribute, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            envelope[attribute] = value;
        }
    }
}
