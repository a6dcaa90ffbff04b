using System.Collections.Concurrent;
using CloudMemory.BuildingBlocks.Embedded;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.Dapr.Tests.FakeSidecar;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudMemory.Dapr.Tests.Suites;

/// <summary>The pub/sub port's behaviour, written once and run against every implementation.</summary>
public abstract class PubSubSuite : IAsyncLifetime
{
    private readonly ConcurrentQueue<(string Route, CloudEvent Event)> _received = new();
    private readonly ConcurrentDictionary<string, int> _calls = new();

    protected IEventPublisher Publisher { get; private set; } = null!;

    /// <summary>Whether the subscriptions ask for <see cref="Subscription.Inline"/> delivery.</summary>
    protected virtual bool Inline => false;

    /// <summary>Starts the implementation with these subscriptions.</summary>
    protected abstract Task<IEventPublisher> StartAsync(IReadOnlyList<Subscription> subscriptions);

    /// <summary>Waits until every delivery (retries and dead letters included) has settled.</summary>
    protected abstract Task WhenSettledAsync();

    public async Task InitializeAsync()
    {
        var retryOnce = new ConcurrentDictionary<string, bool>();
        Subscription Recording(string topic, string route, Func<CloudEvent, DeliveryStatus> decide, string? deadLetter = null) =>
            new(topic, route, (e, _) =>
            {
                _received.Enqueue((route, e));
                _calls.AddOrUpdate(route + "|" + e.Id, 1, (_, n) => n + 1);
                return Task.FromResult(decide(e));
            }, deadLetter, Inline: Inline);

        Publisher = await StartAsync(
        [
            Recording("orders", "/events/orders", _ => DeliveryStatus.Success),
            Recording("flaky", "/events/flaky", e => retryOnce.TryAdd(e.Id, true) ? DeliveryStatus.Retry : DeliveryStatus.Success, "flaky-dead"),
            Recording("poison", "/events/poison", _ => DeliveryStatus.Drop, "poison-dead"),
            Recording("flaky-dead", "/events/flaky-dead", _ => DeliveryStatus.Success),
            Recording("poison-dead", "/events/poison-dead", _ => DeliveryStatus.Success),
        ]);
    }

    public virtual Task DisposeAsync() => Task.CompletedTask;

    protected int Calls(string route, string id) => _calls.TryGetValue(route + "|" + id, out var n) ? n : 0;

    [Fact]
    public async Task Publish_DeliversCloudEventToSubscriber()
    {
        var id = await Publisher.PublishAsync("orders", "test.order.placed.v1", new { orderId = "o-1" }, new PublishOptions(Subject: "o-1", TenantId: "t1"));
        await Wait.UntilAsync(() => Calls("/events/orders", id) == 1, "delivery to /events/orders");
        var (_, e) = _received.Single(r => r.Event.Id == id);
        e.Type.Should().Be("test.order.placed.v1");
        e.Topic.Should().Be("orders");
        e.PubSubName.Should().Be("pubsub");
        e.Subject.Should().Be("o-1");
        e.TenantId.Should().Be("t1");
        e.Data.GetProperty("orderId").GetString().Should().Be("o-1");
    }

    [Fact]
    public async Task Handler_RetryThenSuccess_IsDeliveredAgain_AndNotDeadLettered()
    {
        var id = await Publisher.PublishAsync("flaky", "test.flaky.v1", new { n = 1 });
        await Wait.UntilAsync(() => Calls("/events/flaky", id) == 2, "redelivery after RETRY");
        await WhenSettledAsync();
        Calls("/events/flaky", id).Should().Be(2);
        Calls("/events/flaky-dead", id).Should().Be(0);
    }

    [Fact]
    public async Task Handler_Drop_GoesToDeadLetterTopic()
    {
        var id = await Publisher.PublishAsync("poison", "test.poison.v1", new { n = 1 });
        await Wait.UntilAsync(() => Calls("/events/poison-dead", id) == 1, "dead-letter delivery");
        await WhenSettledAsync();
        Calls("/events/poison", id).Should().Be(1, "a dropped event is not retried");
        _received.Single(r => r.Route == "/events/poison-dead").Event.Topic.Should().Be("poison-dead");
    }

    [Fact]
    public async Task Publish_SameEventIdTwice_HandlerRunsOnce()
    {
        await Publisher.PublishAsync("orders", "test.order.placed.v1", new { orderId = "o-2" }, new PublishOptions(EventId: "evt-dup"));
        await Publisher.PublishAsync("orders", "test.order.placed.v1", new { orderId = "o-2" }, new PublishOptions(EventId: "evt-dup"));
        await WhenSettledAsync();
        Calls("/events/orders", "evt-dup").Should().Be(1);
    }
}

public class EmbeddedPubSubTests : PubSubSuite
{
    private InMemoryEventBus? _bus;

    protected override async Task<IEventPublisher> StartAsync(IReadOnlyList<Subscription> subscriptions)
    {
        var options = new EmbeddedPubSubOptions { MaxAttempts = 3, FirstRetryDelay = TimeSpan.FromMilliseconds(1), MaxRetryDelay = TimeSpan.FromMilliseconds(1) };
        _bus = new InMemoryEventBus(subscriptions, TimeProvider.System, options, NullLogger<InMemoryEventBus>.Instance);
        await _bus.StartAsync(CancellationToken.None);
        return _bus;
    }

    protected override Task WhenSettledAsync() => Wait.UntilAsync(() => _bus!.InFlight == 0, "embedded bus to settle");

    public override async Task DisposeAsync()
    {
        await _bus!.StopAsync(CancellationToken.None);
        _bus.Dispose();
    }
}

/// <summary>The same behaviour with handlers the embedded bus runs on the publisher's thread.</summary>
public sealed class EmbeddedInlinePubSubTests : EmbeddedPubSubTests
{
    protected override bool Inline => true;

    [Fact]
    public async Task InlineHandler_HasRun_WhenPublishReturns()
    {
        var id = await Publisher.PublishAsync("orders", "test.order.placed.v1", new { orderId = "o-3" });
        Calls("/events/orders", id).Should().Be(1, "an inline subscription is not queued for a delivery worker");
    }
}

public sealed class DaprPubSubTests : PubSubSuite
{
    private DaprTestApp? _app;

    protected override async Task<IEventPublisher> StartAsync(IReadOnlyList<Subscription> subscriptions)
    {
        _app = await DaprTestApp.StartAsync(new ManualTimeProvider(), services =>
        {
            foreach (var subscription in subscriptions)
            {
                services.AddSingleton(subscription);
            }
        });
        return _app.Services.GetRequiredService<IEventPublisher>();
    }

    protected override Task WhenSettledAsync() => _app!.Sidecar.WhenDeliveriesSettledAsync();

    public override async Task DisposeAsync()
    {
        await _app!.DisposeAsync();
        _app.Sidecar.AssertNoViolations();
    }
}
