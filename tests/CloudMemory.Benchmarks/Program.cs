namespace CloudMemory.Benchmarks;

/// <summary>One benchmarks program with subcommands; each measures side by side in one run.</summary>
internal static class Program
{
    private static readonly Dictionary<string, Func<string[], Task<int>>> Commands = new(StringComparer.Ordinal)
    {
        ["context"] = ContextBenchmark.RunAsync,
    };

    public static async Task<int> Main(string[] args)
    {
        if (args.Length == 0 || !Commands.TryGetValue(args[0], out var command))
        {
            Console.Error.WriteLine($"usage: dotnet run -c Release --project tests/CloudMemory.Benchmarks -- <{string.Join('|', Commands.Keys)}> [options]");
            return 2;
        }
        return await command(args[1..]);
    }
}
