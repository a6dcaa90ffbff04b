using System.Diagnostics;

namespace CloudMemory.Benchmarks;

/// <summary>
/// The PostgreSQL server of a benchmark run: <c>--postgres</c>, <c>CLOUDMEMORY_BENCH_POSTGRES</c>,
/// <c>CLOUDMEMORY_TEST_POSTGRES</c>, or a throwaway server started with .ci/postgres.sh (stopped at the end).
/// </summary>
internal sealed class BenchPostgres : IDisposable
{
    private readonly string? _script;
    private readonly string? _dataDir;

    private BenchPostgres(string? connectionString, string? script, string? dataDir)
    {
        ConnectionString = connectionString;
        _script = script;
        _dataDir = dataDir;
    }

    public string? ConnectionString { get; }

    public static BenchPostgres Acquire(string? explicitConnection)
    {
        var configured = explicitConnection
            ?? Environment.GetEnvironmentVariable("CLOUDMEMORY_BENCH_POSTGRES")
            ?? Environment.GetEnvironmentVariable("CLOUDMEMORY_TEST_POSTGRES");
        if (!string.IsNullOrEmpty(configured))
        {
            return new BenchPostgres(configured, null, null);
        }
        var script = FindScript();
        if (script is null)
        {
            Console.WriteLine("PostgreSQL: .ci/postgres.sh not found; PostgreSQL rows are not measured.");
            return new BenchPostgres(null, null, null);
        }
        var dataDir = Path.Combine(Path.GetTempPath(), "cloudmemory-bench-pg-" + Environment.ProcessId);
        var (code, output) = Run(script, "start", dataDir);
        var line = output.Split('\n').FirstOrDefault(l => l.Contains("CLOUDMEMORY_TEST_POSTGRES=", StringComparison.Ordinal));
        if (code != 0 || line is null)
        {
            Console.WriteLine($"PostgreSQL: could not start a local server ({output.Trim()}); PostgreSQL rows are not measured.");
            return new BenchPostgres(null, null, null);
        }
        return new BenchPostgres(line[(line.IndexOf('=', StringComparison.Ordinal) + 1)..].Trim().Trim('\''), script, dataDir);
    }

    public void Dispose()
    {
        if (_script is not null && _dataDir is not null)
        {
            Run(_script, "stop", _dataDir);
        }
    }

    private static (int Code, string Output) Run(string script, string verb, string dataDir)
    {
        using var process = Process.Start(new ProcessStartInfo("bash", [script, verb, dataDir]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output);
    }

    private static string? FindScript()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, ".ci", "postgres.sh");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }
}
