using System.Diagnostics;
using System.Threading.Channels;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.Contracts;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CloudMemory.BuildingBlocks.Embedded;

/// <summary>Retry policy of embedded deliveries.</summary>
public sealed class EmbeddedPubSubOptions
{
    /// <summary>Deliveries of one event to one subscription before it goes to the dead-letter topic.</summary>
    public int MaxAttempts { get; set; } = 5;

    /// <summary>First retry delay; doubles per attempt.</summary>
    public TimeSpan FirstRetryDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Upper bound of a retry delay.</summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// In-process pub/sub: CloudEvents envelopes, at-least-once delivery to every subscription of the
/// topic, retries with exponential backoff, dead-letter topic after the last attempt or a DROP.
/// Publishing never waits for subscribers: deliveries are queued for two delivery workers, except to
/// <see cref="Subscription.Inline"/> subscriptions, whose quick handlers run on the publisher's thread
/// (waking a worker per event cost more CPU than such a handler itself).
/// </summary>
public sealed class InMemoryEventBus : BackgroundService, IEventPublisher, EventStream.IEventTap
{
    private readonly Channel<Delivery> _queue = Channel.CreateUnbounded<Delivery>(new UnboundedChannelOptions { SingleReader = false });
    private readonly ILookup<string, Route> _routes;
    private readonly TimeProvider _time;
    private readonly EmbeddedPubSubOptions _options;
    private readonly ILogger<InMemoryEventBus> _logger;
    private readonly string _source;
    // Copy-on-write: a publish reads the current array without a lock or a copy.
    private Action<CloudEvent>[] _taps = [];
    private readonly Lock _tapGate = new();
    private readonly DeliveryDeduplicator _deduplicator = new();
    private int _inFlight;
    private CancellationToken _stopping;

    /// <summary>Creates the bus.</summary>
    public InMemoryEventBus(IEnumerable<Subscription> subscriptions, TimeProvider time, EmbeddedPubSubOptions options, ILogger<InMemoryEventBus> logger, string source = "cloudmemory")
    {
        _routes = subscriptions.ToLookup(s => s.Topic, s => new Route(s, s.Route + "|" + s.Topic), StringComparer.Ordinal);
        _time = time;
        _options = options;
        _logger = logger;
        _source = source;
    }

    /// <summary>Events published and not yet settled (delivered, dropped or dead-lettered).</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Observes every published event (the embedded event stream for external followers).</summary>
    public IDisposable Tap(Action<CloudEvent> observer)
    {
        lock (_tapGate)
        {
            _taps = [.. _taps, observer];
        }
        return new Untap(this, observer);
    }

    /// <inheritdoc />
    public Task<string> PublishAsync<T>(string topic, string eventType, T data, PublishOptions? options = null, CancellationToken cancellationToken = default)
    {
        var cloudEvent = CloudEventFormat.Create(options?.EventId ?? Guid.NewGuid().ToString("N"), _source, eventType, data, _time.GetUtcNow(),
            options?.Subject, topic, Contracts.Events.Topics.PubSubName, Activity.Current?.Id, options?.TenantId);
        Enqueue(cloudEvent);
        return Task.FromResult(cloudEvent.Id);
    }

    private void Enqueue(CloudEvent cloudEvent)
    {
        foreach (var tap in Volatile.Read(ref _taps))
        {
            tap(cloudEvent);
        }
        foreach (var route in _routes[cloudEvent.Topic ?? ""])
        {
            Interlocked.Increment(ref _inFlight);
            var delivery = new Delivery(route, cloudEvent, 1);
            if (route.Subscription.Inline)
            {
                _ = DeliverAsync(delivery, _stopping); // synchronous up to the handler's first wait, if any
            }
            else
            {
                _queue.Writer.TryWrite(delivery);
            }
        }
    }

    /// <inheritdoc />
    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _stopping = stoppingToken;
        return Task.WhenAll(Enumerable.Range(0, 2).Select(_ => PumpAsync(stoppingToken)));
    }

    private async Task PumpAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var delivery in _queue.Reader.ReadAllAsync(stoppingToken))
            {
                await DeliverAsync(delivery, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task DeliverAsync(Delivery delivery, CancellationToken stoppingToken)
    {
        // A republished id (same EventId) reaches the handler once, as on the Dapr runtime.
        var subscription = delivery.Route.Subscription;
        if (delivery.Attempt == 1 && _deduplicator.SeenBefore(delivery.Route.DedupKey, delivery.Event.Id))
        {
            Interlocked.Decrement(ref _inFlight);
            return;
        }
        DeliveryStatus status;
        try
        {
            status = await subscription.Handler(delivery.Event, stoppingToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
        {
            _logger.LogWarning(ex, "Delivery of {EventId} to {Route} failed (attempt {Attempt})", delivery.Event.Id, subscription.Route, delivery.Attempt);
            status = DeliveryStatus.Retry;
        }

        if (status == DeliveryStatus.Retry && delivery.Attempt < _options.MaxAttempts)
        {
            var delay = _options.FirstRetryDelay * Math.Pow(2, delivery.Attempt - 1);
            if (delay > _options.MaxRetryDelay)
            {
                delay = _options.MaxRetryDelay;
            }
            _ = RetryLaterAsync(delivery with { Attempt = delivery.Attempt + 1 }, delay, stoppingToken);
            return;
        }
        if (status != DeliveryStatus.Success && subscription.DeadLetterTopic is { } deadLetter)
        {
            _logger.LogWarning("Event {EventId} on {Topic} goes to dead-letter topic {DeadLetter} ({Status})", delivery.Event.Id, delivery.Event.Topic, deadLetter, status);
            Enqueue(delivery.Event with { Topic = deadLetter });
        }
        Interlocked.Decrement(ref _inFlight);
    }

    private async Task RetryLaterAsync(Delivery delivery, TimeSpan delay, CancellationToken stoppingToken)
    {
        try
        {
            await Task.Delay(delay, _time, stoppingToken);
            _queue.Writer.TryWrite(delivery);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private sealed record Route(Subscription Subscription, string DedupKey);

    private sealed record Delivery(Route Route, CloudEvent Event, int Attempt);

    private sealed class Untap(InMemoryEventBus bus, Action<CloudEvent> observer) : IDisposable
    {
        public void Dispose()
        {
            lock (bus._tapGate)
            {
                var taps = bus._taps.ToList();
                taps.Remove(observer);
                bus._taps = [.. taps];
            }
        }
    }
}
