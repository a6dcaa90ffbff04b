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

    private static ServiceProvider Build(string? provider, bool onnxIsDefault)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            [$"{EmbeddingOptions.SectionName}:Provider"] = provider,
        }).Build();
        var services = new ServiceCollection();
        services.AddLogging(b => b.ClearProviders());
        services.AddOnnxEmbeddings(configuration, onnxIsDefault);
        services.AddLongTermMemory(configuration);
        return services.BuildServiceProvider();
    }
}
