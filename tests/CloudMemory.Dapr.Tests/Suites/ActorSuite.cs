using System.Collections.Concurrent;
using System.Text;
using CloudMemory.BuildingBlocks.Actors;
using CloudMemory.BuildingBlocks.Embedded;
using CloudMemory.BuildingBlocks.State;
using CloudMemory.Dapr.Tests.FakeSidecar;
using Dapr.Actors;
using Dapr.Actors.Client;
using Dapr.Actors.Runtime;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

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

/// <summary>What the suites call on the test actor.</summary>
public interface IProbeActor : IActor
{
    Task<int> Enter();

    Task Hold(string gate);

    Task<int> Increment();

    Task<int> Get();

    Task Forget();

    Task Remind(string name);

    Task Fail();
}

/// <summary>The actor the suites drive: a Dapr SDK actor, hosted by either runtime.</summary>
public sealed class ProbeActor(ActorHost host, ActorProbe probe) : Actor(host), IProbeActor, IRemindable
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
        var count = await Get();
        await StateManager.SetStateAsync("count", count + 1);
        return count + 1;
    }

    public async Task<int> Get()
    {
        var count = await StateManager.TryGetStateAsync<int>("count");
        return count.HasValue ? count.Value : 0;
    }

    public Task Forget() => StateManager.RemoveStateAsync("count");

    public Task Remind(string name) => RegisterReminderAsync(name, Encoding.UTF8.GetBytes("hello"), TimeSpan.FromSeconds(5), TimeSpan.Zero);

    public Task Fail() => throw new InvalidOperationException("boom");

    protected override Task OnActivateAsync()
    {
        probe.Activated();
        return Task.CompletedTask;
    }

    protected override Task OnDeactivateAsync()
    {
        probe.Deactivated();
        return Task.CompletedTask;
    }

    public async Task ReceiveReminderAsync(string reminderName, byte[] state, TimeSpan dueTime, TimeSpan period)
    {
        probe.Reminders.Enqueue($"{reminderName}:{Encoding.UTF8.GetString(state)}:{dueTime}");
        await Increment();
    }
}

/// <summary>The actor port's behaviour, written once and run against every implementation.</summary>
public abstract class ActorSuite : IAsyncLifetime
{
    protected const string ActorType = nameof(ProbeActor);

    protected ActorProbe Probed { get; } = new();

    protected ManualTimeProvider Clock { get; } = new();

    protected IActorProxyFactory Actors { get; private set; } = null!;

    protected abstract Task<IActorProxyFactory> StartAsync(Action<IServiceCollection> register);

    protected abstract Task DeactivateAsync(string actorId);

    public async Task InitializeAsync() => Actors = await StartAsync(services =>
    {
        services.AddSingleton(Probed);
        services.AddActor<ProbeActor>();
    });

    public virtual Task DisposeAsync() => Task.CompletedTask;

    protected IProbeActor Probe(string id) => Actors.CreateActorProxy<IProbeActor>(new ActorId(id), ActorType);

    [Fact]
    public async Task SameId_ConcurrentCalls_NeverOverlap()
    {
        var calls = Enumerable.Range(0, 25).Select(_ => Task.Run(() => Probe("one").Enter())).ToList();
        var results = await Task.WhenAll(calls);
        results.Should().AllBeEquivalentTo(1);
        Probed.MaxConcurrent.Should().Be(1);
    }

    [Fact]
    public async Task DifferentIds_RunInParallel()
    {
        var held = Probe("x").Hold("gate-x");
        await Wait.UntilAsync(() => Probed.Arrived.ContainsKey("gate-x"), "actor x to be inside Hold");
        // x is still inside its call: y must not wait for it.
        (await Probe("y").Increment().WaitAsync(Wait.Timeout)).Should().Be(1);
        held.IsCompleted.Should().BeFalse();
        Probed.Gate("gate-x").SetResult();
        await held;
    }

    [Fact]
    public async Task SameId_SecondCall_WaitsForTheFirst()
    {
        var held = Probe("z").Hold("gate-z");
        await Wait.UntilAsync(() => Probed.Arrived.ContainsKey("gate-z"), "actor z to be inside Hold");
        var second = Probe("z").Increment();
        Probed.Gate("gate-z").SetResult();
        await held;
        (await second).Should().Be(1);
    }

    [Fact]
    public async Task State_PersistsAcrossDeactivation()
    {
        for (var i = 0; i < 3; i++)
        {
            await Probe("p").Increment();
        }
        Probed.Activations.Should().Be(1);
        await DeactivateAsync("p");
        Probed.Deactivations.Should().Be(1);
        (await Probe("p").Get()).Should().Be(3);
        Probed.Activations.Should().Be(2, "the call after deactivation activates a fresh instance");
    }

    [Fact]
    public async Task FailedCall_DiscardsItsStateChanges()
    {
        await Probe("f").Increment();
        await Probe("f").Invoking(p => p.Fail()).Should().ThrowAsync<Exception>();
        (await Probe("f").Get()).Should().Be(1);
    }

    [Fact]
    public async Task RemovedState_IsGoneAfterDeactivation()
    {
        await Probe("r").Increment();
        await Probe("r").Forget();
        await DeactivateAsync("r");
        (await Probe("r").Get()).Should().Be(0);
    }
}

public sealed class EmbeddedActorTests : ActorSuite
{
    private EmbeddedActorRuntime? _runtime;
    private ServiceProvider? _services;

    protected override Task<IActorProxyFactory> StartAsync(Action<IServiceCollection> register)
    {
        var services = new ServiceCollection();
        register(services);
        services.AddLogging();
        services.AddSingleton<TimeProvider>(Clock);
        services.AddSingleton<IStateStore>(new InMemoryStateStore(Clock));
        services.AddSingleton<EmbeddedActorRuntime>();
        _services = services.BuildServiceProvider();
        _runtime = _services.GetRequiredService<EmbeddedActorRuntime>();
        return Task.FromResult<IActorProxyFactory>(_runtime);
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

    [Fact]
    public async Task Reminder_FiresOnTheClock_AsATurnThatSavesState()
    {
        // Its own runtime on a clock whose timers the test moves.
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var services = new ServiceCollection();
        services.AddSingleton(Probed);
        services.AddActor<ProbeActor>();
        services.AddLogging();
        services.AddSingleton<TimeProvider>(clock);
        services.AddSingleton<IStateStore>(new InMemoryStateStore(clock));
        services.AddSingleton<EmbeddedActorRuntime>();
        await using var provider = services.BuildServiceProvider();
        var runtime = provider.GetRequiredService<EmbeddedActorRuntime>();
        var actor = runtime.CreateActorProxy<IProbeActor>(new ActorId("rem"), ActorType);

        await actor.Remind("wake-up");
        clock.Advance(TimeSpan.FromSeconds(4));
        Probed.Reminders.Should().BeEmpty("not due yet");
        clock.Advance(TimeSpan.FromSeconds(1));
        await Wait.UntilAsync(() => !Probed.Reminders.IsEmpty, "the reminder to fire");
        Probed.Reminders.Should().Equal("wake-up:hello:00:00:05");
        (await actor.Get()).Should().Be(1, "the reminder's turn saved state like a method call (the call queues behind it)");
        clock.Advance(TimeSpan.FromMinutes(1));
        Probed.Reminders.Should().HaveCount(1, "a reminder without period fires once");
        (await actor.Get()).Should().Be(1);
    }
}

public sealed class DaprActorTests : ActorSuite
{
    private DaprTestApp? _app;

    protected override async Task<IActorProxyFactory> StartAsync(Action<IServiceCollection> register)
    {
        _app = await DaprTestApp.StartAsync(Clock, register);
        return _app.Services.GetRequiredService<IActorProxyFactory>();
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
        await Probe("rem").Remind("wake-up");
        var reminder = _app!.Sidecar.Reminders.Single();
        FakeDaprSidecar.TryParseDuration(reminder.DueTime, out var due).Should().BeTrue();
        due.Should().Be(TimeSpan.FromSeconds(5));
        (await _app.Sidecar.FireDueRemindersAsync()).Should().Be(0, "not due yet");
        Clock.Advance(TimeSpan.FromSeconds(5));
        (await _app.Sidecar.FireDueRemindersAsync()).Should().Be(1);
        Probed.Reminders.Should().Equal("wake-up:hello:00:00:05");
        (await Probe("rem").Get()).Should().Be(1, "the reminder's turn saved state like a method call");
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
        await Probe("direct").Enter();
        var calls = Enumerable.Range(0, 25).Select(_ => Task.Run(async () =>
        {
            using var response = await http.PutAsync($"actors/{ActorType}/direct/method/Enter", new StringContent("null"));
            response.EnsureSuccessStatusCode();
        }));
        await Task.WhenAll(calls);
        Probed.MaxConcurrent.Should().Be(1);
    }
}
