using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Conversations.Log;
using CloudMemory.Conversations.Summaries;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CloudMemory.Conversations;

/// <summary>Registers the message log, token policy and summarizers.</summary>
public static class ConversationsServiceCollectionExtensions
{
    /// <summary>Name of the connection string of the durable stores.</summary>
    public const string ConnectionStringName = "CloudMemory";

    /// <summary>
    /// PostgreSQL log when <c>ConnectionStrings:CloudMemory</c> is set (schema created at start),
    /// in-memory otherwise; the LLM summarizer when <c>CloudMemory:Llm:Endpoint</c> is set, the
    /// extractive one otherwise (and always as the fallback).
    /// </summary>
    public static IServiceCollection AddConversations(this IServiceCollection services, IConfiguration configuration)
    {
        // session and context both need the log; in the embedded host they share one registration.
        if (services.Any(d => d.ServiceType == typeof(Registered)))
        {
            return services;
        }
        services.AddSingleton<Registered>();
        services.AddOptions<MemoryPolicyOptions>().Bind(configuration.GetSection(MemoryPolicyOptions.SectionName))
            .Validate(o => o.TokenThresholdRatio is > 0 and <= 1 && o.RecentTurns > 0 && o.ModelContextWindow > 0
                && o.SummaryShare is > 0 and < 1 && o.CheckpointShare is > 0 and < 1 && o.SummaryShare <= o.CheckpointShare, "CloudMemory:Memory values out of range")
            .ValidateOnStart();
        var llm = configuration.GetSection(LlmOptions.SectionName).Get<LlmOptions>() ?? new LlmOptions();
        services.TryAddSingleton(llm);
        services.TryAddSingleton<ExtractiveSummarizer>();
        services.TryAddSingleton<Sessions.SessionSnapshots>();
        if (llm.IsConfigured)
        {
            services.TryAddSingleton<ISummarizer>(sp => new ChatCompletionSummarizer(llm));
        }
        else
        {
            services.TryAddSingleton<ISummarizer>(sp => sp.GetRequiredService<ExtractiveSummarizer>());
        }

        var connectionString = configuration.GetConnectionString(ConnectionStringName);
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            services.AddHostedService<InMemoryLogWarning>();
            services.TryAddSingleton<IConversationLog>(sp => new InstrumentedConversationLog(
                new InMemoryConversationLog(sp.GetRequiredService<TimeProvider>()), "memory"));
            return services;
        }
        services.TryAddSingleton(_ =>
        {
            // Every statement here is one of a few shapes: let Npgsql prepare them once per connection.
            var builder = new NpgsqlDataSourceBuilder(connectionString);
            if (builder.ConnectionStringBuilder.MaxAutoPrepare == 0)
            {
                builder.ConnectionStringBuilder.MaxAutoPrepare = 32;
            }
            return builder.Build();
        });
        services.TryAddSingleton<PostgresConversationLog>();
        services.TryAddSingleton<IConversationLog>(sp => new InstrumentedConversationLog(sp.GetRequiredService<PostgresConversationLog>(), "postgresql"));
        services.AddHostedService<ConversationLogMigrator>();
        services.AddHealthChecks().AddCheck<PostgresHealthCheck>("postgresql", tags: [ServiceDefaults.ReadyTag]);
        return services;
    }

    private sealed class Registered;

    // Separate Dapr apps each keep their own in-memory log: say so at start rather than let the
    // context app silently see no turns.
    private sealed class InMemoryLogWarning(IConfiguration configuration, ILogger<InMemoryLogWarning> logger) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            var runtime = configuration["CloudMemory:Runtime"];
            var onDapr = string.Equals(runtime, "Dapr", StringComparison.OrdinalIgnoreCase)
                || (string.IsNullOrEmpty(runtime) && !string.IsNullOrEmpty(configuration["DAPR_HTTP_PORT"]));
            if (onDapr)
            {
                logger.LogWarning("The message log is in memory: on Dapr, session and context are separate apps and will not share it. Set ConnectionStrings:CloudMemory to a PostgreSQL database shared by both.");
            }
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    private sealed class ConversationLogMigrator(PostgresConversationLog log) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => log.MigrateAsync(cancellationToken);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    private sealed class PostgresHealthCheck(NpgsqlDataSource dataSource) : IHealthCheck
    {
        public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            try
            {
                await using var command = dataSource.CreateCommand("SELECT 1");
                await command.ExecuteScalarAsync(cancellationToken);
                return HealthCheckResult.Healthy();
            }
            catch (Exception ex)
            {
                return HealthCheckResult.Unhealthy("PostgreSQL is unreachable", ex);
            }
        }
    }
}
