using System.Text.Json.Serialization;

namespace CloudMemory.Context.Features.Memories;

/// <summary>The memory types, as they appear on the wire.</summary>
public static class MemoryTypes
{
    /// <summary>Working memory of a conversation.</summary>
    public const string ShortTerm = "short-term";

    /// <summary>Durable memory without a more specific kind.</summary>
    public const string LongTerm = "long-term";

    /// <summary>What happened in a conversation (a consolidated summary).</summary>
    public const string Episodic = "episodic";

    /// <summary>Facts and knowledge.</summary>
    public const string Semantic = "semantic";

    /// <summary>A user-level preference, carried into new conversations.</summary>
    public const string Preference = "preference";

    /// <summary>A lesson learned from a task.</summary>
    public const string Experience = "experience";

    /// <summary>A conversation message made searchable.</summary>
    public const string Message = "message";

    /// <summary>Every valid type.</summary>
    public static IReadOnlySet<string> All { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        ShortTerm, LongTerm, Episodic, Semantic, Preference, Experience, Message,
    };
}

/// <summary>One long-term memory entry.</summary>
public sealed record MemoryEntry(
    string Id,
    string TenantId,
    string? UserId,
    string? ContextId,
    string? TraceId,
    string Type,
    string Content,
    IReadOnlyDictionary<string, string> Metadata,
    IReadOnlyList<string> Tags,
    DateTimeOffset CreatedAt,
    DateTimeOffset LastAccessedAt,
    long AccessCount,
    DateTimeOffset? ExpiresAt);

/// <summary><c>POST /v1/memories</c>. <c>id</c> is optional; a repeated id returns the stored entry (idempotent).</summary>
public sealed record CreateMemoryRequest(
    string? Content,
    string? Type = null,
    string? Id = null,
    string? UserId = null,
    string? ContextId = null,
    string? TraceId = null,
    IReadOnlyDictionary<string, string>? Metadata = null,
    IReadOnlyList<string>? Tags = null,
    int? TtlSeconds = null,
    DateTimeOffset? CreatedAt = null);

/// <summary><c>PUT /v1/memories/{id}</c>: fields left null keep their value.</summary>
public sealed record UpdateMemoryRequest(
    string? Content = null,
    string? Type = null,
    IReadOnlyDictionary<string, string>? Metadata = null,
    IReadOnlyList<string>? Tags = null,
    int? TtlSeconds = null);

/// <summary>Lookup of <c>GET /v1/memories</c>.</summary>
public sealed record MemoryListQuery(string? ContextId = null, string? TraceId = null, string? UserId = null, string? Type = null, int Limit = 100);

/// <summary>Filters of a search; unknown JSON properties are rejected so a typo does not widen a search silently.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record MemorySearchFilters(
    string? ContextId = null,
    string? TraceId = null,
    string? UserId = null,
    IReadOnlyList<string>? Types = null,
    DateTimeOffset? CreatedAfter = null,
    DateTimeOffset? CreatedBefore = null);

/// <summary><c>POST /v1/memories/search</c>.</summary>
public sealed record MemorySearchRequest(
    string? Query,
    int? TopK = null,
    string? Mode = null,
    double? SemanticWeight = null,
    string? Fusion = null,
    MemorySearchFilters? Filters = null);

/// <summary>One search hit with the parts of its score and a sentence on why it matched.</summary>
public sealed record MemoryHit(
    MemoryEntry Entry,
    double Score,
    double SemanticScore,
    double LexicalScore,
    IReadOnlyList<string> MatchedTerms,
    string Why);

/// <summary>Search answer.</summary>
public sealed record MemorySearchResponse(string Query, string Mode, string Fusion, IReadOnlyList<MemoryHit> Hits);

/// <summary>Search modes.</summary>
public static class SearchModes
{
    /// <summary>Semantic and lexical fused.</summary>
    public const string Hybrid = "hybrid";

    /// <summary>Embeddings only.</summary>
    public const string Semantic = "semantic";

    /// <summary>BM25 / full-text only.</summary>
    public const string Lexical = "lexical";
}

/// <summary>Fusion methods of hybrid search.</summary>
public static class FusionMethods
{
    /// <summary>Weighted sum of per-query normalized scores.</summary>
    public const string Weighted = "weighted";

    /// <summary>Reciprocal rank fusion.</summary>
    public const string Rrf = "rrf";
}

/// <summary>A validated filter the stores apply; the tenant is always a separate argument.</summary>
public sealed record MemoryFilter(
    string? ContextId = null,
    string? TraceId = null,
    string? UserId = null,
    IReadOnlyCollection<string>? Types = null,
    DateTimeOffset? CreatedAfter = null,
    DateTimeOffset? CreatedBefore = null)
{
    /// <summary>No filter beyond the tenant.</summary>
    public static MemoryFilter None { get; } = new();

    /// <summary>True when <paramref name="entry"/> passes (tenant and expiry are checked by the caller).</summary>
    public bool Matches(MemoryEntry entry) =>
        (ContextId is null || entry.ContextId == ContextId)
        && (TraceId is null || entry.TraceId == TraceId)
        && (UserId is null || entry.UserId == UserId)
        && (Types is null || Types.Count == 0 || Types.Contains(entry.Type))
        && (CreatedAfter is null || entry.CreatedAt >= CreatedAfter)
        && (CreatedBefore is null || entry.CreatedAt < CreatedBefore);
}

/// <summary>An id with a score.</summary>
public readonly record struct ScoredId(string Id, double Score);

/// <summary>An embedding computed for a given version of an entry's content.</summary>
public sealed record EmbeddingUpdate(string TenantId, string Id, string ContentHash, float[] Vector);

/// <summary>An entry whose embedding is missing.</summary>
public sealed record PendingEmbedding(string TenantId, string Id, string ContentHash, string Content)
{
    /// <summary>
    /// True when the entry is queued again only because a conversational neighbour changed: its
    /// vector is rebuilt, its text is not counted as a new document and its own neighbours are not
    /// refreshed in turn.
    /// </summary>
    public bool Refresh { get; init; }
}

/// <summary>
/// The entries next to one entry in its context: same tenant, context and type, ordered by
/// (createdAt, id ordinal); each list nearest first.
/// </summary>
public sealed record MemoryNeighbours(IReadOnlyList<MemoryEntry> Before, IReadOnlyList<MemoryEntry> After)
{
    /// <summary>No neighbours.</summary>
    public static MemoryNeighbours None { get; } = new([], []);
}
