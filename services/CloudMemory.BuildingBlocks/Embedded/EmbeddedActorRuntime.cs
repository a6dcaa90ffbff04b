using System.Collections.Concurrent;
using System.Text.Json;
using CloudMemory.BuildingBlocks.Actors;
using CloudMemory.BuildingBlocks.State;
using CloudMemory.Contracts;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CloudMemory.BuildingBlocks.Embedded;

/// <summary>
/// In-process virtual actors: one call at a time per actor id (a mailbox per id), different ids in
/// parallel, lazy activation, idle deactivation on the injected clock, reminders, and state kept in
/// the state store under <c>{type}||{id}||{key}</c> as Dapr does.
/// </summary>
public sealed class EmbeddedActorRuntime : IActorInvoker, IHostedService, IAsyncDisposable
{
    private readonly ConcurrentDictionary<(string Type, string Id), Slot> _slots = new();
    private readonly Dictionary<string, ActorRegistration> _types;
    private readonly IServiceProvider _services;
    private readonly IStateStore _state;
    private readonly TimeProvider _time;
    private readonly ILogger<EmbeddedActorRuntime> _logger;
    private ITimer? _scanTimer;

    /// <summary>Creates the runtime for the registered actor types.</summary>
    public EmbeddedActorRuntime(IEnumerable<ActorRegistration> registrations, IServiceProvider services, IStateStore state, TimeProvider time, ILogger<EmbeddedActorRuntime> logger)
    {
        _types = registrations.ToDictionary(r => r.TypeName, StringComparer.Ordinal);
        _services = services;
        _state = state;
        _time = time;
        _logger = logger;
    }

    /// <summary>Currently active actors.</summary>
    public int ActiveCount => _slots.Count;

    /// <inheritdoc />
    public async Task<TResponse> InvokeMethodAsync<TRequest, TResponse>(string actorType, string actorId, string method, TRequest request, CancellationToken cancellationToken = default)
    {
        var argument = JsonSerializer.SerializeToUtf8Bytes(request, ContractsJson.Options);
        var result = await InvokeRawAsync(actorType, actorId, method, argument, cancellationToken);
        return result.Length == 0 ? default! : JsonSerializer.Deserialize<TResponse>(result, ContractsJson.Options)!;
    }

    /// <summary>Invokes with a JSON argument and returns the JSON result.</summary>
    public Task<byte[]> InvokeRawAsync(string actorType, string actorId, string method, ReadOnlyMemory<byte> argument, CancellationToken cancellationToken) =>
        RunTurnAsync(actorType, actorId, (registration, actor, ct) => registration.Methods.InvokeAsync(actor, method, argument, ct), cancellationToken);

    private async Task<T> RunTurnAsync<T>(string actorType, string actorId, Func<ActorRegistration, Actor, CancellationToken, Task<T>> call, CancellationToken cancellationToken)
    {
        if (!_types.TryGetValue(actorType, out var registration))
        {
            throw new InvalidOperationException($"actor type '{actorType}' is not registered");
        }
        while (true)
        {
            var slot = _slots.GetOrAdd((actorType, actorId), key => new Slot(key.Type, key.Id));
            await slot.Gate.WaitAsync(cancellationToken);
            try
            {
                if (slot.Deactivated)
                {
                    continue; // lost a race with idle deactivation: take the fresh slot
                }
                if (slot.Actor is null)
                {
                    slot.Actor = Activate(registration, actorId);
                    await slot.Actor.OnActivateAsync();
                }
                var result = await call(registration, slot.Actor, cancellationToken);
                await slot.StateManager!.SaveStateAsync(cancellationToken);
                return result;
            }
            catch
            {
                slot.StateManager?.Discard();
                throw;
            }
            finally
            {
                slot.LastUsed = _time.GetUtcNow();
                slot.Gate.Release();
            }

            Actor Activate(ActorRegistration r, string id)
            {
                var actor = (Actor)_services.GetRequiredService(r.ImplementationType);
                slot.StateManager = new StoreActorStateManager(_state, $"{r.TypeName}||{id}||");
                actor.Attach(r.TypeName, id, slot.StateManager, new Reminders(this, r.TypeName, id));
                return actor;
            }
        }
    }

    /// <summary>Deactivates actors idle for longer than their type's idle timeout.</summary>
    public async Task DeactivateIdleAsync()
    {
        var now = _time.GetUtcNow();
        foreach (var (key, slot) in _slots)
        {
            var idle = _types[key.Type].Options.IdleTimeout;
            if (now - slot.LastUsed < idle || !slot.Gate.Wait(0))
            {
                continue;
            }
            if ((slot.Reminders is null || slot.Reminders.IsEmpty) && now - slot.LastUsed >= idle)
            {
                slot.Deactivated = true;
                _slots.TryRemove(new KeyValuePair<(string, string), Slot>(key, slot));
                try
                {
                    if (slot.Actor is not null)
                    {
                        await slot.Actor.OnDeactivateAsync();
                    }
                }
                catch (Exception ex)
                {
                    _logger.LogWarning(ex, "Deactivation of {ActorType}/{ActorId} failed", key.Type, key.Id);
                }
                slot.Gate.Release();
                continue;
            }
            slot.Gate.Release();
        }
    }

    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var scan = _types.Count == 0 ? TimeSpan.FromSeconds(30) : _types.Values.Min(t => t.Options.ScanInterval);
        _scanTimer = _time.CreateTimer(_ => _ = DeactivateIdleAsync(), null, scan, scan);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task StopAsync(CancellationToken cancellationToken)
    {
        _scanTimer?.Dispose();
        foreach (var slot in _slots.Values)
        {
            foreach (var reminder in slot.Reminders?.Values ?? [])
            {
                reminder.Dispose();
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

    private async Task FireReminderAsync(string actorType, string actorId, string name, byte[] state, TimeSpan due, TimeSpan period)
    {
        try
        {
            await RunTurnAsync(actorType, actorId, async (_, actor, _) =>
            {
                await actor.ReceiveReminderAsync(name, state, due, period);
                return true;
            }, CancellationToken.None);
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "Reminder {Reminder} of {ActorType}/{ActorId} failed", name, actorType, actorId);
        }
        if (period <= TimeSpan.Zero && _slots.TryGetValue((actorType, actorId), out var slot) && slot.Reminders?.TryRemove(name, out var timer) == true)
        {
            timer.Dispose();
        }
    }

    private sealed class Slot(string type, string id)
    {
        public string Type { get; } = type;
        public string Id { get; } = id;
        public SemaphoreSlim Gate { get; } = new(1, 1);
        public Actor? Actor { get; set; }
        public StoreActorStateManager? StateManager { get; set; }
        public DateTimeOffset LastUsed { get; set; }
        public bool Deactivated { get; set; }
        // Created by the first reminder: most actors never register one, and an idle actor's slot
        // should cost as little memory as possible.
        public ConcurrentDictionary<string, ITimer>? Reminders { get; set; }
    }

    private sealed class Reminders(EmbeddedActorRuntime runtime, string type, string id) : IActorReminders
    {
        public Task RegisterReminderAsync(string name, byte[] state, TimeSpan dueTime, TimeSpan period, CancellationToken cancellationToken = default)
        {
            var slot = runtime._slots[(type, id)];
            var timer = runtime._time.CreateTimer(_ => _ = runtime.FireReminderAsync(type, id, name, state, dueTime, period), null, dueTime,
                period > TimeSpan.Zero ? period : Timeout.InfiniteTimeSpan);
            slot.Reminders ??= new ConcurrentDictionary<string, ITimer>(StringComparer.Ordinal);
            if (slot.Reminders.TryGetValue(name, out var old))
            {
                old.Dispose();
            }
            slot.Reminders[name] = timer;
            return Task.CompletedTask;
        }

        public Task UnregisterReminderAsync(string name, CancellationToken cancellationToken = default)
        {
            if (runtime._slots.TryGetValue((type, id), out var slot) && slot.Reminders?.TryRemove(name, out var timer) == true)
            {
                timer.Dispose();
            }
            return Task.CompletedTask;
        }
    }
}

/// <summary>Actor state over an <see cref="IStateStore"/> under <c>{type}||{id}||{key}</c>, committed as one transaction.</summary>
public sealed class StoreActorStateManager(IStateStore store, string keyPrefix) : BufferedActorStateManager(ContractsJson.Options)
{
    /// <inheritdoc />
    protected override async Task<byte[]?> ReadAsync(string name, CancellationToken cancellationToken) =>
        (await store.GetAsync(keyPrefix + name, StateConsistency.Strong, cancellationToken))?.Value.ToArray();

    /// <inheritdoc />
    protected override Task CommitAsync(IReadOnlyDictionary<string, ActorStateChange> changes, CancellationToken cancellationToken) =>
        store.ExecuteTransactionAsync(changes.Select(p => p.Value.Delete
            ? StateOperation.Delete(keyPrefix + p.Key)
            : StateOperation.Upsert(keyPrefix + p.Key, p.Value.Value)).ToList(), cancellationToken);
}
