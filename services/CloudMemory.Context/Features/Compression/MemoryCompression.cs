using System.Globalization;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Context.Features.Memories;
using CloudMemory.Conversations.Compression;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace CloudMemory.Context.Features.Compression;

/// <summary><c>POST /v1/memories/compress</c>: one user's or one context's entries (exactly one of the two).</summary>
/// <param name="UserId">Compress this user's entries.</param>
/// <param name="ContextId">Compress this context's entries.</param>
/// <param name="Threshold">Entries at or below this count are left alone (default <c>CloudMemory:Compression:MemoryThreshold</c>, 1,000).</param>
/// <param name="RetainSourcesDays">How long merged entries stay expandable (default 30 days; they then expire).</param>
/// <param name="DryRun">Report what would be merged without writing.</param>
public sealed record CompressMemoriesRequest(string? UserId = null, string? ContextId = null, int? Threshold = null, int? RetainSourcesDays = null, bool DryRun = false);

/// <summary>What a memory compression did.</summary>
/// <param name="Entries">Live entries in scope before.</param>
/// <param name="Threshold">The threshold applied.</param>
/// <param name="Compressed">True when anything was (or, in a dry run, would be) merged.</param>
/// <param name="Summaries">The summaries written, each with the sources it merges.</param>
/// <param name="Kept">Old entries scored at or above the cut-off, left as they are.</param>
public sealed record CompressMemoriesResult(int Entries, int Threshold, bool Compressed, IReadOnlyList<MemorySummary> Summaries, int Kept);

/// <summary>One summary entry and its sources.</summary>
/// <param name="Id">The summary entry's id.</param>
/// <param name="ContextId">The context its sources share.</param>
/// <param name="Sources">The merged entries, each with its importance and why.</param>
/// <param name="Content">The summary text.</param>
public sealed record MemorySummary(string Id, string? ContextId, IReadOnlyList<MergedSource> Sources, string Content);

/// <summary>A merged entry: its id, importance and why it scored below the cut-off.</summary>
public sealed record MergedSource(string Id, double Importance, string Why);

/// <summary>A summary expanded back: the sources still retained, and those that have expired since.</summary>
public sealed record ExpandedMemory(MemoryEntry Summary, IReadOnlyList<MemoryEntry> Sources, IReadOnlyList<string> Expired);

/// <summary>
/// Memory compression (seed 000 §2 MemoryCompressor): beyond the threshold, the older half of a
/// user's or context's entries is scored (access frequency, age, type, content); those under the
/// cut-off (0.5) are merged, per context and at most <see cref="GroupSize"/> at a time, into an
/// episodic summary that names its sources (<c>metadata.sources</c>) and holds one condensed line per
/// source, so nothing is silently dropped. The sources are kept, marked with the summary's id, for
/// the retention period (then they expire); until then the summary expands back to them. Summaries
/// are never merged again and safety facts are never merged. Works on every memory store, through
/// the long-term memory service.
/// </summary>
public sealed class MemoryCompressor(ILongTermMemory memories, IOptions<CompressionOptions> options, TimeProvider time)
{
    /// <summary>Most sources merged into one summary.</summary>
    public const int GroupSize = 20;

    /// <summary>Metadata key listing a summary's sources (comma-separated ids).</summary>
    public const string SourcesKey = "sources";

    /// <summary>Metadata key naming the summary a source was merged into.</summary>
    public const string CompressedIntoKey = "compressedInto";

    private const int MaxEntries = 1000;

    /// <summary>Compresses one scope.</summary>
    public async Task<CompressMemoriesResult> CompressAsync(string tenantId, CompressMemoriesRequest request, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrEmpty(request.UserId) == string.IsNullOrEmpty(request.ContextId))
        {
            throw new ProblemException(400, "invalid-scope", "Give exactly one of 'userId' or 'contextId'.");
        }
        var threshold = request.Threshold ?? options.Value.MemoryThreshold;
        if (threshold is < 1 or > 1_000_000)
        {
            throw new ProblemException(400, "invalid-threshold", "'threshold' must be between 1 and 1,000,000.");
        }
        var retainDays = request.RetainSourcesDays ?? 30;
        if (retainDays is < 1 or > 3650)
        {
            throw new ProblemException(400, "invalid-retainSourcesDays", "'retainSourcesDays' must be between 1 and 3650.");
        }
        // Newest first, capped by the list API: beyond it the newest 1,000 are considered this round.
        var entries = await memories.ListAsync(tenantId, new MemoryListQuery(request.ContextId, UserId: request.UserId, Limit: MaxEntries), cancellationToken);
        if (entries.Count <= threshold)
        {
            return new CompressMemoriesResult(entries.Count, threshold, false, [], 0);
        }
        var now = time.GetUtcNow();
        var old = entries.OrderBy(e => e.CreatedAt).ThenBy(e => e.Id, StringComparer.Ordinal).Take(entries.Count / 2).ToList();
        var candidates = new List<(MemoryEntry Entry, MemoryImportance Importance)>();
        var kept = 0;
        foreach (var entry in old)
        {
            if (entry.Metadata.ContainsKey(SourcesKey) || entry.Metadata.ContainsKey(CompressedIntoKey))
            {
                continue; // a summary, or already merged
            }
            var importance = ImportanceEvaluator.EvaluateMemory(entry.Type, entry.Content, entry.CreatedAt, (int)Math.Min(int.MaxValue, entry.AccessCount), now);
            if (importance.Safety || importance.Score >= options.Value.MemoryImportanceCutoff)
            {
                kept++;
                continue;
            }
            candidates.Add((entry, importance));
        }

        var summaries = new List<MemorySummary>();
        foreach (var group in candidates.GroupBy(c => c.Entry.ContextId ?? ""))
        {
            foreach (var chunk in group.Chunk(GroupSize))
            {
                if (chunk.Length < 2)
                {
                    kept++;
                    continue; // merging one entry saves nothing
                }
                var ids = chunk.Select(c => c.Entry.Id).ToList();
                var id = LongTermMemoryService.DeterministicId("sum", [tenantId, .. ids]);
                var content = Summarize(chunk.Select(c => c.Entry).ToList());
                summaries.Add(new MemorySummary(id, chunk[0].Entry.ContextId, chunk.Select(c => new MergedSource(c.Entry.Id, c.Importance.Score, c.Importance.Why)).ToList(), content));
                if (request.DryRun)
                {
                    continue;
                }
                var first = chunk[0].Entry;
                await memories.UpsertAsync(tenantId, new CreateMemoryRequest(content, MemoryTypes.Episodic, id, first.UserId, first.ContextId,
                    Metadata: new Dictionary<string, string>(StringComparer.Ordinal)
                    {
                        [SourcesKey] = string.Join(',', ids),
                        ["compressedAt"] = now.ToString("O", CultureInfo.InvariantCulture),
                    },
                    Tags: ["compressed"], CreatedAt: chunk.Max(c => c.Entry.CreatedAt)), cancellationToken);
                foreach (var (entry, _) in chunk)
                {
                    var metadata = entry.Metadata.ToDictionary(StringComparer.Ordinal);
                    metadata[CompressedIntoKey] = id;
                    await memories.UpdateAsync(tenantId, entry.Id, new UpdateMemoryRequest(Metadata: metadata, TtlSeconds: retainDays * 86_400), cancellationToken);
                }
            }
        }
        ContextTelemetry.MemoriesCompressed.Add(summaries.Sum(s => s.Sources.Count));
        return new CompressMemoriesResult(entries.Count, threshold, summaries.Count > 0, summaries, kept);
    }

    /// <summary>A summary with the sources still retained; 404 when it is not a summary of this tenant.</summary>
    public async Task<ExpandedMemory> ExpandAsync(string tenantId, string id, CancellationToken cancellationToken = default)
    {
        var summary = await memories.GetAsync(tenantId, Ids.Require(id, "id"), cancellationToken);
        if (summary is null || !summary.Metadata.TryGetValue(SourcesKey, out var list))
        {
            throw new ProblemException(404, "summary-not-found", $"Memory '{id}' is not a compressed summary.");
        }
        var ids = list.Split(',', StringSplitOptions.RemoveEmptyEntries);
        var sources = new List<MemoryEntry>();
        var expired = new List<string>();
        foreach (var sourceId in ids)
        {
            if (await memories.GetAsync(tenantId, sourceId, cancellationToken) is { } source)
            {
                sources.Add(source);
            }
            else
            {
                expired.Add(sourceId);
            }
        }
        return new ExpandedMemory(summary, sources, expired);
    }

    // One condensed line per source, oldest first: every merged entry is represented.
    private static string Summarize(IReadOnlyList<MemoryEntry> entries) =>
        string.Join("\n", entries.OrderBy(e => e.CreatedAt).Select(e =>
        {
            var sentences = TextSignals.Sentences(e.Content).ToList();
            var best = sentences.Count == 0 ? e.Content : sentences.MaxBy(s => TextSignals.Of(s).ContentScore)!;
            return "- " + TextSignals.Condense(best);
        }));
}

/// <summary>The memory compression endpoints.</summary>
public static class MemoryCompressionEndpoints
{
    /// <summary>Maps <c>POST /v1/memories/compress</c> and <c>GET /v1/memories/{id}/expand</c>.</summary>
    public static IEndpointRouteBuilder MapMemoryCompression(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost("/v1/memories/compress", CompressAsync).WithTags("Memories").WithName("CompressMemories");
        endpoints.MapGet("/v1/memories/{id}/expand", ExpandAsync).WithTags("Memories").WithName("ExpandMemory");
        return endpoints;
    }

    /// <summary>Compresses a user's or a context's long-term memory beyond the threshold.</summary>
    public static async Task<Ok<CompressMemoriesResult>> CompressAsync(CompressMemoriesRequest? request, HttpContext http, MemoryCompressor compressor, CancellationToken ct) =>
        TypedResults.Ok(await compressor.CompressAsync(Tenant.From(http), request ?? throw new ProblemException(400, "missing-body", "A JSON body {userId | contextId} is required."), ct));

    /// <summary>A summary expanded back to its retained sources.</summary>
    public static async Task<Ok<ExpandedMemory>> ExpandAsync(string id, HttpContext http, MemoryCompressor compressor, CancellationToken ct) =>
        TypedResults.Ok(await compressor.ExpandAsync(Tenant.From(http), id, ct));
}
