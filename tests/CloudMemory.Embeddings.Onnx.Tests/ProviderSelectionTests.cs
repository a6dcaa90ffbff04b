using CloudMemory.Context.Features.Memories;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CloudMemory.Embeddings.Onnx.Tests;

public sealed class ProviderSelectionTests
{
    [Theory]
    [InlineData(null, true, typeof(ScriptRoutedEmbedder))]
    [InlineData(null, false, typeof(LocalHashingEmbedder))]
    [InlineData("local", true, typeof(LocalHashingEmbedder))]
    [InlineData("onnx", false, typeof(ScriptRoutedEmbedder))]
    public void Embedder_ConfiguredProvider_IsTheOneUsed(string? provider, bool onnxIsDefault, Type expected)
    {
        using var services = Build(provider, onnxIsDefault);

        services.GetRequiredService<IEmbedder>().Should().BeOfType(expected);
    }

    [Fact]
    public void Options_UnknownProvider_FailsValidation()
    {
        using var services = Build("onnx-typo", onnxIsDefault: true);

        var read = () => services.GetRequiredService<IOptions<EmbeddingOptions>>().Value;

        read.Should().Throw<OptionsValidationException>().WithMessage("*Provider*");
    }

    [Fact]
    public void SearchOptions_OnnxActive_TunedDefaultsUnlessConfigured()
    {
        using var onnx = Build("onnx", onnxIsDefault: false);
        using var configured = Build("onnx", onnxIsDefault: false, semanticWeight: "0.6");
        using var local = Build("local", onnxIsDefault: true);

        var tuned = onnx.GetRequiredService<IOptions<LongTermMemoryOptions>>().Value;
        tuned.SemanticWeight.Should().Be(OnnxRetrievalDefaults.SemanticWeight);
        tuned.ScoreNormalization.Should().Be(OnnxRetrievalDefaults.ScoreNormalization);
        onnx.GetRequiredService<IOptions<EmbeddingOptions>>().Value.NeighbourWeight.Should().Be(OnnxRetrievalDefaults.NeighbourWeight);
        configured.GetRequiredService<IOptions<LongTermMemoryOptions>>().Value.SemanticWeight.Should().Be(0.6);
        local.GetRequiredService<IOptions<LongTermMemoryOptions>>().Value.SemanticWeight.Should().Be(new LongTermMemoryOptions().SemanticWeight);
    }

    private static ServiceProvider Build(string? provider, bool onnxIsDefault, string? semanticWeight = null)
    {
        var settings = new Dictionary<string, string?> { [$"{EmbeddingOptions.SectionName}:Provider"] = provider };
        if (semanticWeight is not null)
        {
            settings[$"{LongTermMemoryOptions.SectionName}:SemanticWeight"] = semanticWeight;
        }
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection();
        services.AddLogging(b => b.ClearProviders());
        services.AddOnnxEmbeddings(configuration, onnxIsDefault);
        services.AddLongTermMemory(configuration);
        return services.BuildServiceProvider();
    }
}
