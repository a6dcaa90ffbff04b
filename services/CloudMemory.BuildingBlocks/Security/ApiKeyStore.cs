using System.Collections.Concurrent;
using CloudMemory.BuildingBlocks.Hosting;
using Npgsql;

namespace CloudMemory.BuildingBlocks.Security;

/// <summary>An issued API key as stored: the SHA-256 of its secret, never the secret.</summary>
public sealed record ApiKeyRecord(string Id, string Tenant, string? Agent, bool IsAdmin, string? Name, byte[] SecretSha256, DateTimeOffset CreatedAt, DateTimeOffset? RevokedAt);

/// <summary>Where issued API keys live (in memory, or PostgreSQL when <c>ConnectionStrings:CloudMemory</c> is set).</summary>
public interface IApiKeyStore
{
    /// <summary>Stores a new key.</summary>
    Task AddAsync(ApiKeyRecord key, CancellationToken cancellationToken);

    /// <summary>The key with this id, revoked or not.</summary>
    Task<ApiKeyRecord?> FindAsync(string id, CancellationToken cancellationToken);

    /// <summary>The tenant's keys, oldest first.</summary>
    Task<IReadOnlyList<ApiKeyRecord>> ListAsync(string tenant, CancellationToken cancellationToken);

    /// <summary>Revokes a key of the tenant; false when the tenant has no such key.</summary>
    Task<bool> RevokeAsync(string tenant, string id, DateTimeOffset at, CancellationToken cancellationToken);
}

/// <summary>Keys in process memory: lost at restart, private to one process.</summary>
public sealed class InMemoryApiKeyStore : IApiKeyStore
{
    private readonly ConcurrentDictionary<string, ApiKeyRecord> _keys = new(StringComparer.Ordinal);

    /// <inheritdoc />
    public Task AddAsync(ApiKeyRecord key, CancellationToken cancellationToken)
    {
        if (!_keys.TryAdd(key.Id, key))
        {
            throw new InvalidOperationException($"API key id {key.Id} already exists");
        }
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task<ApiKeyRecord?> FindAsync(string id, CancellationToken cancellationToken) =>
        Task.FromResult(_keys.TryGetValue(id, out var key) ? key : null);

    /// <inheritdoc />
    public Task<IReadOnlyList<ApiKeyRecord>> ListAsync(string tenant, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<ApiKeyRecord>>(_keys.Values.Where(k => k.Tenant == tenant).OrderBy(k => k.CreatedAt).ThenBy(k => k.Id, StringComparer.Ordinal).ToList());

    /// <inheritdoc />
    public Task<bool> RevokeAsync(string tenant, string id, DateTimeOffset at, CancellationToken cancellationToken)
    {
        while (_keys.TryGetValue(id, out var key) && key.Tenant == tenant)
        {
            if (key.RevokedAt is not null || _keys.TryUpdate(id, key with { RevokedAt = at }, key))
            {
                return Task.FromResult(true);
            }
        }
        return Task.FromResult(false);
    }
}

/// <summary>Keys in PostgreSQL (table <c>cm_api_keys</c>, created on first use), shared by every process of a deployment.</summary>
public sealed class PostgresApiKeyStore(string connectionString) : IApiKeyStore, IAsyncDisposable
{
    private readonly NpgsqlDataSource _dataSource = NpgsqlDataSource.Create(connectionString);
    private readonly SemaphoreSlim _migration = new(1, 1);
    private volatile bool _migrated;

    /// <inheritdoc />
    public async Task AddAsync(ApiKeyRecord key, CancellationToken cancellationToken)
    {
        await MigrateAsync(cancellationToken);
        await using var command = _dataSource.CreateCommand("""
            INSERT INTO cm_api_keys (id, tenant_id, agent_id, is_admin, name, secret_sha256, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            """);
        command.Parameters.Add(new() { Value = key.Id });
        command.Parameters.Add(new() { Value = key.Tenant });
        command.Parameters.Add(new() { Value = (object?)key.Agent ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        command.Parameters.Add(new() { Value = key.IsAdmin });
        command.Parameters.Add(new() { Value = (object?)key.Name ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        command.Parameters.Add(new() { Value = key.SecretSha256 });
        command.Parameters.Add(new() { Value = key.CreatedAt.ToUniversalTime() });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <inheritdoc />
    public async Task<ApiKeyRecord?> FindAsync(string id, CancellationToken cancellationToken)
    {
        await MigrateAsync(cancellationToken);
        await using var command = _dataSource.CreateCommand($"SELECT {Columns} FROM cm_api_keys WHERE id = $1");
        command.Parameters.Add(new() { Value = id });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? Read(reader) : null;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ApiKeyRecord>> ListAsync(string tenant, CancellationToken cancellationToken)
    {
        await MigrateAsync(cancellationToken);
        await using var command = _dataSource.CreateCommand($"SELECT {Columns} FROM cm_api_keys WHERE tenant_id = $1 ORDER BY created_at, id");
        command.Parameters.Add(new() { Value = tenant });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var keys = new List<ApiKeyRecord>();
        while (await reader.ReadAsync(cancellationToken))
        {
            keys.Add(Read(reader));
        }
        return keys;
    }

    /// <inheritdoc />
    public async Task<bool> RevokeAsync(string tenant, string id, DateTimeOffset at, CancellationToken cancellationToken)
    {
        await MigrateAsync(cancellationToken);
        await using var command = _dataSource.CreateCommand(
            "UPDATE cm_api_keys SET revoked_at = COALESCE(revoked_at, $3) WHERE tenant_id = $1 AND id = $2");
        command.Parameters.Add(new() { Value = tenant });
        command.Parameters.Add(new() { Value = id });
        command.Parameters.Add(new() { Value = at.ToUniversalTime() });
        return await command.ExecuteNonQueryAsync(cancellationToken) == 1;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _dataSource.DisposeAsync();
        _migration.Dispose();
    }

    private const string Columns = "id, tenant_id, agent_id, is_admin, name, secret_sha256, created_at, revoked_at";

    private static ApiKeyRecord Read(NpgsqlDataReader reader) => new(
        reader.GetString(0),
        reader.GetString(1),
        reader.IsDBNull(2) ? null : reader.GetString(2),
        reader.GetBoolean(3),
        reader.IsDBNull(4) ? null : reader.GetString(4),
        (byte[])reader[5],
        new DateTimeOffset(reader.GetDateTime(6), TimeSpan.Zero),
        reader.IsDBNull(7) ? null : new DateTimeOffset(reader.GetDateTime(7), TimeSpan.Zero));

    private async Task MigrateAsync(CancellationToken cancellationToken)
    {
        if (_migrated)
        {
            return;
        }
        await _migration.WaitAsync(cancellationToken);
        try
        {
            if (_migrated)
            {
                return;
            }
            await _dataSource.ApplyAsync("api-keys", 1, """
                SELECT pg_advisory_xact_lock(7301009);
                CREATE TABLE IF NOT EXISTS cm_api_keys (
                    id text PRIMARY KEY,
                    tenant_id text NOT NULL,
                    agent_id text NULL,
                    is_admin boolean NOT NULL,
                    name text NULL,
                    secret_sha256 bytea NOT NULL,
                    created_at timestamptz NOT NULL,
                    revoked_at timestamptz NULL);
                CREATE INDEX IF NOT EXISTS cm_api_keys_tenant ON cm_api_keys (tenant_id, created_at);
                """, cancellationToken);
            _migrated = true;
        }
        finally
        {
            _migration.Release();
        }
    }
}
