using System.Collections.Concurrent;

namespace CloudMemory.BuildingBlocks.PubSub;

/// <summary>
/// Remembers recently processed event ids per subscription so an at-least-once redelivery is
/// acknowledged without running the handler again. Bounded: the oldest ids are forgotten first.
/// </summary>
public sealed class DeliveryDeduplicator(int capacityPerRoute = 10_000)
{
    private readonly ConcurrentDictionary<string, Window> _routes = new(StringComparer.Ordinal);

    /// <summary>True if the id was seen before on this route (and records it otherwise).</summary>
    public bool SeenBefore(string route, string eventId) =>
        !_routes.GetOrAdd(route, _ => new Window(capacityPerRoute)).TryAdd(eventId);

    /// <summary>Forgets an id, so that a failed delivery can be processed again.</summary>
    public void Forget(string route, string eventId)
    {
        if (_routes.TryGetValue(route, out var window))
        {
            window.Remove(eventId);
        }
    }

    private sealed class Window(int capacity)
    {
        private readonly HashSet<string> _ids = new(StringComparer.Ordinal);
        private readonly Queue<string> _order = new();
        private readonly Lock _gate = new();

        public bool TryAdd(string id)
        {
            lock (_gate)
            {
                if (!_ids.Add(id))
                {
                    return false;
                }
                _order.Enqueue(id);
                while (_order.Count > capacity)
                {
                    _ids.Remove(_order.Dequeue());
                }
                return true;
            }
        }

        public void Remove(string id)
        {
            lock (_gate)
            {
                _ids.Remove(id);
            }
        }
    }
}
