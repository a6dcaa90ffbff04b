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
    private readonly ActorMailboxes<Slot> _mailboxes = new(() => new Slot());
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
    public int ActiveCount => _mailboxes.Active.Count;

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

    private Task<T> RunTurnAsync<T>(string actorType, string actorId, Func<ActorRegistration, Actor, CancellationToken, Task<T>> call, CancellationToken cancellationToken)
    {
        if (!_types.TryGetValue(actorType, out var registration))
        {
            throw new InvalidOperationException($"actor type '{actorType}' is not registered");
        }
        return _mailboxes.RunTurnAsync(actorType, actorId,
            slot =>
            {
                var actor = (Actor)_services.GetRequiredService(registration.ImplementationType);
                slot.StateManager = new StoreActorStateManager(_state, $"{registration.TypeName}||{actorId}||");
                actor.Attach(registration.TypeName, actorId, slot.StateManager, new Reminders(this, registration.TypeName, actorId));
                return actor;
            },
            (actor, ct) => call(registration, actor, ct),
            slot => slot.LastUsed = _time.GetUtcNow(),
            cancellationToken);
    }

    /// <summary>Deactivates actors idle for longer than their type's idle timeout.</summary>
    public async Task DeactivateIdleAsync()
    {
        var now = _time.GetUtcNow();
        foreach (var (key, slot) in _mailboxes.Active)
        {
            var idle = _types[key.Type].Options.IdleTimeout;
            if (now - slot.LastUsed < idle || !slot.Gate.Wait(0))
            {
                continue;
            }
            if ((slot.Reminders is null || slot.Reminders.IsEmpty) && now - slot.LastUsed >= idle)
            {
                if (await _mailboxes.RemoveHeldAsync(key.Type, key.Id, slot) is { } failure)
                {
                    _logger.LogWarning(failure, "Deactivation of {ActorType}/{ActorId} failed", key.Type, key.Id);
                }
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
        foreach (var slot in _mailboxes.Active.Values)
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
        if (period <= TimeSpan.Zero && _mailboxes.Active.TryGetValue((actorType, actorId), out var slot) && slot.Reminders?.TryRemove(name, out var timer) == true)
        {
            timer.Dispose();
        }
    }

    private sealed class Slot : ActorSlot
    {
        public DateTimeOffset LastUsed { get; set; }
        // Created by the first reminder: most actors never register one, and an idle actor's slot
        // should cost as little memory as possible.
        public ConcurrentDictionary<string, ITimer>? Reminders { get; set; }
    }

    private sealed class Reminders(EmbeddedActorRuntime runtime, string type, string id) : IActorReminders
    {
        public Task RegisterReminderAsync(string name, byte[] state, TimeSpan dueTime, TimeSpan period, CancellationToken cancellationToken = default)
        {
            var slot = runtime._mailboxes.Active[(type, id)];
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
            if (runtime._mailboxes.Active.TryGetValue((type, id), out var slot) && slot.Reminders?.TryRemove(name, out var timer) == true)
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
