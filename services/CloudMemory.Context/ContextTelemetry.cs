using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace CloudMemory.Context;

/// <summary>Spans and metrics of the context service.</summary>
public static class ContextTelemetry
{
    /// <summary>Source and meter name.</summary>
    public const string Name = "CloudMemory.Context";

    /// <summary>Spans around context assembly.</summary>
    public static readonly ActivitySource Source = new(Name);

    /// <summary>Metrics.</summary>
    public static readonly Meter Meter = new(Name);

    /// <summary>Token ratio of answered queries.</summary>
    public static readonly Histogram<double> TokenRatio = Meter.CreateHistogram<double>("cloudmemory.context.token_ratio", null, "tokens(fullHistory + query) / window of answered queries");

    /// <summary>Long-term memory entries merged into summaries.</summary>
    public static readonly Counter<long> MemoriesCompressed = Meter.CreateCounter<long>("cloudmemory.memories.compressed", "{entry}");

    /// <summary>Automatic memory compression checks of one scope (tags: compressed, failed).</summary>
    public static readonly Counter<long> MemoryCompressionPasses = Meter.CreateCounter<long>("cloudmemory.memory_compression.passes", "{scope}");

    /// <summary>Writes whose scope was not queued for automatic compression (the queue was full).</summary>
    public static readonly Counter<long> MemoryCompressionSkipped = Meter.CreateCounter<long>("cloudmemory.memory_compression.skipped", "{write}");
}
