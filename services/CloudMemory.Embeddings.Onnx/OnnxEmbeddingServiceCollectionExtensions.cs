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
