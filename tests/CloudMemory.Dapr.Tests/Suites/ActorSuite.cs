using System.Collections.Concurrent;
using System.Text;
using CloudMemory.BuildingBlocks.Actors;
using CloudMemory.BuildingBlocks.Embedded;
using CloudMemory.Dapr.Tests.FakeSidecar;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudMemory.Dapr.Tests.Suites;

/// <summary>What the test actor reports to the test (shared singleton).</summary>
public sealed class ActorProbe
{
    private int _concurrent;
    private int _maxConcurrent;
    private int _activations;
    private int _deactivations;

    public ConcurrentDictionary<string, TaskCompletionSource> Gates { get; } = new();
    public ConcurrentDictionary<string, bool> Arrived { get; } = new();
    public ConcurrentQueue<string> Reminders { get; } = new();
    public int MaxConcurrent => Volatile.Read(ref _maxConcurrent);
    public int Activations => Volatile.Read(ref _activations);
    public int Deactivations => Volatile.Read(ref _deactivations);

    public TaskCompletionSource Gate(string name) => Gates.GetOrAdd(name, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    public int Enter()
    {
        var now = Interlocked.Increment(ref _concurrent);
        int max;
        do
        {
            max = Volatile.Read(ref _maxConcurrent);
        }
        while (now > max && Interlocked.CompareExchange(ref _maxConcurrent, now, max) != max);
        return now;
    }

    public void Leave() => Interlocked.Decrement(ref _concurrent);

    public void Activated() => Interlocked.Increment(ref _activations);

    public void Deactivated() => Interlocked.Increment(ref _deactivations);
}

/// <summary>The actor the suites drive.</summary>
public sealed class ProbeActor(ActorProbe probe) : Actor
{
    public async Task<int> Enter()
    {
        var concurrent = probe.Enter();
        try
        {
            // Give overlapping calls every chance to show up while this one is inside.
            for (var i = 0; i < 50; i++)
            {
                await Task.Yield();
            }
            return concurrent;
        }
        finally
        {
            probe.Leave();
        }
    }

    public async Task Hold(string gate)
    {
        probe.Arrived[gate] = true;
        await probe.Gate(gate).Task;
    }

    public async Task<int> Increment()
    {
        var (_, count) = await StateManager.TryGetStateAsync<int>("count");
        await StateManager.SetStateAsync("count", count + 1);
        return count + 1;
    }

    public async Task<int> Get() => (await StateManager.TryGetStateAsync<int>("count")).Value;

    public async Task Forget() => await StateManager.RemoveStateAsync("count");

    public Task Remind(string name) => Reminders.RegisterReminderAsync(name, Encoding.UTF8.GetBytes("hello"), TimeSpan.FromSeconds(5), TimeSpan.Zero);

    public Task Fail() => throw new InvalidOperationException("boom");

    public override Task OnActivateAsync()
    {
        probe.Activated();
        return Task.CompletedTask;
    }

    public override Task OnDeactivateAsync()
    {
        probe.Deactivated();
        return Task.CompletedTask;
    }

    public override async Task ReceiveReminderAsync(string reminderName, byte[] state, TimeSpan dueTime, TimeSpan period)
    {
        probe.Reminders.Enqueue($"{reminderName}:{Encoding.UTF8.GetString(state)}:{dueTime}");
        await Increment();
    }
}

/// <summary>The actor port's behaviour, written once and run against every implementation.</summary>
public abstract class ActorSuite : IAsyncLifetime
{
    protected const string ActorType = nameof(ProbeActor);

    protected ActorProbe Probe { get; } = new();

    protected ManualTimeProvider Clock { get; } = new();

    protected IActorInvoker Invoker { get; private set; } = null!;

    protected abstract Task<IActorInvoker> StartAsync(Action<IServiceCollection> register);

    protected abstract Task DeactivateAsync(string actorId);

    public async Task InitializeAsync() => Invoker = await StartAsync(services =>
    {
        services.AddSingleton(Probe);
        services.AddActor<ProbeActor>();
    });

    public virtual Task DisposeAsync() => Task.CompletedTask;

    protected Task<int> CallAsync(string id, string method) => Invoker.InvokeMethodAsync<object?, int>(ActorType, id, method, null);

    [Fact]
    public async Task SameId_ConcurrentCalls_NeverOverlap()
    {
        var calls = Enumerable.Range(0, 25).Select(_ => Task.Run(() => CallAsync("one", nameof(ProbeActor.Enter)))).ToList();
        var results = await Task.WhenAll(calls);
        results.Should().AllBeEquivalentTo(1);
        Probe.MaxConcurrent.Should().Be(1);
    }

    [Fact]
    public async Task DifferentIds_RunInParallel()
    {
        var held = Invoker.InvokeMethodAsync<string, object?>(ActorType, "x", nameof(ProbeActor.Hold), "gate-x");
        await Wait.UntilAsync(() => Probe.Arrived.ContainsKey("gate-x"), "actor x to be inside Hold");
        // x is still inside its call: y must not wait for it.
        (await CallAsync("y", nameof(ProbeActor.Increment)).WaitAsync(Wait.Timeout)).Should().Be(1);
        held.IsCompleted.Should().BeFalse();
        Probe.Gate("gate-x").SetResult();
        await held;
    }

    [Fact]
    public async Task SameId_SecondCall_WaitsForTheFirst()
    {
        var held = Invoker.InvokeMethodAsync<string, object?>(ActorType, "z", nameof(ProbeActor.Hold), "gate-z");
        await Wait.UntilAsync(() => Probe.Arrived.ContainsKey("gate-z"), "actor z to be inside Hold");
        var second = CallAsync("z", nameof(ProbeActor.Increment));
        Probe.Gate("gate-z").SetResult();
        await held;
        (await second).Should().Be(1);
    }

    [Fact]
    public async Task State_PersistsAcrossDeactivation()
    {
        for (var i = 0; i < 3; i++)
        {
            await CallAsync("p", nameof(ProbeActor.Increment));
        }
        Probe.Activations.Should().Be(1);
        await DeactivateAsync("p");
        Probe.Deactivations.Should().Be(1);
        (await CallAsync("p", nameof(ProbeActor.Get))).Should().Be(3);
        Probe.Activations.Should().Be(2, "the call after deactivation activates a fresh instance");
    }

    [Fact]
    public async Task FailedCall_DiscardsItsStateChanges()
    {
        await CallAsync("f", nameof(ProbeActor.Increment));
        await Invoker.Invoking(i => i.InvokeMethodAsync<object?, object?>(ActorType, "f", nameof(ProbeActor.Fail), null)).Should().ThrowAsync<Exception>();
        (await CallAsync("f", nameof(ProbeActor.Get))).Should().Be(1);
    }

    [Fact]
    public async Task RemovedState_IsGoneAfterDeactivation()
    {
        await CallAsync("r", nameof(ProbeActor.Increment));
        await Invoker.InvokeMethodAsync<object?, object?>(ActorType, "r", nameof(ProbeActor.Forget), null);
        await DeactivateAsync("r");
        (await CallAsync("r", nameof(ProbeActor.Get))).Should().Be(0);
    }
}

public sealed class EmbeddedActorTests : ActorSuite
{
    private EmbeddedActorRuntime? _runtime;
    private ServiceProvider? _services;

    protected override Task<IActorInvoker> StartAsync(Action<IServiceCollection> register)
    {
        var services = new ServiceCollection();
        register(services);
        _services = services.BuildServiceProvider();
        _runtime = new EmbeddedActorRuntime(_services.GetServices<ActorRegistration>(), _services, new InMemoryStateStore(Clock), Clock,
            NullLogger<EmbeddedActorRuntime>.Instance);
        return Task.FromResult<IActorInvoker>(_runtime);
    }

    protected override async Task DeactivateAsync(string actorId)
    {
        Clock.Advance(TimeSpan.FromHours(2));
        await _runtime!.DeactivateIdleAsync();
    }

    public override async Task DisposeAsync()
    {
        await _runtime!.DisposeAsync();
        await _services!.DisposeAsync();
    }
}

public sealed class DaprActorTests : ActorSuite
{
    private DaprTestApp? _app;

    protected override async Task<IActorInvoker> StartAsync(Action<IServiceCollection> register)
    {
        _app = await DaprTestApp.StartAsync(Clock, register);
        return _app.Services.GetRequiredService<IActorInvoker>();
    }

    protected override Task DeactivateAsync(string actorId) => _app!.Sidecar.DeactivateActorAsync(ActorType, actorId);

    public override async Task DisposeAsync()
    {
        await _app!.DisposeAsync();
        _app.Sidecar.AssertNoViolations();
    }

    [Fact]
    public async Task Reminder_RegisteredByActor_FiresRemindCallbackOnTheSidecarClock()
    {
        await Invoker.InvokeMethodAsync<string, object?>(ActorType, "rem", nameof(ProbeActor.Remind), "wake-up");
        var reminder = _app!.Sidecar.Reminders.Single();
        reminder.DueTime.Should().Be("5s");
        (await _app.Sidecar.FireDueRemindersAsync()).Should().Be(0, "not due yet");
        Clock.Advance(TimeSpan.FromSeconds(5));
        (await _app.Sidecar.FireDueRemindersAsync()).Should().Be(1);
        Probe.Reminders.Should().Equal("wake-up:hello:00:00:05");
        (await CallAsync("rem", nameof(ProbeActor.Get))).Should().Be(1, "the reminder's turn saved state like a method call");
        _app.Sidecar.Reminders.Should().BeEmpty("a reminder without period fires once");
    }

    [Fact]
    public async Task AppCallbacks_CalledDirectlyInParallel_StillOneAtATimePerId()
    {
        // The fake sidecar already serialises per id; calling the app's callback directly proves the
        // host's own turn-based lock (daprd may deliver a reminder and a call to the same host at once).
        using var http = new HttpClient { BaseAddress = _app!.AppBase };
        http.DefaultRequestHeaders.Add("dapr-api-token", DaprTestApp.AppToken);
        // Activate through the sidecar first: actor state calls are only valid for active actors.
        await CallAsync("direct", nameof(ProbeActor.Enter));
        var calls = Enumerable.Range(0, 25).Select(_ => Task.Run(async () =>
        {
            using var response = await http.PutAsync($"actors/{ActorType}/direct/method/Enter", new StringContent("null"));
            response.EnsureSuccessStatusCode();
        }));
        await Task.WhenAll(calls);
        Probe.MaxConcurrent.Should().Be(1);
    }
}
