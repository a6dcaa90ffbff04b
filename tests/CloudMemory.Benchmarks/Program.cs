namespace CloudMemory.Benchmarks;

/// <summary>Benchmark entry point: <c>dotnet run -c Release --project tests/CloudMemory.Benchmarks -- SUBCOMMAND [options]</c>.</summary>
internal static class Program
{
    private static readonly Dictionary<string, Func<string[], Task<int>>> Commands = new(StringComparer.Ordinal)
    {
        ["locomo"] = LocomoBenchmark.RunAsync,
        ["context"] = ContextBenchmark.RunAsync,
        ["trace"] = TraceBenchmark.RunAsync,
        ["sharing"] = SharingBenchmark.RunAsync,
        ["feedback"] = FeedbackBenchmark.RunAsync,
        ["summary-coverage"] = SummaryCoverageBenchmark.RunAsync,
        ["perturn"] = PerTurnProfile.RunAsync,
        ["compression"] = CompressionBenchmark.RunAsync,
        ["tokens"] = TokenCountBenchmark.RunAsync,
    };

    public static async Task<int> Main(string[] args)
    {
        if (args.Length == 0 || !Commands.TryGetValue(args[0], out var command))
        {
            await Console.Error.WriteLineAsync($"usage: CloudMemory.Benchmarks <{string.Join('|', Commands.Keys)}> [options]");
            return 2;
        }
        return await command(args[1..]);
    }
}
