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

/// <summary>
/// Query-time re-scoring that looks beyond one candidate: passage-level lexical scores (a message is
/// also found through the words of the messages around it) and query-term coverage (the top of the
/// list covers more of the query's distinct terms). Pure functions; the service supplies neighbours and terms.
/// </summary>
public static class PassageRanking
{
    /// <summary>
    /// Passage-level lexical scores. Each candidate <c>j</c> passes <c>weight · decay^(d − 1) · score(j)</c>
    /// to every neighbour at distance <c>d</c> (1 ≤ d ≤ window) listed in <paramref name="neighbours"/>;
    /// with <paramref name="useMax"/> a message keeps the larger of its own score and the best it
    /// received, otherwise it adds them all. Neighbours that were not candidates become candidates.
    /// </summary>
    /// <param name="lexical">Lexical candidates, best first.</param>
    /// <param name="neighbours">Per candidate id: its neighbours (id, distance ≥ 1) in the same context.</param>
    /// <param name="weight">Weight of a distance-1 neighbour's score.</param>
    /// <param name="decay">Factor per extra step of distance.</param>
    /// <param name="useMax">Max instead of sum.</param>
    /// <returns>Candidates, best first (ties by id ordinal).</returns>
    public static List<ScoredId> PassageScores(IReadOnlyList<ScoredId> lexical, IReadOnlyDictionary<string, IReadOnlyList<(string Id, int Distance)>> neighbours, double weight, double decay, bool useMax)
    {
        var own = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var l in lexical)
        {
            own[l.Id] = l.Score;
        }
        var received = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var l in lexical)
        {
            if (l.Score <= 0 || !neighbours.TryGetValue(l.Id, out var list))
            {
                continue;
            }
            foreach (var (id, distance) in list)
            {
                if (distance < 1 || id == l.Id)
                {
                    continue;
                }
                var gain = weight * Math.Pow(decay, distance - 1) * l.Score;
                received[id] = useMax ? Math.Max(received.GetValueOrDefault(id), gain) : received.GetValueOrDefault(id) + gain;
            }
        }
        var result = new Dictionary<string, double>(own, StringComparer.Ordinal);
        foreach (var (id, gain) in received)
        {
            var mine = own.GetValueOrDefault(id);
            result[id] = useMax ? Math.Max(mine, gain) : mine + gain;
        }
        return result.Select(kv => new ScoredId(kv.Key, kv.Value))
            .OrderByDescending(s => s.Score).ThenBy(s => s.Id, StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// Query-term coverage re-rank (a lexical form of maximal marginal relevance). Greedily picks,
    /// among the first <paramref name="depth"/> candidates, the one maximizing
    /// <c>score · (1 + weight · new / total)</c> where <c>new</c> is the summed weight of query terms
    /// it contains that no earlier pick contains and <c>total</c> the summed weight of all query terms;
    /// candidates after <paramref name="depth"/> keep their order.
    /// </summary>
    /// <param name="ranked">Candidates with their score and the query terms each contains, best first.</param>
    /// <param name="termWeights">Query terms and their weights (e.g. IDF).</param>
    /// <param name="weight">Strength of the coverage bonus (0 keeps the order).</param>
    /// <param name="depth">How many leading candidates are re-ordered.</param>
    /// <returns>The ids in their new order.</returns>
    public static List<string> CoverageReRank(IReadOnlyList<(string Id, double Score, IReadOnlySet<string> Terms)> ranked, IReadOnlyDictionary<string, double> termWeights, double weight, int depth)
    {
        var total = termWeights.Values.Sum();
        var head = ranked.Take(Math.Max(0, depth)).ToList();
        var order = new List<string>(ranked.Count);
        if (weight <= 0 || total <= 0)
        {
            order.AddRange(ranked.Select(r => r.Id));
            return order;
        }
        var covered = new HashSet<string>(StringComparer.Ordinal);
        while (head.Count > 0)
        {
            var best = 0;
            var bestValue = double.NegativeInfinity;
            for (var i = 0; i < head.Count; i++)
            {
                var gain = head[i].Terms.Where(t => !covered.Contains(t)).Sum(t => termWeights.GetValueOrDefault(t));
                var value = head[i].Score * (1 + (weight * gain / total));
                if (value > bestValue)
                {
                    best = i;
                    bestValue = value;
                }
            }
            order.Add(head[best].Id);
            covered.UnionWith(head[best].Terms);
            head.RemoveAt(best);
        }
        order.AddRange(ranked.Skip(Math.Max(0, depth)).Select(r => r.Id));
        return order;
    }
    /// <summary>
    /// Share of the query's adjacent term pairs (consecutive in <paramref name="queryTerms"/>) that
    /// occur within <paramref name="window"/> positions of each other, in either order, in
    /// <paramref name="documentTerms"/> (a simple term-proximity signal, as in sequential dependence models).
    /// 0 when the query has fewer than two terms.
    /// </summary>
    public static double PairProximity(IReadOnlyList<string> queryTerms, IReadOnlyList<string> documentTerms, int window = 2)
    {
        var pairs = new HashSet<(string, string)>();
        for (var i = 0; i + 1 < queryTerms.Count; i++)
        {
            if (queryTerms[i] != queryTerms[i + 1])
            {
                pairs.Add((queryTerms[i], queryTerms[i + 1]));
            }
        }
        if (pairs.Count == 0)
        {
            return 0;
        }
        var matched = 0;
        foreach (var (a, b) in pairs)
        {
            var found = false;
            for (var i = 0; i < documentTerms.Count && !found; i++)
            {
                if (documentTerms[i] != a)
                {
                    continue;
                }
                for (var j = Math.Max(0, i - window); j <= Math.Min(documentTerms.Count - 1, i + window) && !found; j++)
                {
                    found = j != i && documentTerms[j] == b;
                }
            }
            matched += found ? 1 : 0;
        }
        return (double)matched / pairs.Count;
    }
    /// <summary>
    /// Window coverage of a message: <c>Σ_t weight(t) · max over messages m within <paramref name="window"/>
    /// steps that contain t of (1 at distance 0, else neighbourWeight · decay^(d − 1))</c>, divided by
    /// <c>Σ_t weight(t)</c> (0–1). The sequence is given by <paramref name="previous"/> / <paramref name="next"/>
    /// links (missing link = sequence end or unknown).
    /// </summary>
    public static double WindowCoverage(string id, IReadOnlyDictionary<string, string> previous, IReadOnlyDictionary<string, string> next, IReadOnlyDictionary<string, IReadOnlySet<string>> terms, IReadOnlyDictionary<string, double> termWeights, int window, double neighbourWeight, double decay)
    {
        var total = termWeights.Values.Sum();
        if (total <= 0)
        {
            return 0;
        }
        var best = new Dictionary<string, double>(StringComparer.Ordinal);
        void Visit(string at, double factor)
        {
            if (!terms.TryGetValue(at, out var set))
            {
                return;
            }
            foreach (var t in set)
            {
                if (termWeights.ContainsKey(t) && factor > best.GetValueOrDefault(t))
                {
                    best[t] = factor;
                }
            }
        }
        Visit(id, 1);
        foreach (var links in new[] { previous, next })
        {
            var at = id;
            for (var d = 1; d <= window && links.TryGetValue(at, out var step); d++)
            {
                at = step;
                Visit(at, neighbourWeight * Math.Pow(decay, d - 1));
            }
        }
        return best.Sum(kv => termWeights[kv.Key] * kv.Value) / total;
    }
}
