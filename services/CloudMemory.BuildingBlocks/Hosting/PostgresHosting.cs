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
    /// store shares its pool). Statements are prepared automatically (32 per connection) unless the
    /// connection string says otherwise: the stores run a few statement shapes many times.
    /// </summary>
    public static IServiceCollection AddPostgresDataSource(this IServiceCollection services, string connectionString)
    {
        services.TryAddSingleton(_ =>
        {
            var builder = new NpgsqlDataSourceBuilder(connectionString);
            if (builder.ConnectionStringBuilder.MaxAutoPrepare == 0)
            {
                builder.ConnectionStringBuilder.MaxAutoPrepare = 32;
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
