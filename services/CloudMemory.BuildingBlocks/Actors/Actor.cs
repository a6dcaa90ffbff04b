namespace CloudMemory.BuildingBlocks.Actors;

/// <summary>
/// Base class of virtual actors, shaped like the Dapr .NET SDK's: one call at a time per id,
/// activated on first use, deactivated when idle, state through <see cref="StateManager"/>.
/// Public methods returning <see cref="Task"/> or <see cref="Task{T}"/> with at most one data
/// parameter (plus an optional <see cref="CancellationToken"/>) are invocable by name.
/// </summary>
public abstract class Actor
{
    /// <summary>The actor's id.</summary>
    public string Id { get; private set; } = "";

    /// <summary>The actor type name.</summary>
    public string ActorType { get; private set; } = "";

    /// <summary>State of this actor instance.</summary>
    protected IActorStateManager StateManager { get; private set; } = null!;

    /// <summary>Reminder registration of this actor instance.</summary>
    protected IActorReminders Reminders { get; private set; } = null!;

    internal void Attach(string actorType, string id, IActorStateManager stateManager, IActorReminders reminders)
    {
        ActorType = actorType;
        Id = id;
        StateManager = stateManager;
        Reminders = reminders;
    }

    /// <summary>Called before the first call after activation.</summary>
    public virtual Task OnActivateAsync() => Task.CompletedTask;

    /// <summary>Called when the runtime deactivates the idle actor.</summary>
    public virtual Task OnDeactivateAsync() => Task.CompletedTask;

    /// <summary>Called when a reminder fires (turn-based like any method).</summary>
    public virtual Task ReceiveReminderAsync(string reminderName, byte[] state, TimeSpan dueTime, TimeSpan period) => Task.CompletedTask;
}

/// <summary>Per-actor state; writes are buffered until <see cref="SaveStateAsync"/> (called after each method).</summary>
public interface IActorStateManager
{
    /// <summary>Reads a value.</summary>
    Task<(bool Found, T Value)> TryGetStateAsync<T>(string name, CancellationToken cancellationToken = default);

    /// <summary>Buffers a write.</summary>
    Task SetStateAsync<T>(string name, T value, CancellationToken cancellationToken = default);

    /// <summary>Buffers a delete.</summary>
    Task RemoveStateAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>Writes buffered changes in one transaction.</summary>
    Task SaveStateAsync(CancellationToken cancellationToken = default);
}

/// <summary>Reminders of one actor instance.</summary>
public interface IActorReminders
{
    /// <summary>Registers (or replaces) a reminder; a zero period fires once.</summary>
    Task RegisterReminderAsync(string name, byte[] state, TimeSpan dueTime, TimeSpan period, CancellationToken cancellationToken = default);

    /// <summary>Removes a reminder.</summary>
    Task UnregisterReminderAsync(string name, CancellationToken cancellationToken = default);
}

/// <summary>Invokes actor methods by type, id and name (Dapr actor invocation).</summary>
public interface IActorInvoker
{
    /// <summary>Invokes a method with a JSON-serializable argument and result.</summary>
    Task<TResponse> InvokeMethodAsync<TRequest, TResponse>(string actorType, string actorId, string method, TRequest request, CancellationToken cancellationToken = default);
}

/// <summary>Options of one registered actor type.</summary>
public sealed class ActorTypeOptions
{
    /// <summary>Idle time after which the actor is deactivated (Dapr actorIdleTimeout).</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(60);

    /// <summary>How often idle actors are looked for (Dapr actorScanInterval).</summary>
    public TimeSpan ScanInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long deactivation waits for a running call (Dapr drainOngoingCallTimeout).</summary>
    public TimeSpan DrainOngoingCallTimeout { get; set; } = TimeSpan.FromSeconds(60);
}

/// <summary>A registered actor type.</summary>
public sealed record ActorRegistration(string TypeName, Type ImplementationType, ActorTypeOptions Options)
{
    /// <summary>The invocable methods.</summary>
    public ActorMethodTable Methods { get; } = new(ImplementationType);
}

/// <summary>An actor call that failed inside the actor; carries the actor's exception.</summary>
public sealed class ActorMethodException(string message, Exception? inner = null) : Exception(message, inner);
