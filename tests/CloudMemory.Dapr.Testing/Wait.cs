namespace CloudMemory.Dapr.Tests;

/// <summary>Waits on a condition instead of sleeping a guessed time; the timeout only bounds a broken run.</summary>
public static class Wait
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    public static async Task UntilAsync(Func<bool> condition, string what)
    {
        using var cts = new CancellationTokenSource(Timeout);
        while (!condition())
        {
            if (cts.IsCancellationRequested)
            {
                throw new TimeoutException($"gave up waiting for: {what}");
            }
            await Task.Yield();
            await Task.Delay(5, CancellationToken.None); // polling step, not a timing assumption
        }
    }
}
