using System.Text.Json;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.BuildingBlocks.PubSub;
using Microsoft.Extensions.Options;

namespace CloudMemory.BuildingBlocks.EventStream;

/// <summary>Settings of the embedded event stream (<c>CloudMemory:Events</c>).</summary>
public sealed class EventStreamOptions
{
    /// <summary>Configuration section.</summary>
    public const string SectionName = "CloudMemory:Events";

    /// <summary>Events kept per tenant for followers that reconnect with <c>Last-Event-ID</c>.</summary>
    public int ReplayBufferSize { get; set; } = 1000;

    /// <summary>How long a kept event stays replayable, in seconds.</summary>
    public double ReplayMaxAgeSeconds { get; set; } = 600;

    /// <summary>Seconds between heartbeat comment lines on an idle stream (keeps proxies from closing it).</summary>
    public double HeartbeatSeconds { get; set; } = 15;
}

/// <summary>
/// The last events of each tenant, bounded by count and age, so a follower of <c>GET /v1/events</c>
/// that reconnects with <c>Last-Event-ID</c> gets what it missed. Records every event the embedded
/// process sees (<see cref="IEventTap"/>) from its creation (at start-up, when the stream is mapped).
/// </summary>
public sealed class EventReplayBuffer : IDisposable
{
    private readonly Dictionary<string, LinkedList<CloudEvent>> _byTenant = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly EventStreamOptions _options;
    private readonly TimeProvider _time;
    private readonly IDisposable _tap;

    /// <summary>Creates the buffer and starts recording <paramref name="bus"/>'s events.</summary>
    public EventReplayBuffer(IEventTap bus, IOptions<EventStreamOptions> options, TimeProvider time)
    {
        _options = options.Value;
        _time = time;
        _tap = bus.Tap(Add);
    }

    /// <summary>Keeps <paramref name="cloudEvent"/> (the oldest of its tenant go when the buffer is full).</summary>
    public void Add(CloudEvent cloudEvent)
    {
        if (_options.ReplayBufferSize <= 0)
        {
            return;
        }
        var tenant = cloudEvent.TenantId ?? Tenant.Default;
        lock (_gate)
        {
            if (!_byTenant.TryGetValue(tenant, out var list))
            {
                _byTenant[tenant] = list = new LinkedList<CloudEvent>();
            }
            list.AddLast(cloudEvent);
            while (list.Count > _options.ReplayBufferSize)
            {
                list.RemoveFirst();
            }
            Expire(list);
        }
    }

    /// <summary>
    /// The tenant's kept events after the one with id <paramref name="lastEventId"/>, oldest first;
    /// <c>Found</c> is false when that id is no longer (or never was) kept, and then every kept event comes back.
    /// </summary>
    public (IReadOnlyList<CloudEvent> Events, bool Found) After(string tenant, string lastEventId)
    {
        lock (_gate)
        {
            if (!_byTenant.TryGetValue(tenant, out var list))
            {
                return ([], false);
            }
            Expire(list);
            var all = list.ToList();
            var index = all.FindLastIndex(e => e.Id == lastEventId);
            return index < 0 ? (all, false) : (all.GetRange(index + 1, all.Count - index - 1), true);
        }
    }

    /// <summary>Forgets the tenant's kept events that match (erasure); returns how many.</summary>
    public int Remove(string tenant, Func<CloudEvent, bool> match)
    {
        lock (_gate)
        {
            if (!_byTenant.TryGetValue(tenant, out var list))
            {
                return 0;
            }
            var removed = 0;
            for (var node = list.First; node is not null;)
            {
                var next = node.Next;
                if (match(node.Value))
                {
                    list.Remove(node);
                    removed++;
                }
                node = next;
            }
            return removed;
        }
    }

    /// <summary>A string property of the event's data (e.g. <c>conversationId</c>, <c>userId</c>), or null.</summary>
    public static string? DataProperty(CloudEvent cloudEvent, string name) =>
        cloudEvent.Data.ValueKind == JsonValueKind.Object && cloudEvent.Data.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : null;

    /// <inheritdoc />
    public void Dispose() => _tap.Dispose();

    private void Expire(LinkedList<CloudEvent> list)
    {
        var oldest = _time.GetUtcNow() - TimeSpan.FromSeconds(_options.ReplayMaxAgeSeconds);
        while (list.First is { } first && first.Value.Time < oldest)
        {
            list.RemoveFirst();
        }
    }
}
