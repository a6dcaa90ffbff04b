namespace CloudMemory.Session.Tests.Infrastructure;

/// <summary>The PostgreSQL server CI starts (.ci/postgres.sh); tests that need it fail loudly without it.</summary>
public static class PostgresTestDatabase
{
    public const string EnvironmentVariable = "CLOUDMEMORY_TEST_POSTGRES";

    public static string ConnectionString =>
        Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException(
                $"{EnvironmentVariable} is not set. Start a server with: eval \"$(.ci/postgres.sh start /tmp/cm-pg)\" (CI does this in .ci/run).");
}
