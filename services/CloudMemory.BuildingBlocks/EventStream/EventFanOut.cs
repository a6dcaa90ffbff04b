using CloudMemory.BuildingBlocks.Embedded;
using CloudMemory.BuildingBlocks.PubSub;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace CloudMemory.BuildingBlocks.EventStream;

/// <summary>The events this process sees, as it sees them: what the event stream and its replay buffer follow.</summary>
public interface IEventTap
{
    /// <summary>Calls <paramref name="observer"/> with every event until the result is disposed.</summary>
    IDisposable Tap(Action<CloudEvent> observer);
}

/// <summary>
/// The Dapr runtime's <see cref="IEventTap"/>: the app's pub/sub deliveries, handed on as they are
/// acknowledged. An event delivered on several routes of the app (or redelivered) is handed on once.
/// </summary>
public sealed class EventFanOut : IEventTap
{
    private const int RememberedIds = 4096;
    private readonly List<Action<CloudEvent>> _observers = [];
    private readonly HashSet<string> _seen = new(StringComparer.Ordinal);
    private readonly Queue<string> _seenOrder = new();
    private readonly Lock _gate = new();

    /// <inheritdoc />
    public IDisposable Tap(Action<CloudEvent> observer)
    {
        lock (_gate)
        {
            _observers.Add(observer);
        }
        return new Untap(this, observer);
    }

    /// <summary>Hands <paramref name="cloudEvent"/> to every observer, unless its id was handed on recently.</summary>
    public void Publish(CloudEvent cloudEvent)
    {
        Action<CloudEvent>[] observers;
        lock (_gate)
        {
            if (!_seen.Add(cloudEvent.Id))
            {
                return;
            }
            _seenOrder.Enqueue(cloudEvent.Id);
            if (_seenOrder.Count > RememberedIds)
            {
                _seen.Remove(_seenOrder.Dequeue());
            }
            observers = [.. _observers];
        }
        foreach (var observer in observers)
        {
            observer(cloudEvent);
        }
    }

    private sealed class Untap(EventFanOut owner, Action<CloudEvent> observer) : IDisposable
    {
        public void Dispose()
        {
            lock (owner._gate)
            {
                owner._observers.Remove(observer);
            }
        }
    }
}

/// <summary>Registers the event stream (<c>GET /v1/events</c>) on either runtime.</summary>
public static class EventStreamServiceCollectionExtensions
{
    /// <summary>
    /// The stream's options, replay buffer and tap: the embedded bus when this process runs the
    /// Embedded runtime, else an <see cref="EventFanOut"/> of the app's Dapr deliveries. Call after the runtime.
    /// </summary>
    public static IServiceCollection AddEventStream(this IServiceCollection services)
    {
        services.AddOptions<EventStreamOptions>().BindConfiguration(EventStreamOptions.SectionName);
        if (services.Any(d => d.ServiceType == typeof(InMemoryEventBus)))
        {
            services.TryAddSingleton<IEventTap>(sp => sp.GetRequiredService<InMemoryEventBus>());
        }
        else
        {
            services.TryAddSingleton<EventFanOut>();
            services.TryAddSingleton<IEventTap>(sp => sp.GetRequiredService<EventFanOut>());
        }
        services.TryAddSingleton<EventReplayBuffer>();
        return services;
    }
}
