using System.ClientModel;
using System.Numerics.Tensors;
using OpenAI;
using OpenAI.Embeddings;

namespace CloudMemory.Context.Features.Memories;

/// <summary>
/// Embeddings from an OpenAI-compatible endpoint (OpenAI, Azure OpenAI's <c>/openai/v1/</c>
/// endpoint, or any server speaking <c>POST /embeddings</c>).
/// </summary>
public sealed class OpenAIEmbedder : IEmbedder
{
    private readonly EmbeddingClient _client;
    private readonly EmbeddingGenerationOptions _options;

    /// <summary>Creates the embedder from <paramref name="options"/>.</summary>
    public OpenAIEmbedder(EmbeddingOptions options)
    {
        if (string.IsNullOrEmpty(options.ApiKey))
        {
            throw new InvalidOperationException($"{EmbeddingOptions.SectionName}:ApiKey is required for provider 'openai'.");
        }
        var clientOptions = new OpenAIClientOptions();
        if (!string.IsNullOrEmpty(options.Endpoint))
        {
            clientOptions.Endpoint = new Uri(options.Endpoint);
        }
        _client = new EmbeddingClient(options.Model, new ApiKeyCredential(options.ApiKey), clientOptions);
        _options = new EmbeddingGenerationOptions();
        if (options.Dimensions is { } dims)
        {
            _options.Dimensions = dims;
        }
        Dimensions = options.Dimensions ?? 0;
        Name = $"openai:{options.Model}";
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    /// <remarks>0 until the first answer when the model's size was not configured.</remarks>
    public int Dimensions { get; private set; }

    /// <inheritdoc />
    public async Task<IReadOnlyList<float[]>> EmbedAsync(IReadOnlyList<string> texts, CancellationToken cancellationToken = default)
    {
        if (texts.Count == 0)
        {
            return [];
        }
        // The API rejects empty strings; a single space embeds to "nothing in particular".
        var inputs = texts.Select(t => string.IsNullOrWhiteSpace(t) ? " " : t).ToList();
        var response = await _client.GenerateEmbeddingsAsync(inputs, _options, cancellationToken);
        var result = new float[texts.Count][];
        foreach (var embedding in response.Value)
        {
            var vector = embedding.ToFloats().ToArray();
            var norm = TensorPrimitives.Norm(vector);
            if (norm > 0)
            {
                TensorPrimitives.Divide(vector, norm, vector);
            }
            result[embedding.Index] = vector;
        }
        if (result.Any(v => v is null))
        {
            throw new InvalidOperationException("The embeddings endpoint returned fewer vectors than inputs.");
        }
        Dimensions = result[0].Length;
        return result;
    }
}

/// <summary>Configuration section <c>CloudMemory:Embeddings</c>.</summary>
public sealed class EmbeddingOptions
{
    /// <summary>The section name.</summary>
    public const string SectionName = "CloudMemory:Embeddings";

    /// <summary>
    /// <c>local</c> (no network, no model), <c>openai</c> (OpenAI-compatible endpoint) or a plug-in's
    /// name (<see cref="EmbedderProvider"/>, e.g. <c>onnx</c>). Null: the plug-in marked default if
    /// the host has one, else <c>local</c>.
    /// </summary>
    public string? Provider { get; set; }

    /// <summary>Endpoint of an OpenAI-compatible API (e.g. <c>https://RESOURCE.openai.azure.com/openai/v1/</c>); default OpenAI.</summary>
    public string? Endpoint { get; set; }

    /// <summary>API key.</summary>
    public string? ApiKey { get; set; }

    /// <summary>Embedding model (or Azure deployment) name.</summary>
    public string Model { get; set; } = "text-embedding-3-small";

    /// <summary>Vector length: the local embedder's size, or the size requested from the endpoint.</summary>
    public int? Dimensions { get; set; }

    /// <summary>How many texts go into one embedding call.</summary>
    public int BatchSize { get; set; } = 64;

    /// <summary>
    /// Conversational context enrichment of <c>message</c> entries: the stored vector is
    /// <c>normalize(v_self + w · Σ_d 0.5^(d−1) · (v_prev_d + v_next_d))</c> over the
    /// <see cref="NeighbourWindow"/> nearest messages of the same context on each side. 0 disables it.
    /// </summary>
    public double NeighbourWeight { get; set; } = 0.5;

    /// <summary>How many neighbouring messages on each side enrich a message's vector.</summary>
    public int NeighbourWindow { get; set; } = 2;

    /// <summary>
    /// Weight of the following messages (null: <see cref="NeighbourWeight"/>, which then weighs only
    /// the preceding ones). Lower than the preceding weight, a reply carries the topic of the
    /// message it answers more than an opening message carries its reply.
    /// </summary>
    public double? NeighbourWeightAfter { get; set; }

    /// <summary>
    /// Weight of the tenant's learned latent space (<see cref="LatentSemanticSpace"/>) added to a
    /// local query vector; 0 disables it. Only with the local hashing embedder.
    /// </summary>
    public double LatentWeight { get; set; } = 0.25;

    /// <summary>Neighbouring texts of the same context (each side) whose words count as a word's co-occurrence context.</summary>
    public int LatentTextWindow { get; set; } = 1;

    /// <summary>Latent dimensions of the learned space.</summary>
    public int LatentDimensions { get; set; } = 128;

    /// <summary>A tenant's space is retrained when its texts (all seen, not only the training sample) grew by this fraction since the last training.</summary>
    public double LatentRefreshFraction { get; set; } = 0.5;

    /// <summary>Texts a tenant needs before a space is learned.</summary>
    public int LatentMinTexts { get; set; } = 200;

    /// <summary>Most recent texts a space is learned from.</summary>
    public int LatentMaxTexts { get; set; } = 10_000;
}
