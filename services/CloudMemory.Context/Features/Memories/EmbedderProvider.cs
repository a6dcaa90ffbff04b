namespace CloudMemory.Context.Features.Memories;

/// <summary>
/// An embedder that another assembly contributes (e.g. <c>CloudMemory.Embeddings.Onnx</c>), chosen
/// with <c>CloudMemory:Embeddings:Provider = Name</c>. Keeps heavy model packages out of this
/// service: a host that does not reference the plug-in simply does not offer the provider.
/// </summary>
/// <param name="Name">The provider name in configuration.</param>
/// <param name="Create">Builds the embedder (once, as a singleton).</param>
/// <param name="IsDefault">Used when no provider is configured (otherwise <c>local</c> is).</param>
public sealed record EmbedderProvider(string Name, Func<IServiceProvider, IEmbedder> Create, bool IsDefault = false);
