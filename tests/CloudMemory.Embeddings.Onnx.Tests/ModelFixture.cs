using CloudMemory.Context.Features.Memories;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace CloudMemory.Embeddings.Onnx.Tests;

/// <summary>The real model, loaded once for the whole test run (every class shares the collection).</summary>
public sealed class ModelFixture : IAsyncLifetime
{
    public OnnxSentenceEmbedder Model { get; } = new(Options.Create(new OnnxEmbeddingOptions()), NullLogger<OnnxSentenceEmbedder>.Instance);

    public ScriptRoutedEmbedder Routed => new(Model);

    public Task InitializeAsync() => Model.StartLoading();

    public Task DisposeAsync() => Task.CompletedTask;
}

[CollectionDefinition(Name)]
public sealed class ModelCollection : ICollectionFixture<ModelFixture>
{
    public const string Name = "arctic-embed-xs";
}
