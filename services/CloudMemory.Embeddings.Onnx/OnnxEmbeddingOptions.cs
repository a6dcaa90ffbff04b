namespace CloudMemory.Embeddings.Onnx;

/// <summary>Configuration section <c>CloudMemory:Embeddings:Onnx</c>.</summary>
public sealed class OnnxEmbeddingOptions
{
    /// <summary>The section name.</summary>
    public const string SectionName = "CloudMemory:Embeddings:Onnx";

    /// <summary>
    /// Texts embedded at the same time (one ONNX Runtime thread each; batching padded sequences
    /// gains nothing on CPU, parallel single-text runs do). Default: the processor count.
    /// </summary>
    public int Threads { get; set; } = Environment.ProcessorCount;

    /// <summary>
    /// Recently embedded texts whose vectors are kept (about 1.6 KB each): a conversation turn is
    /// embedded once, then reused as a neighbour of the turns around it and by query-side feedback.
    /// </summary>
    public int CacheSize { get; set; } = 8192;

    /// <summary>Characters of a text the model reads (it stops at 512 tokens; the rest is ignored).</summary>
    public int MaxCharacters { get; set; } = 2000;

    /// <summary>Length of the CJK hashing block (<c>ScriptRoutedEmbedder</c>) that Chinese, Japanese and Korean text goes to.</summary>
    public int CjkDimensions { get; set; } = 512;
}
