namespace CloudMemory.Conversations.Compression;

/// <summary>Compression settings (section <c>CloudMemory:Compression</c>).</summary>
public sealed class CompressionOptions
{
    /// <summary>Configuration section.</summary>
    public const string SectionName = "CloudMemory:Compression";

    /// <summary>No compression: the newest turns that fit (the seed 002 behaviour).</summary>
    public const string None = "none";

    /// <summary>Importance-based compression.</summary>
    public const string Importance = "importance";

    /// <summary>
    /// What <c>POST /v1/context/query</c> does without a <c>compression</c> field: <c>importance</c>,
    /// chosen by measurement (docs/compression.md: at the query's target ratio 0.7 it keeps 99.6% of
    /// the LoCoMo evidence against 63.4% for the newest whole turns, and more at every ratio
    /// measured). It changes nothing while the history is under the trigger; <c>none</c> (per request
    /// or here) is the seed 002 behaviour: the newest whole turns, a truncation marker on an oversized last turn.
    /// </summary>
    public string Default { get; set; } = Importance;

    /// <summary>Compression starts when the history reaches this share of the budget (seed: 90%).</summary>
    public double TriggerRatio { get; set; } = 0.9;

    /// <summary>The compressed history takes at most this share of the original tokens (seed: 0.7).</summary>
    public double TargetRatio { get; set; } = 0.7;

    /// <summary>Weights of the importance score.</summary>
    public ImportanceWeights Weights { get; set; } = new();

    /// <summary>Long-term memory: compression starts beyond this many entries per user or context.</summary>
    public int MemoryThreshold { get; set; } = 1000;

    /// <summary>Long-term memory: compress beyond the threshold in the background, without a request.</summary>
    public bool AutoCompressMemory { get; set; } = true;

    /// <summary>Long-term memory: the background pass waits this long after a write (a burst is checked once).</summary>
    public TimeSpan AutoCompressInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Long-term memory entries scoring below this are merged into summaries.</summary>
    public double MemoryImportanceCutoff { get; set; } = 0.5;
}

/// <summary>
/// Weights of the three parts of a message's importance (seed 000 §2: temporal 0.3, content 0.4,
/// interaction 0.3); they are normalised, so only their proportions matter.
/// </summary>
public sealed class ImportanceWeights
{
    /// <summary>Recency: newer messages matter more.</summary>
    public double Temporal { get; set; } = 0.3;

    /// <summary>What the message says: entities, numbers, dates, safety facts, decisions.</summary>
    public double Content { get; set; } = 0.4;

    /// <summary>Its place in the conversation: role, answers to questions, being referred back to, hand-offs.</summary>
    public double Interaction { get; set; } = 0.3;

    /// <summary>Half-life of the temporal part, in messages from the newest.</summary>
    public double HalfLifeMessages { get; set; } = 40;
}
