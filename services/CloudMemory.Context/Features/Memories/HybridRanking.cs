namespace CloudMemory.Context.Features.Memories;

/// <summary>The parts of one candidate's score.</summary>
public readonly record struct FusedScore(double Fused, double Semantic, double Lexical, bool HasSemantic, bool HasLexical);

/// <summary>
/// Score fusion and re-ranking. Weighted fusion normalizes each side per query (score divided by
/// the query's best score on that side, negative cosines clamped to 0) and takes
/// <c>w · semantic + (1 − w) · lexical</c>; RRF takes <c>w / (k + rank_sem) + (1 − w) / (k + rank_lex)</c>
/// (ranks from 1; with w = 0.5 this is plain RRF up to a factor). The re-rank multiplies by
/// <c>1 + recencyWeight · 0.5^(ageDays / halfLife) + accessWeight · min(1, ln(1 + accessCount) / ln 101)</c>,
/// small enough that it only breaks near-ties.
/// </summary>
public static class HybridRanking
{
    /// <summary>Fuses the two candidate lists; single-sided modes keep that side's normalized score.</summary>
    /// <param name="semantic">Vector candidates, best first.</param>
    /// <param name="lexical">Lexical candidates, best first.</param>
    /// <param name="mode">Search mode.</param>
    /// <param name="fusion">Fusion method.</param>
    /// <param name="semanticWeight">Weight of the semantic side.</param>
    /// <param name="rrfK">The k of RRF.</param>
    /// <param name="minMax">Weighted fusion: normalize each side as <c>(s − min) / (max − min)</c> over its candidates instead of <c>s / max</c>.</param>
    public static Dictionary<string, FusedScore> Fuse(IReadOnlyList<ScoredId> semantic, IReadOnlyList<ScoredId> lexical, string mode, string fusion, double semanticWeight, int rrfK, bool minMax = false)
    {
        var (ws, wl) = mode switch
        {
            SearchModes.Semantic => (1.0, 0.0),
            SearchModes.Lexical => (0.0, 1.0),
            _ => (semanticWeight, 1 - semanticWeight),
        };
        var maxSemantic = semantic.Count == 0 ? 0 : Math.Max(0, semantic.Max(s => s.Score));
        var maxLexical = lexical.Count == 0 ? 0 : lexical.Max(s => s.Score);
        var minSemantic = minMax && semantic.Count > 1 ? Math.Max(0, semantic.Min(s => s.Score)) : 0;
        var minLexical = minMax && lexical.Count > 1 ? Math.Max(0, lexical.Min(s => s.Score)) : 0;
        var result = new Dictionary<string, FusedScore>(StringComparer.Ordinal);
        for (var i = 0; i < semantic.Count; i++)
        {
            var s = semantic[i];
            var part = fusion == FusionMethods.Rrf ? ws / (rrfK + i + 1) : ws * Normalize(s.Score, minSemantic, maxSemantic);
            result[s.Id] = new FusedScore(part, s.Score, 0, true, false);
        }
        for (var i = 0; i < lexical.Count; i++)
        {
            var l = lexical[i];
            var part = fusion == FusionMethods.Rrf ? wl / (rrfK + i + 1) : wl * Normalize(l.Score, minLexical, maxLexical);
            result[l.Id] = result.TryGetValue(l.Id, out var prior)
                ? prior with { Fused = prior.Fused + part, Lexical = l.Score, HasLexical = true }
                : new FusedScore(part, 0, l.Score, false, true);
        }
        return result;
    }

    /// <summary>The recency and usage factor (≥ 1).</summary>
    public static double ReRankFactor(MemoryEntry entry, DateTimeOffset now, LongTermMemoryOptions options)
    {
        var ageDays = Math.Max(0, (now - entry.CreatedAt).TotalDays);
        var recency = Math.Pow(0.5, ageDays / Math.Max(options.RecencyHalfLifeDays, 1e-6));
        var usage = Math.Min(1, Math.Log(1 + entry.AccessCount) / Math.Log(101));
        return 1 + (options.RecencyWeight * recency) + (options.AccessWeight * usage);
    }

    private static double Normalize(double score, double min, double max) => max <= min ? (max > 0 && score >= max ? 1 : 0) : Math.Max(0, score - min) / (max - min);
}
