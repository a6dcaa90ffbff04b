using System.Diagnostics;

namespace CloudMemory.Testing;

/// <summary>
/// The PostgreSQL server every test project uses (linked into each): the one in <c>CLOUDMEMORY_TEST_POSTGRES</c> (CI starts it),
/// or else a throwaway server this test run starts itself with <c>.ci/postgres.sh</c> and stops at
/// exit. Tests that need PostgreSQL fail loudly when neither works; they never skip.
/// </summary>
public static class PostgresTestServer
{
    public const string EnvironmentVariable = "CLOUDMEMORY_TEST_POSTGRES";

    private static readonly Lazy<string> Server = new(StartOrReuse, LazyThreadSafetyMode.ExecutionAndPublication);

    public static string ConnectionString => Server.Value;

    private static string StartOrReuse()
    {
        if (Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } configured)
        {
            return configured;
        }
        var root = FindRepositoryRoot();
        var dataDir = Path.Combine(Path.GetTempPath(), "cloudmemory-test-pg-" + Environment.ProcessId);
        var script = Path.Combine(root, ".ci", "postgres.sh");
        var output = Run(script, "start", dataDir);
        var line = output.Split('\n').FirstOrDefault(l => l.StartsWith("export " + EnvironmentVariable + "=", StringComparison.Ordinal))
            ?? throw new InvalidOperationException($"{script} did not print a connection string:\n{output}");
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Run(script, "stop", dataDir);
        return line[(line.IndexOf('=', StringComparison.Ordinal) + 1)..].Trim().Trim('\'');
    }

    private static string Run(string script, string verb, string dataDir)
    {
        using var process = Process.Start(new ProcessStartInfo("bash", [script, verb, dataDir]) { RedirectStandardOutput = true, RedirectStandardError = true })
            ?? throw new InvalidOperationException("could not start bash");
        var stdout = process.StandardOutput.ReadToEnd();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"{EnvironmentVariable} is not set and starting a local PostgreSQL failed ({verb}, exit {process.ExitCode}): {stderr}{stdout}\n" +
                "Install PostgreSQL (initdb, pg_ctl on PATH) or set the variable to a server's connection string.");
        }
        return stdout;
    }

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "CloudMemory.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("CloudMemory.sln not found above the test directory");
    }
}
