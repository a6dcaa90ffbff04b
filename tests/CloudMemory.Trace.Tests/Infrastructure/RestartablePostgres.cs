using System.Diagnostics;

namespace CloudMemory.Trace.Tests.Infrastructure;

/// <summary>
/// A PostgreSQL server of one test that the test can stop and start again (the shared test server
/// must stay up for everyone else). Started with .ci/postgres.sh, restarted with pg_ctl on the same
/// data directory and port.
/// </summary>
public sealed class RestartablePostgres : IDisposable
{
    private readonly string _script;
    private readonly string _dir;
    private readonly string _port;

    public RestartablePostgres()
    {
        var root = FindRoot();
        _script = Path.Combine(root, ".ci", "postgres.sh");
        _dir = Path.Combine(Path.GetTempPath(), "cloudmemory-trace-restart-" + Guid.NewGuid().ToString("N")[..8]);
        var output = Run("bash", [_script, "start", _dir]);
        var line = output.Split('\n').First(l => l.Contains("CLOUDMEMORY_TEST_POSTGRES=", StringComparison.Ordinal));
        ConnectionString = line[(line.IndexOf('=', StringComparison.Ordinal) + 1)..].Trim().Trim('\'');
        _port = ConnectionString.Split(';').First(p => p.StartsWith("Port=", StringComparison.Ordinal))[5..];
    }

    public string ConnectionString { get; }

    public void Stop() => PgCtl("-D", Path.Combine(_dir, "data"), "-m", "fast", "-w", "stop");

    public void Start() => PgCtl("-D", Path.Combine(_dir, "data"), "-l", Path.Combine(_dir, "server.log"), "-w", "-t", "60",
        "-o", $"-p {_port} -h 127.0.0.1 -k {_dir} -c fsync=off", "start");

    public void Dispose() => Run("bash", [_script, "stop", _dir]);

    private static void PgCtl(params string[] args)
    {
        var pgCtl = Run("bash", ["-c", "command -v pg_ctl || ls /usr/lib/postgresql/*/bin/pg_ctl | tail -n1"]).Trim();
        if (Environment.UserName == "root")
        {
            Run("runuser", ["-u", "postgres", "--", pgCtl, .. args]);
        }
        else
        {
            Run(pgCtl, args);
        }
    }

    private static string Run(string file, string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var stdout = process.StandardOutput.ReadToEnd();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({process.ExitCode}): {stderr}{stdout}");
        }
        return stdout;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "CloudMemory.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("CloudMemory.sln not found");
    }
}
