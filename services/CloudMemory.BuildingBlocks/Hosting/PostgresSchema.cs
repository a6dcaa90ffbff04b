using Npgsql;

namespace CloudMemory.BuildingBlocks.Hosting;

/// <summary>
/// Schema steps that run at every host start but change the database only once per version. Each
/// store names its schema (<c>component</c>) and a version it bumps whenever its DDL changes; a
/// start whose version is already recorded in <c>cm_schema_versions</c> reads one row and takes no
/// table lock. (<c>CREATE INDEX IF NOT EXISTS</c> takes a share lock on its table even when the index
/// exists: run at every start, it deadlocked with other hosts' live writes.) The DDL itself stays
/// idempotent, so a database migrated by an older build, before versions were recorded, is brought
/// up to date once.
/// </summary>
public static class PostgresSchema
{
    // One migrator at a time across processes (transaction-scoped: released at commit).
    private const long MigrationLock = 7_301_000;

    /// <summary>Runs <paramref name="ddl"/> in one transaction unless <paramref name="component"/> is at <paramref name="version"/> or later.</summary>
    public static async Task ApplyAsync(this NpgsqlDataSource dataSource, string component, int version, string ddl, CancellationToken cancellationToken = default)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        if (await RecordedVersionAsync(connection, null, component, cancellationToken) >= version)
        {
            return;
        }
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await ExecuteAsync(connection, transaction, $"""
            SELECT pg_advisory_xact_lock({MigrationLock});
            CREATE TABLE IF NOT EXISTS cm_schema_versions (
                component text PRIMARY KEY,
                version integer NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now());
            """, cancellationToken);
        if (await RecordedVersionAsync(connection, transaction, component, cancellationToken) >= version)
        {
            await transaction.CommitAsync(cancellationToken);
            return; // another process migrated while this one waited for the lock
        }
        await ExecuteAsync(connection, transaction, ddl, cancellationToken);
        await using (var record = new NpgsqlCommand("""
            INSERT INTO cm_schema_versions (component, version) VALUES ($1, $2)
            ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version, applied_at = now()
            """, connection, transaction))
        {
            record.Parameters.Add(new() { Value = component });
            record.Parameters.Add(new() { Value = version });
            await record.ExecuteNonQueryAsync(cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
    }

    private static async Task<int> RecordedVersionAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string component, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("SELECT version FROM cm_schema_versions WHERE component = $1", connection, transaction);
        command.Parameters.Add(new() { Value = component });
        try
        {
            return await command.ExecuteScalarAsync(cancellationToken) is int recorded ? recorded : 0;
        }
        catch (PostgresException missing) when (transaction is null && missing.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            // A database no store has migrated yet (outside a transaction, the failed read costs nothing).
            return 0;
        }
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}
