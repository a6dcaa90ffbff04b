using System.Collections.Concurrent;

namespace CloudMemory.BuildingBlocks.Actors;

/// <summary>An actor active on a host: its mailbox gate (one call at a time), instance and buffered state.</summary>
public class ActorSlot
{
    /// <summary>Held for the whole of a call.</summary>
    public SemaphoreSlim Gate { get; } = new(1, 1);

    /// <summary>The instance, created by the first call.</summary>
    public Actor? Actor { get; set; }

    /// <summary>The instance's state manager (set by activation).</summary>
    public BufferedActorStateManager? StateManager { get; set; }

    /// <summary>Set when the slot was removed; a caller that waited on its gate takes a fresh slot.</summary>
    public bool Deactivated { get; set; }
}

/// <summary>
/// The turn-based mechanics both actor runtimes share: one slot per (type, id), calls on one id run
/// one at a time, the instance is activated by the first call, state changes are saved after the
/// call returns and discarded when it throws.
/// </summary>
public sealed class ActorMailboxes<TSlot>(Func<TSlot> create) where TSlot : ActorSlot
{
    /// <summary>The active slots.</summary>
    public ConcurrentDictionary<(string Type, string Id), TSlot> Active { get; } = new();

    /// <summary>
    /// Runs <paramref name="call"/> as one turn of the actor; <paramref name="activate"/> creates the
    /// instance (and sets the slot's state manager) on first use, <paramref name="afterTurn"/> runs
    /// while the gate is still held.
    /// </summary>
    public async Task<T> RunTurnAsync<T>(string type, string id, Func<TSlot, Actor> activate, Func<Actor, CancellationToken, Task<T>> call,
        Action<TSlot>? afterTurn, CancellationToken cancellationToken)
    {
        while (true)
        {
            var slot = Active.GetOrAdd((type, id), _ => create());
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
                    slot.Actor = activate(slot);
                    await slot.Actor.OnActivateAsync();
                }
                var result = await call(slot.Actor, cancellationToken);
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
                afterTurn?.Invoke(slot);
                slot.Gate.Release();
            }
        }
    }

    /// <summary>
    /// Removes a slot whose gate the caller holds and runs the actor's OnDeactivateAsync; returns its
    /// failure, if any, for the caller to log (the slot is gone either way).
    /// </summary>
    public async Task<Exception?> RemoveHeldAsync(string type, string id, TSlot slot)
    {
        slot.Deactivated = true;
        Active.TryRemove(new KeyValuePair<(string, string), TSlot>((type, id), slot));
        try
        {
            if (slot.Actor is not null)
            {
                await slot.Actor.OnDeactivateAsync();
            }
            return null;
        }
        catch (Exception ex)
        {
            return ex;
        }
    }
}
