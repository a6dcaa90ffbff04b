using System.Text;
using CloudMemory.BuildingBlocks.State;

namespace CloudMemory.Feedback.Features.Learning;

/// <summary>
/// One learning cycle per agent at a time across processes (several feedback replicas on one
/// state store): a first-write key per tenant and agent, with a TTL so the lease of a process that
/// died while holding it expires. Released only by its holder (ETag-checked delete of its own value).
/// </summary>
public sealed class CycleLease(IStateStore state, TimeProvider time)
{
    /// <summary>How long a lease lives if its holder never releases it (longer than any cycle).</summary>
    public static readonly TimeSpan Ttl = TimeSpan.FromMinutes(10);

    /// <summary>The state key of an agent's lease (lengths keep tenant and agent apart, whatever characters they hold).</summary>
    public static string Key(string tenantId, string agentId) => $"learning-lease-{tenantId.Length}-{tenantId}-{agentId}";

    /// <summary>Takes the lease if nobody holds it; returns the holder token, or null when it is taken.</summary>
    public async Task<string?> TryAcquireAsync(string tenantId, string agentId, CancellationToken cancellationToken = default)
    {
        var token = Guid.NewGuid().ToString("N");
        try
        {
            await state.SaveAsync(Key(tenantId, agentId), Encoding.UTF8.GetBytes(token), etag: null,
                new StateWriteOptions(StateConcurrency.FirstWrite, Ttl: Ttl), cancellationToken);
            return token;
        }
        catch (StateConcurrencyException)
        {
            return null;
        }
    }

    /// <summary>Waits until the lease is free and takes it (backing off up to a second between tries).</summary>
    public async Task<string> AcquireAsync(string tenantId, string agentId, CancellationToken cancellationToken = default)
    {
        var delay = TimeSpan.FromMilliseconds(20);
        while (true)
        {
            if (await TryAcquireAsync(tenantId, agentId, cancellationToken) is { } token)
            {
                return token;
            }
            await Task.Delay(delay, time, cancellationToken);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.TicksPerSecond));
        }
    }

    /// <summary>Releases the lease if <paramref name="token"/> still holds it (an expired and re-taken lease is left alone).</summary>
    public async Task ReleaseAsync(string tenantId, string agentId, string token, CancellationToken cancellationToken = default)
    {
        var key = Key(tenantId, agentId);
        if (await state.GetAsync(key, cancellationToken: cancellationToken) is { } entry && Encoding.UTF8.GetString(entry.Value.Span) == token)
        {
            try
            {
                await state.DeleteAsync(key, entry.ETag, cancellationToken: cancellationToken);
            }
            catch (StateConcurrencyException)
            {
                // It expired and someone else took it meanwhile: theirs now.
            }
        }
    }
}
