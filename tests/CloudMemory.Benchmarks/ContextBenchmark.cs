namespace CloudMemory.Benchmarks;

internal static class ContextBenchmark
{
    public static Task<int> RunAsync(string[] args)
    {
        Console.Error.WriteLine("context benchmark: not built yet");
        return Task.FromResult(2);
    }
}
