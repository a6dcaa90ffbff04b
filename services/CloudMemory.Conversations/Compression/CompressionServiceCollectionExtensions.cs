using CloudMemory.BuildingBlocks.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace CloudMemory.Conversations.Compression;

/// <summary>Registers the importance evaluator and the message compressor.</summary>
public static class CompressionServiceCollectionExtensions
{
    /// <summary>Binds <see cref="CompressionOptions"/> (validated on start) and adds the evaluator and compressor.</summary>
    public static IServiceCollection AddCompression(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<CompressionOptions>().Bind(configuration.GetSection(CompressionOptions.SectionName))
            .ValidateRange($"{CompressionOptions.SectionName}:TriggerRatio", o => o.TriggerRatio, 0, 1, minExclusive: true)
            .ValidateRange($"{CompressionOptions.SectionName}:TargetRatio", o => o.TargetRatio, 0, 1, minExclusive: true)
            .ValidateRange($"{CompressionOptions.SectionName}:MemoryThreshold", o => o.MemoryThreshold, 1, int.MaxValue)
            .ValidateRange($"{CompressionOptions.SectionName}:MemoryImportanceCutoff", o => o.MemoryImportanceCutoff, 0, 1)
            .Validate(o => o.Default is CompressionOptions.None or CompressionOptions.Importance, $"{CompressionOptions.SectionName}:Default must be 'none' or 'importance'")
            .Validate(o => o.Weights.Temporal >= 0 && o.Weights.Content >= 0 && o.Weights.Interaction >= 0 && o.Weights.Temporal + o.Weights.Content + o.Weights.Interaction > 0,
                $"{CompressionOptions.SectionName}:Weights must be non-negative and not all 0")
            .Validate(o => o.AutoCompressInterval > TimeSpan.Zero && o.AutoCompressInterval <= TimeSpan.FromDays(1),
                $"{CompressionOptions.SectionName}:AutoCompressInterval must be more than 0 and at most one day")
            .ValidateOnStart();
        services.TryAddSingleton(sp => new ImportanceEvaluator(sp.GetRequiredService<IOptions<CompressionOptions>>().Value.Weights));
        // The ratio is counted in the model's tokens: the configured tokenizer (MemoryPolicy:Tokenizer), when registered.
        services.TryAddSingleton(sp => new MessageCompressor(sp.GetRequiredService<ImportanceEvaluator>()) { Counter = sp.GetService<Text.ITokenCounter>() ?? Text.TokenCounters.Estimator });
        return services;
    }
}
