using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Npgsql;

namespace CloudMemory.BuildingBlocks.Hosting;

/// <summary>What every PostgreSQL-backed store of a service registers: one data source per process, and its schema step at start.</summary>
public static class PostgresHosting
{
    /// <summary>
    /// The process's one <see cref="NpgsqlDataSource"/> (the first service to ask registers it; every
    /// store shares its pool). Unless the connection string says otherwise:
    /// <list type="bullet">
    /// <item>statements are prepared automatically (32 per connection): the stores run a few statement shapes many times;</item>
    /// <item>a connection returned to the pool is not reset (<c>No Reset On Close</c>). The reset
    /// (<c>RESET ALL; CLOSE ALL; DISCARD TEMP; …</c>, run with the next statement) cost the server about
    /// 0.3 ms — six times a one-row statement — on every pooled use; no store leaves session state
    /// behind (the one session-level advisory lock is released before its connection goes back).</item>
    /// </list>
    /// </summary>
    public static IServiceCollection AddPostgresDataSource(this IServiceCollection services, string connectionString)
    {
        services.TryAddSingleton(_ =>
        {
            var builder = new NpgsqlDataSourceBuilder(connectionString);
            var settings = builder.ConnectionStringBuilder;
            if (settings.MaxAutoPrepare == 0)
            {
                settings.MaxAutoPrepare = 32;
            }
            var given = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString };
            if (!given.ContainsKey("No Reset On Close") && !given.ContainsKey("NoResetOnClose"))
            {
                settings.NoResetOnClose = true;
            }
            return builder.Build();
        });
        return services;
    }

    /// <summary>Runs <paramref name="task"/> once when the host starts, before it serves requests (e.g. a schema migration).</summary>
    public static IServiceCollection AddStartupTask(this IServiceCollection services, Func<IServiceProvider, CancellationToken, Task> task) =>
        services.AddSingleton<IHostedService>(sp => new StartupTask(sp, task));

    private sealed class StartupTask(IServiceProvider services, Func<IServiceProvider, CancellationToken, Task> task) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => task(services, cancellationToken);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
