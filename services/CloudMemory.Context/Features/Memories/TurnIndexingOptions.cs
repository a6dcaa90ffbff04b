namespace CloudMemory.Context.Features.Memories;

/// <summary>What of a conversation's turns becomes searchable long-term memory.</summary>
public static class TurnIndexingPolicies
{
    /// <summary>Turns are not indexed (explicit memories still are).</summary>
    public const string None = "none";

    /// <summary>Turns are indexed for keyword (BM25 / full-text) search only: no embedding.</summary>
    public const string Lexical = "lexical";

    /// <summary>Turns are indexed lexically and embedded (semantic and hybrid search find them by meaning).</summary>
    public const string Semantic = "semantic";

    /// <summary>Whether <paramref name="policy"/> is one of the three.</summary>
    public static bool IsValid(string? policy) => policy is None or Lexical or Semantic;
}

/// <summary>
/// Configuration section <c>CloudMemory:LongTermMemory:TurnIndexing</c>: the indexing policy of
/// conversation turns, per tenant, and the bounds of the background indexer that applies it.
/// Explicit memories (<c>POST /v1/memories</c>, consolidation) are always indexed and embedded at write.
/// </summary>
public sealed class TurnIndexingOptions
{
    /// <summary>The section name.</summary>
    public const string SectionName = "CloudMemory:LongTermMemory:TurnIndexing";

    /// <summary>
    /// Policy of tenants not listed in <see cref="Tenants"/>: <c>lexical</c> by default (measured in
    /// docs/benchmarks.md: embedding every turn costs more CPU than the rest of the turn together).
    /// </summary>
    public string Policy { get; set; } = TurnIndexingPolicies.Lexical;

    /// <summary>Policy per tenant id (<c>none</c>, <c>lexical</c> or <c>semantic</c>).</summary>
    public Dictionary<string, string> Tenants { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Turns indexed together (one look-up of the existing entries, one embedding batch).</summary>
    public int BatchSize { get; set; } = 256;

    /// <summary>
    /// Most turns waiting to be indexed. When full, further turns are refused by the event handler
    /// with a retry (the broker keeps them and redelivers); the turn write itself never waits.
    /// </summary>
    public int MaxBacklog { get; set; } = 20_000;

    /// <summary>How long the indexer lets turns accumulate before indexing a batch that is not full.</summary>
    public int BatchDelayMilliseconds { get; set; } = 20;

    /// <summary>
    /// How often the durable marks of conversations whose turns are all indexed are cleared: a
    /// busy conversation is marked about once per interval, not once per batch.
    /// </summary>
    public int MarkClearSeconds { get; set; } = 5;

    /// <summary>The policy of <paramref name="tenantId"/>.</summary>
    public string PolicyOf(string tenantId) => Tenants.TryGetValue(tenantId, out var policy) ? policy : Policy;
}
