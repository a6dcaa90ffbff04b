using CloudMemory.Context.Features.Memories;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace CloudMemory.Embeddings.Onnx;

/// <summary>Registers the <c>onnx</c> embeddings provider.</summary>
public static class OnnxEmbeddingServiceCollectionExtensions
{
    /// <summary>The provider name (<c>CloudMemory:Embeddings:Provider</c>).</summary>
    public const string ProviderName = "onnx";

    /// <summary>
    /// Offers the <c>onnx</c> provider: arctic-embed-xs for Latin-script text, the CJK hashing
    /// block for Chinese, Japanese and Korean (<see cref="ScriptRoutedEmbedder"/>). With
    /// <paramref name="isDefault"/> it is used when no provider is configured. When it is the
    /// active provider, the model starts loading in the background as the host starts.
    /// </summary>
    public static IServiceCollection AddOnnxEmbeddings(this IServiceCollection services, IConfiguration configuration, bool isDefault = true)
    {
        services.AddOptions<OnnxEmbeddingOptions>().Bind(configuration.GetSection(OnnxEmbeddingOptions.SectionName))
            .Validate(o => o.Threads is >= 1 and <= 256, "Threads must be 1..256")
            .Validate(o => o.CjkDimensions is >= 16 and <= 8192, "CjkDimensions must be 16..8192")
            .Validate(o => o.MaxCharacters >= 1 && o.CacheSize >= 0, "MaxCharacters must be positive and CacheSize not negative")
            .ValidateOnStart();
        services.AddSingleton<OnnxSentenceEmbedder>();
        services.AddSingleton(new EmbedderProvider(
            ProviderName,
            sp => new ScriptRoutedEmbedder(sp.GetRequiredService<OnnxSentenceEmbedder>(), sp.GetRequiredService<IOptions<OnnxEmbeddingOptions>>().Value.CjkDimensions),
            isDefault));
        services.AddHostedService<OnnxModelWarmUp>();

        // The retrieval defaults that go with this model (derived by k-fold on the LoCoMo development
        // conversations, docs/benchmarks.md): applied when onnx is the active provider, to each
        // setting the configuration does not set itself.
        var provider = configuration[$"{EmbeddingOptions.SectionName}:Provider"] ?? (isDefault ? ProviderName : "local");
        if (provider == ProviderName)
        {
            bool Unset(string section, string key) => !configuration.GetSection($"{section}:{key}").Exists();
            services.PostConfigure<LongTermMemoryOptions>(o =>
            {
                if (Unset(LongTermMemoryOptions.SectionName, nameof(o.SemanticWeight)))
                {
                    o.SemanticWeight = OnnxRetrievalDefaults.SemanticWeight;
                }
                if (Unset(LongTermMemoryOptions.SectionName, nameof(o.ScoreNormalization)))
                {
                    o.ScoreNormalization = OnnxRetrievalDefaults.ScoreNormalization;
                }
                if (Unset(LongTermMemoryOptions.SectionName, nameof(o.FeedbackWeight)))
                {
                    o.FeedbackWeight = OnnxRetrievalDefaults.FeedbackWeight;
                }
            });
            services.PostConfigure<EmbeddingOptions>(o =>
            {
                if (Unset(EmbeddingOptions.SectionName, nameof(o.NeighbourWeight)))
                {
                    o.NeighbourWeight = OnnxRetrievalDefaults.NeighbourWeight;
                }
            });
        }
        return services;
    }

    // Starts loading at host start, off the request path, when the active embedder uses the model.
    private sealed class OnnxModelWarmUp(IEmbedder embedder, OnnxSentenceEmbedder model) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            if (embedder is ScriptRoutedEmbedder { Dense: OnnxSentenceEmbedder })
            {
                _ = model.StartLoading();
            }
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}

/// <summary>Retrieval defaults with the onnx provider (each overridable in configuration).</summary>
public static class OnnxRetrievalDefaults
{
    /// <summary>Semantic share of weighted fusion.</summary>
    public const double SemanticWeight = 0.3;

    /// <summary>Min-max normalization: dense cosines sit in a narrow band, dividing by the best leaves them all near 1.</summary>
    public const string ScoreNormalization = ScoreNormalizations.MinMax;

    /// <summary>Pseudo-relevance feedback off: it did not help the dense side.</summary>
    public const double FeedbackWeight = 0;

    /// <summary>Neighbour enrichment of stored vectors off: the model's own sentence vector retrieves better.</summary>
    public const double NeighbourWeight = 0;
}
