using Npgsql;

namespace CloudMemory.Testing;

/// <summary>
/// A database of its own on the test server, for a test whose hosts scan the whole database at
/// start (checkpoint recovery, turn-indexing catch-up) and must see only that test's data.
/// </summary>
public sealed class PostgresScratchDatabase : IAsyncDisposable
{
    private readonly string _admin;
    private readonly string _name;

    private PostgresScratchDatabase(string admin, string name, string connectionString)
    {
        _admin = admin;
        _name = name;
        ConnectionString = connectionString;
    }

    public string ConnectionString { get; }

    public static async Task<PostgresScratchDatabase> CreateAsync(string prefix)
    {
        var admin = PostgresTestServer.ConnectionString;
        var name = prefix + "_" + Guid.NewGuid().ToString("N")[..12];
        await using (var connection = new NpgsqlConnection(admin))
        {
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
            await create.ExecuteNonQueryAsync();
        }
        return new PostgresScratchDatabase(admin, name, new NpgsqlConnectionStringBuilder(admin) { Database = name }.ConnectionString);
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await using var connection = new NpgsqlConnection(_admin);
        await connection.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {_name} WITH (FORCE)", connection);
        await drop.ExecuteNonQueryAsync();
    }
}
