using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.BuildingBlocks.Workflows;
using CloudMemory.Context.Features.Memories.Activities;
using CloudMemory.Context.Features.Memories.Workflows;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Npgsql;

namespace CloudMemory.Context.Features.Memories;

/// <summary>Registers long-term memory (store, embedder, background embedding, consolidation workflow).</summary>
public static class MemoryServiceCollectionExtensions
{
    /// <summary>Name of the connection string that switches storage to PostgreSQL.</summary>
    public const string ConnectionStringName = "CloudMemory";

    /// <summary>Cap of the in-memory long-term memory store in MiB (default 1024); near it expired entries are evicted, past it writes answer 507 store-full.</summary>
    public const string MaxMemoryMegabytesKey = "CloudMemory:Embedded:MaxMemoryMegabytes";

    /// <summary>
    /// Adds long-term memory. Storage is PostgreSQL when <c>ConnectionStrings:CloudMemory</c> is set,
    /// in memory otherwise; embeddings come from <c>CloudMemory:Embeddings</c> (local by default).
    /// </summary>
    public static IServiceCollection AddLongTermMemory(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<LongTermMemoryOptions>().Bind(configuration.GetSection(LongTermMemoryOptions.SectionName))
            .Validate(o => o.SemanticWeight is >= 0 and <= 1, "SemanticWeight must be between 0 and 1")
            .Validate(o => o.Fusion is FusionMethods.Weighted or FusionMethods.Rrf, "Fusion must be 'weighted' or 'rrf'")
            .Validate(o => o.CandidateMultiplier >= 1 && o.MinCandidates >= 1 && o.RrfK >= 1, "candidate counts must be positive")
            .ValidateOnStart();
        services.AddOptions<EmbeddingOptions>().Bind(configuration.GetSection(EmbeddingOptions.SectionName))
            .Validate<IEnumerable<EmbedderProvider>>(
                (o, plugins) => o.Provider is null or "local" or "openai" || plugins.Any(p => p.Name == o.Provider),
                "Provider must be 'local', 'openai' or a registered plug-in (e.g. 'onnx' from CloudMemory.Embeddings.Onnx)")
            .Validate(o => o.BatchSize is >= 1 and <= 2048, "BatchSize must be 1..2048")
            .ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System);
        // Process-wide and read before anything is indexed.

        services.TryAddSingleton<IEmbedder>(sp =>
        {
            var options = sp.GetRequiredService<IOptions<EmbeddingOptions>>().Value;
            var plugins = sp.GetServices<EmbedderProvider>().ToList();
            var provider = options.Provider ?? plugins.FirstOrDefault(p => p.IsDefault)?.Name ?? "local";
            return provider switch
            {
                "openai" => new OpenAIEmbedder(options),
                "local" => new LocalHashingEmbedder(options.Dimensions ?? LocalHashingEmbedder.DefaultDimensions),
                _ => plugins.First(p => p.Name == provider).Create(sp),
            };
        });

        var connectionString = configuration.GetConnectionString(ConnectionStringName);
        if (string.IsNullOrEmpty(connectionString))
        {
            var capMegabytes = configuration[MaxMemoryMegabytesKey] is { Length: > 0 } cap
                ? long.TryParse(cap, out var mb) && mb is >= 1 and <= 1_048_576 ? mb : throw new StartupConfigurationException(MaxMemoryMegabytesKey, cap, "an integer from 1 to 1048576 (MiB)")
                : 1024;
            services.TryAddSingleton<IMemoryStore>(sp => new InMemoryMemoryStore(new InMemoryIndexOptions
            {
                LexicalStemming = sp.GetRequiredService<IOptions<LongTermMemoryOptions>>().Value.LexicalStemming,
            })
            {
                MaxBytes = capMegabytes * 1024 * 1024,
                ExpectedVectorDimensions = sp.GetRequiredService<IEmbedder>().Dimensions,
                Time = sp.GetRequiredService<TimeProvider>(),
            });
        }
        else
        {
            services.AddPostgresDataSource(connectionString);
            services.TryAddSingleton<IMemoryStore>(sp => new PostgresMemoryStore(
                sp.GetRequiredService<NpgsqlDataSource>(), sp.GetRequiredService<IOptions<LongTermMemoryOptions>>().Value.Schema));
        }

        // The schema must exist before the embedding pipeline looks for pending entries.
        services.AddHostedService<MemoryStoreInitializer>();
        services.TryAddSingleton<EmbeddingPipeline>();
        services.AddHostedService(sp => sp.GetRequiredService<EmbeddingPipeline>());
        services.TryAddSingleton<AccessRecorder>();
        services.AddHostedService(sp => sp.GetRequiredService<AccessRecorder>());
        services.TryAddSingleton<LatentSemanticIndex>();
        services.TryAddSingleton<ILongTermMemory, LongTermMemoryService>();

        services.AddWorkflow<ConsolidateConversationWorkflow>();
        services.AddWorkflowActivity<ExtractLongTermMemoriesActivity>();
        services.AddWorkflowActivity<WriteLongTermMemoriesActivity>();
        return services;
    }

    private sealed class MemoryStoreInitializer(IMemoryStore store) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => store.InitializeAsync(cancellationToken);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
