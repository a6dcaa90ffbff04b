namespace CloudMemory.Session.Tests.Infrastructure;

/// <summary>System time plus an offset the test moves forward (timers stay real).</summary>
public sealed class MutableTimeProvider : TimeProvider
{
    private long _offsetTicks;

    public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + TimeSpan.FromTicks(Interlocked.Read(ref _offsetTicks));

    public void Advance(TimeSpan by) => Interlocked.Add(ref _offsetTicks, by.Ticks);
}
