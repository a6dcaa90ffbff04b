using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.ExceptionServices;
using System.Text.Json;
using CloudMemory.BuildingBlocks.Actors;
using CloudMemory.BuildingBlocks.State;
using CloudMemory.Contracts;
using Dapr.Actors;
using Dapr.Actors.Client;
using Dapr.Actors.Runtime;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CloudMemory.BuildingBlocks.Embedded;

/// <summary>
/// Runs the Dapr SDK actor classes in process, with the guarantees daprd gives them: one call at a
/// time per actor id (a turn gate per id), different ids in parallel, activation on first use,
/// deactivation after the type's idle timeout on the injected clock, reminders (delivered to
/// <see cref="IRemindable"/> as turns), and state through <see cref="StoreActorStateManager"/> on the
/// state port, saved after each successful turn and discarded after a failed one. Each instance
/// gets its <see cref="ActorHost"/> from <see cref="ActorHost.CreateForTest(Type, string, ActorTestOptions)"/>.
/// Callers use it as the SDK's <see cref="IActorProxyFactory"/>: the typed proxy runs the method
/// on the instance, with the argument and result passed through JSON as over the wire, so an
/// actor never shares objects with its callers.
/// </summary>
public sealed class EmbeddedActorRuntime : IActorProxyFactory, IHostedService, IAsyncDisposable
{
    // The SDK runs these protected lifecycle hooks itself; an in-process host reaches them by reflection.
    private static readonly MethodInfo OnActivate = HookOf("OnActivateAsync");
    private static readonly MethodInfo OnDeactivate = HookOf("OnDeactivateAsync");
    private static readonly PropertyInfo StateManagerProperty = typeof(Actor).GetProperty(nameof(Actor.StateManager))!;

    private readonly ConcurrentDictionary<(string Type, string Id), Slot> _active = new();
    private readonly ActorTypes _types;
    private readonly ActorRuntimeOptions _options;
    private readonly IServiceProvider _services;
    private readonly IStateStore _state;
    private readonly TimeProvider _time;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger<EmbeddedActorRuntime> _logger;
    private readonly ReminderManager _reminders;
    private ITimer? _scanTimer;

    /// <summary>Creates the runtime for the actor types registered with <see cref="ActorServiceCollectionExtensions.AddActor{TActor}"/>.</summary>
    public EmbeddedActorRuntime(IOptions<ActorRuntimeOptions> options, IServiceProvider services, IStateStore state, TimeProvider time, ILoggerFactory loggers)
    {
        _options = options.Value;
        _types = new ActorTypes(options);
        _services = services;
        _state = state;
        _time = time;
        _loggers = loggers;
        _logger = loggers.CreateLogger<EmbeddedActorRuntime>();
        _reminders = new ReminderManager(this);
    }

    /// <summary>Currently active actors.</summary>
    public int ActiveCount => _active.Count;

    /// <inheritdoc />
    public TActorInterface CreateActorProxy<TActorInterface>(ActorId actorId, string actorType, ActorProxyOptions? options = null)
        where TActorInterface : IActor
    {
        var proxy = DispatchProxy.Create<TActorInterface, ActorInterfaceProxy>();
        ((ActorInterfaceProxy)(object)proxy!).Bind(this, actorType, actorId.GetId());
        return proxy;
    }

    /// <inheritdoc />
    public object CreateActorProxy(ActorId actorId, Type actorInterfaceType, string actorType, ActorProxyOptions? options = null)
    {
        var proxy = DispatchProxy.Create(actorInterfaceType, typeof(ActorInterfaceProxy));
        ((ActorInterfaceProxy)proxy).Bind(this, actorType, actorId.GetId());
        return proxy;
    }

    /// <inheritdoc />
    public ActorProxy Create(ActorId actorId, string actorType, ActorProxyOptions? options = null) =>
        throw new NotSupportedException("The embedded actor runtime serves typed actor interfaces only (CreateActorProxy<TActorInterface>).");

    /// <summary>
    /// Runs <paramref name="call"/> as one turn of the actor: waits for the id's gate, activates the
    /// instance if needed, saves its state changes after the call or drops them if it throws.
    /// </summary>
    public async Task<T> RunTurnAsync<T>(string actorType, string actorId, Func<Actor, CancellationToken, Task<T>> call, CancellationToken cancellationToken)
    {
        if (!_types.Registered.TryGetValue(actorType, out var registration))
        {
            throw new InvalidOperationException($"actor type '{actorType}' is not registered");
        }
        while (true)
        {
            var slot = _active.GetOrAdd((actorType, actorId), _ => new Slot());
            await slot.Gate.WaitAsync(cancellationToken);
            try
            {
                if (slot.Deactivated)
                {
                    continue; // lost a race with deactivation: the next GetOrAdd makes a fresh slot
                }
                // A caller that left while queued behind a long turn: run nothing on its behalf.
                cancellationToken.ThrowIfCancellationRequested();
                if (slot.Actor is null)
                {
                    await ActivateAsync(slot, registration, actorId);
                }
                var result = await call(slot.Actor!, cancellationToken);
                await slot.StateManager!.SaveStateAsync(cancellationToken);
                return result;
            }
            catch
            {
                if (slot.StateManager is not null)
                {
                    await slot.StateManager.ClearCacheAsync(CancellationToken.None);
                }
                throw;
            }
            finally
            {
                slot.LastUsed = _time.GetUtcNow();
                slot.Gate.Release();
            }
        }
    }

    /// <summary>Deactivates actors idle for longer than their type's idle timeout (and with no reminder pending).</summary>
    public async Task DeactivateIdleAsync()
    {
        var now = _time.GetUtcNow();
        foreach (var (key, slot) in _active)
        {
            var idle = IdleTimeout(key.Type);
            if (now - slot.LastUsed < idle || !slot.Gate.Wait(0))
            {
                continue;
            }
            try
            {
                if (slot.Reminders.IsEmpty && now - slot.LastUsed >= idle)
                {
                    await DeactivateHeldAsync(key, slot);
                }
            }
            finally
            {
                slot.Gate.Release();
            }
        }
    }

    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var scan = _types.Registered.Values.Select(r => r.TypeOptions?.ActorScanInterval ?? _options.ActorScanInterval ?? TimeSpan.FromSeconds(30))
            .DefaultIfEmpty(TimeSpan.FromSeconds(30)).Min();
        _scanTimer = _time.CreateTimer(_ => _ = DeactivateIdleAsync(), null, scan, scan);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task StopAsync(CancellationToken cancellationToken)
    {
        _scanTimer?.Dispose();
        foreach (var slot in _active.Values)
        {
            foreach (var reminder in slot.Reminders.Values)
            {
                reminder.Timer.Dispose();
            }
        }
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        _scanTimer?.Dispose();
        return ValueTask.CompletedTask;
    }

    private async Task ActivateAsync(Slot slot, ActorRegistration registration, string actorId)
    {
        var typeName = registration.Type.ActorTypeName;
        var host = ActorHost.CreateForTest(registration.Type.ImplementationType, typeName, new ActorTestOptions
        {
            ActorId = new ActorId(actorId),
            JsonSerializerOptions = ContractsJson.Options,
            LoggerFactory = _loggers,
            ProxyFactory = this,
            TimerManager = _reminders,
        });
        var actor = (Actor)ActivatorUtilities.CreateInstance(_services, registration.Type.ImplementationType, host);
        var state = new StoreActorStateManager(_state, $"{typeName}||{actorId}||", ContractsJson.Options);
        StateManagerProperty.SetValue(actor, state);
        slot.StateManager = state;
        await InvokeHookAsync(OnActivate, actor);
        slot.Actor = actor;
    }

    private async Task DeactivateHeldAsync((string Type, string Id) key, Slot slot)
    {
        slot.Deactivated = true;
        _active.TryRemove(new KeyValuePair<(string, string), Slot>(key, slot));
        if (slot.Actor is null)
        {
            return;
        }
        try
        {
            await InvokeHookAsync(OnDeactivate, slot.Actor);
        }
        catch (Exception ex)
        {
            _logger.LogWarning(ex, "Deactivation of {ActorType}/{ActorId} failed", key.Type, key.Id);
        }
    }

    private TimeSpan IdleTimeout(string actorType) =>
        (_types.Registered.TryGetValue(actorType, out var r) ? r.TypeOptions?.ActorIdleTimeout : null) ?? _options.ActorIdleTimeout ?? TimeSpan.FromMinutes(60);

    private static async Task InvokeHookAsync(MethodInfo hook, Actor actor)
    {
        try
        {
            await (Task)hook.Invoke(actor, null)!;
        }
        catch (TargetInvocationException ex) when (ex.InnerException is not null)
        {
            ExceptionDispatchInfo.Throw(ex.InnerException);
        }
    }

    private static MethodInfo HookOf(string name) =>
        typeof(Actor).GetMethod(name, BindingFlags.Instance | BindingFlags.NonPublic, Type.EmptyTypes)
        ?? throw new MissingMethodException(nameof(Actor), name);

    private async Task FireReminderAsync(ActorReminder reminder)
    {
        var type = reminder.ActorType;
        var id = reminder.ActorId.GetId();
        try
        {
            await RunTurnAsync(type, id, async (actor, _) =>
            {
                if (actor is not IRemindable remindable)
                {
                    throw new InvalidOperationException($"{type} registered reminder '{reminder.Name}' but does not implement IRemindable");
                }
                await remindable.ReceiveReminderAsync(reminder.Name, reminder.State, reminder.DueTime, reminder.Period);
                return true;
            }, CancellationToken.None);
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "Reminder {Reminder} of {ActorType}/{ActorId} failed", reminder.Name, type, id);
        }
        if (reminder.Period <= TimeSpan.Zero && _active.TryGetValue((type, id), out var slot)
            && slot.Reminders.TryGetValue(reminder.Name, out var registered) && ReferenceEquals(registered.Reminder, reminder)
            && slot.Reminders.TryRemove(reminder.Name, out _))
        {
            registered.Timer.Dispose();
        }
    }

    private sealed class Slot
    {
        public SemaphoreSlim Gate { get; } = new(1, 1);
        public Actor? Actor { get; set; }
        public StoreActorStateManager? StateManager { get; set; }
        public bool Deactivated { get; set; }
        public DateTimeOffset LastUsed { get; set; }
        public ConcurrentDictionary<string, (ActorReminder Reminder, ITimer Timer)> Reminders { get; } = new(StringComparer.Ordinal);
    }

    /// <summary>The SDK's reminder/timer seam: reminders become timers on the injected clock, kept with the actor's slot.</summary>
    private sealed class ReminderManager(EmbeddedActorRuntime runtime) : ActorTimerManager
    {
        public override Task RegisterReminderAsync(ActorReminder reminder)
        {
            var slot = runtime._active[(reminder.ActorType, reminder.ActorId.GetId())];
            var period = reminder.Period > TimeSpan.Zero ? reminder.Period : Timeout.InfiniteTimeSpan;
            var timer = runtime._time.CreateTimer(_ => _ = runtime.FireReminderAsync(reminder), null, reminder.DueTime, period);
            if (slot.Reminders.TryGetValue(reminder.Name, out var old))
            {
                old.Timer.Dispose();
            }
            slot.Reminders[reminder.Name] = (reminder, timer);
            return Task.CompletedTask;
        }

        public override Task<IActorReminder> GetReminderAsync(ActorReminderToken reminder) =>
            Task.FromResult<IActorReminder>(runtime._active.TryGetValue((reminder.ActorType, reminder.ActorId.GetId()), out var slot)
                && slot.Reminders.TryGetValue(reminder.Name, out var registered) ? registered.Reminder : null!);

        public override Task UnregisterReminderAsync(ActorReminderToken reminder)
        {
            if (runtime._active.TryGetValue((reminder.ActorType, reminder.ActorId.GetId()), out var slot) && slot.Reminders.TryRemove(reminder.Name, out var registered))
            {
                registered.Timer.Dispose();
            }
            return Task.CompletedTask;
        }

        public override Task RegisterTimerAsync(ActorTimer timer) =>
            throw new NotSupportedException("Actor timers are not supported by the embedded runtime; use a reminder.");

        public override Task UnregisterTimerAsync(ActorTimerToken timer) =>
            throw new NotSupportedException("Actor timers are not supported by the embedded runtime; use a reminder.");
    }
}

/// <summary>
/// The typed proxy of <see cref="EmbeddedActorRuntime"/>: each interface method runs as a turn of
/// the actor, its argument and result passed through JSON (CloudMemory's wire settings).
/// </summary>
public class ActorInterfaceProxy : DispatchProxy
{
    private static readonly ConcurrentDictionary<MethodInfo, Func<ActorInterfaceProxy, MethodInfo, object?[], Task>> Dispatchers = new();
    private static readonly MethodInfo CallWithResult = typeof(ActorInterfaceProxy).GetMethod(nameof(CallAsync), BindingFlags.NonPublic | BindingFlags.Instance)!;

    private EmbeddedActorRuntime _runtime = null!;
    private string _type = "";
    private string _id = "";

    internal void Bind(EmbeddedActorRuntime runtime, string actorType, string actorId)
    {
        _runtime = runtime;
        _type = actorType;
        _id = actorId;
    }

    /// <inheritdoc />
    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        ArgumentNullException.ThrowIfNull(targetMethod);
        var dispatch = Dispatchers.GetOrAdd(targetMethod, static method =>
        {
            if (method.ReturnType == typeof(Task))
            {
                return static (proxy, m, a) => proxy.CallAsync<bool>(m, a, voidResult: true);
            }
            if (!method.ReturnType.IsGenericType || method.ReturnType.GetGenericTypeDefinition() != typeof(Task<>))
            {
                throw new NotSupportedException($"Actor method {method.DeclaringType?.Name}.{method.Name} must return Task or Task<T>.");
            }
            var typed = CallWithResult.MakeGenericMethod(method.ReturnType.GetGenericArguments()[0]);
            return (proxy, m, a) => (Task)typed.Invoke(proxy, [m, a, false])!;
        });
        return dispatch(this, targetMethod, args ?? []);
    }

    private async Task<T> CallAsync<T>(MethodInfo method, object?[] args, bool voidResult)
    {
        var parameters = method.GetParameters();
        var copied = new object?[args.Length];
        var cancellationToken = CancellationToken.None;
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] is CancellationToken token)
            {
                cancellationToken = token;
                copied[i] = token;
                continue;
            }
            var type = parameters[i].ParameterType;
            copied[i] = JsonSerializer.Deserialize(JsonSerializer.SerializeToUtf8Bytes(args[i], type, ContractsJson.Options), type, ContractsJson.Options);
        }
        var result = await _runtime.RunTurnAsync(_type, _id, async (actor, _) =>
        {
            Task task;
            try
            {
                task = (Task)method.Invoke(actor, copied)!;
            }
            catch (TargetInvocationException ex) when (ex.InnerException is not null)
            {
                ExceptionDispatchInfo.Throw(ex.InnerException);
                throw;
            }
            await task;
            return voidResult ? [] : JsonSerializer.SerializeToUtf8Bytes(((Task<T>)task).Result, ContractsJson.Options);
        }, cancellationToken);
        return voidResult || result.Length == 0 ? default! : JsonSerializer.Deserialize<T>(result, ContractsJson.Options)!;
    }
}
