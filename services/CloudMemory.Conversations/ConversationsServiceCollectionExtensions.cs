using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.BuildingBlocks.State;
using CloudMemory.Conversations.Compression;
using CloudMemory.Conversations.Log;
using CloudMemory.Conversations.Summaries;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace CloudMemory.Conversations;

/// <summary>Registers the message log, token policy and summarizers.</summary>
public static class ConversationsServiceCollectionExtensions
{
    /// <summary>Name of the connection string of the durable stores.</summary>
    public const string ConnectionStringName = "CloudMemory";

    /// <summary>Cap of the in-memory message log in MiB (default 1024); beyond it writes answer 507 store-full.</summary>
    public const string MaxLogMegabytesKey = "CloudMemory:Embedded:MaxLogMegabytes";

    /// <summary>
    /// PostgreSQL log when <c>ConnectionStrings:CloudMemory</c> is set (schema created at start),
    /// else on the Dapr runtime the log over the state store (shared by the apps), else in memory; the LLM summarizer when <c>CloudMemory:Llm:Endpoint</c> is set, the
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
            .ValidateRange($"{MemoryPolicyOptions.SectionName}:TokenThresholdRatio", o => o.TokenThresholdRatio, 0, 1, minExclusive: true)
            .ValidateRange($"{MemoryPolicyOptions.SectionName}:RecentTurns", o => o.RecentTurns, 1, int.MaxValue)
            .ValidateRange($"{MemoryPolicyOptions.SectionName}:ModelContextWindow", o => o.ModelContextWindow, 1, int.MaxValue)
            .Validate(o => o.SummaryShare is > 0 and < 1 && o.CheckpointShare is > 0 and < 1 && o.SummaryShare <= o.CheckpointShare,
                $"{MemoryPolicyOptions.SectionName}:SummaryShare and CheckpointShare must be in (0, 1), SummaryShare <= CheckpointShare")
            .Validate(o => Text.TokenCounters.IsKnown(o.Tokenizer),
                $"{MemoryPolicyOptions.SectionName}:Tokenizer must be one of {string.Join(", ", Text.TokenCounters.Names)}")
            .ValidateOnStart();
        var llm = configuration.GetSection(LlmOptions.SectionName).Get<LlmOptions>() ?? new LlmOptions();
        services.TryAddSingleton(llm);
        services.TryAddSingleton(sp => Text.TokenCounters.Create(sp.GetRequiredService<IOptions<MemoryPolicyOptions>>().Value.Tokenizer));
        services.TryAddSingleton<ExtractiveSummarizer>();
        services.TryAddSingleton<BuildingBlocks.Actors.ActorTypes>();
        services.TryAddSingleton<Sessions.SessionSnapshots>();
        services.AddCompression(configuration);
        if (llm.IsConfigured)
        {
            services.TryAddSingleton<ISummarizer>(sp => new ChatCompletionSummarizer(llm));
            services.TryAddSingleton(sp => new LlmCompressionRewriter(llm));
        }
        else
        {
            services.TryAddSingleton<ISummarizer>(sp => sp.GetRequiredService<ExtractiveSummarizer>());
        }

        var connectionString = configuration.GetConnectionString(ConnectionStringName);
        if (string.IsNullOrWhiteSpace(connectionString) && OnDapr(configuration))
        {
            // Separate Dapr apps (session writes, context reads) share the log through the state store.
            services.TryAddSingleton<IConversationLog>(sp => new InstrumentedConversationLog(
                new StateStoreConversationLog(sp.GetRequiredService<IStateStore>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<Text.ITokenCounter>()), "statestore"));
            return services;
        }
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            var capMegabytes = configuration[MaxLogMegabytesKey] is { Length: > 0 } cap
                ? long.TryParse(cap, out var mb) && mb is >= 1 and <= 1_048_576 ? mb : throw new StartupConfigurationException(MaxLogMegabytesKey, cap, "an integer from 1 to 1048576 (MiB)")
                : 1024;
            services.TryAddSingleton<IConversationLog>(sp => new InstrumentedConversationLog(
                new InMemoryConversationLog(sp.GetRequiredService<TimeProvider>(), capMegabytes * 1024 * 1024, sp.GetRequiredService<Text.ITokenCounter>()), "memory"));
            return services;
        }
        services.AddPostgresDataSource(connectionString);
        services.TryAddSingleton<PostgresConversationLog>();
        services.TryAddSingleton<IConversationLog>(sp => new InstrumentedConversationLog(sp.GetRequiredService<PostgresConversationLog>(), "postgresql"));
        services.TryAddSingleton<ICheckpointBacklog, PostgresCheckpointBacklog>();
        services.AddStartupTask((sp, ct) => sp.GetRequiredService<PostgresConversationLog>().MigrateAsync(ct));
        services.AddHealthChecks().AddCheck<PostgresHealthCheck>("postgresql", tags: [ServiceDefaults.ReadyTag]);
        return services;
    }

    private sealed class Registered;

    // The same reading as CloudMemory.Dapr's runtime selection (this project does not reference it).
    private static bool OnDapr(IConfiguration configuration)
    {
        var runtime = configuration["CloudMemory:Runtime"];
        return string.Equals(runtime, "Dapr", StringComparison.OrdinalIgnoreCase)
            || (string.IsNullOrEmpty(runtime) && (!string.IsNullOrEmpty(configuration["DAPR_HTTP_PORT"]) || !string.IsNullOrEmpty(configuration["DAPR_GRPC_PORT"])));
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
