using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Context.Features.Memories;

namespace CloudMemory.Context.Features.TurnIndexing;

/// <summary>Registers the turn indexer, its options and its <c>/readyz</c> entry.</summary>
public static class TurnIndexingServiceCollectionExtensions
{
    /// <summary>Adds the background turn indexer (section <c>CloudMemory:LongTermMemory:TurnIndexing</c>).</summary>
    public static IServiceCollection AddTurnIndexing(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<TurnIndexingOptions>().Bind(configuration.GetSection(TurnIndexingOptions.SectionName))
            .Validate(o => TurnIndexingPolicies.IsValid(o.Policy) && o.Tenants.Values.All(TurnIndexingPolicies.IsValid),
                "TurnIndexing policies must be 'none', 'lexical' or 'semantic'")
            .Validate(o => o.BatchSize is >= 1 and <= 10_000 && o.MaxBacklog >= 1 && o.BatchDelayMilliseconds >= 0 && o.MarkClearSeconds >= 0, "TurnIndexing bounds must be positive")
            .ValidateOnStart();
        var connectionString = configuration.GetConnectionString(MemoryServiceCollectionExtensions.ConnectionStringName);
        if (string.IsNullOrEmpty(connectionString))
        {
            services.AddSingleton<ITurnBacklogMarks, InMemoryTurnBacklogMarks>();
        }
        else
        {
            services.AddPostgresDataSource(connectionString);
            services.AddSingleton<PostgresTurnBacklogMarks>();
            services.AddSingleton<ITurnBacklogMarks>(sp => sp.GetRequiredService<PostgresTurnBacklogMarks>());
            services.AddStartupTask((sp, ct) => sp.GetRequiredService<PostgresTurnBacklogMarks>().MigrateAsync(ct));
        }
        services.AddSingleton<TurnIndexer>();
        services.AddHostedService(sp => sp.GetRequiredService<TurnIndexer>());
        services.AddHealthChecks().AddCheck<TurnIndexer.HealthCheck>("turn-indexing", tags: [ServiceDefaults.ReadyTag]);
        return services;
    }
}
