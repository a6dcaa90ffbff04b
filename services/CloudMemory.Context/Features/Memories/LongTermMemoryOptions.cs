namespace CloudMemory.Context.Features.Memories;

/// <summary>Configuration section <c>CloudMemory:LongTermMemory</c>.</summary>
public sealed class LongTermMemoryOptions
{
    /// <summary>The section name.</summary>
    public const string SectionName = "CloudMemory:LongTermMemory";

    /// <summary>
    /// Weight of the normalized semantic score in weighted fusion (the rest is lexical). The
    /// specification's default is 0.7; with the built-in local embedder 0.4 retrieves better
    /// (LoCoMo recall@5 0.654 against 0.615, see docs/benchmarks-locomo.md), so deployments without
    /// an embeddings endpoint may want to set 0.4 here or per request (<c>semanticWeight</c>).
    /// </summary>
    public double SemanticWeight { get; set; } = 0.7;

    /// <summary>Default fusion: <c>weighted</c> or <c>rrf</c>.</summary>
    public string Fusion { get; set; } = FusionMethods.Weighted;

    /// <summary>Per-side normalization of weighted fusion: <c>max</c> (score / best) or <c>minmax</c> ((score − worst candidate) / (best − worst)).</summary>
    public string ScoreNormalization { get; set; } = ScoreNormalizations.Max;

    /// <summary>The k of reciprocal rank fusion (1 / (k + rank)).</summary>
    public int RrfK { get; set; } = 60;

    /// <summary>Boost of a brand-new entry relative to a very old one: score × (1 + w · 0.5^(age/halfLife)).</summary>
    public double RecencyWeight { get; set; } = 0.05;

    /// <summary>Half-life of the recency boost.</summary>
    public double RecencyHalfLifeDays { get; set; } = 30;

    /// <summary>Boost of a frequently used entry: score × (1 + w · min(1, ln(1 + accessCount) / ln(101))).</summary>
    public double AccessWeight { get; set; } = 0.05;

    /// <summary>
    /// Effect of user feedback on an entry (feedback app): score × (1 + w · s), s = the feedback
    /// scores' weighted sum / (sum of weights + 1), each feedback weighted by how much the current
    /// query resembles the one it was given for (see <see cref="UserFeedbackQuerySimilarity"/>). 0 turns it off.
    /// </summary>
    public double UserFeedbackWeight { get; set; } = 0.5;

    /// <summary>
    /// Feedback given with a query counts for a search in proportion to the similarity of the two
    /// queries' terms (cosine of their stemmed content words) above this threshold:
    /// weight = (cos − t) / (1 − t), 0 at or below t, 1 for the same words. Feedback without a
    /// query counts fully for every query.
    /// </summary>
    public double UserFeedbackQuerySimilarity { get; set; } = 0.5;

    /// <summary>
    /// A global prior from query feedback: once an entry has feedback from at least this many
    /// mutually dissimilar queries, all of it also counts for unrelated queries, weighted by how
    /// consistent it is (|sum of the queries' mean scores| / their count). 0 disables the prior.
    /// </summary>
    public int UserFeedbackPriorQueries { get; set; } = 3;

    /// <summary>Each side of a hybrid search returns max(topK × this, <see cref="MinCandidates"/>) candidates.</summary>
    public int CandidateMultiplier { get; set; } = 5;

    /// <summary>Lower bound of candidates per side.</summary>
    public int MinCandidates { get; set; } = 50;

    /// <summary>
    /// Pseudo-relevance feedback on the vector side of a hybrid search: the query vector becomes
    /// <c>normalize(q + w · mean(embedQuery(content of the first pass's top FeedbackDocuments hits)))</c>
    /// and the vector side is searched again. 0 disables it (one extra query embedding per feedback
    /// document: with a remote embedder that is a network call).
    /// </summary>
    public double FeedbackWeight { get; set; } = 0.5;

    /// <summary>How many first-pass hits feed <see cref="FeedbackWeight"/>.</summary>
    public int FeedbackDocuments { get; set; } = 3;

    /// <summary>
    /// Whether the in-memory BM25 index stems terms (<see cref="InMemoryIndexOptions.LexicalStemming"/>). PostgreSQL's english text search always stems.
    /// </summary>
    public bool LexicalStemming { get; set; } = true;

    /// <summary>
    /// Reply propagation (hybrid only): the message following each of the <see cref="ReplyDocuments"/>
    /// best fused messages (same context) gains this × that message's fused score. 0 (default since
    /// round 3: passage coverage covers it) disables it (it costs one neighbour lookup per propagating message).
    /// </summary>
    public double ReplyWeight { get; set; }

    /// <summary>
    /// Lexical reply propagation: before fusion, the message following each of the
    /// <see cref="ReplyDocuments"/> best lexical hits (same context) gains this × that hit's score. 0 disables it.
    /// </summary>
    public double LexicalReplyWeight { get; set; }

    /// <summary>How many of the best fused (or lexical) messages pass score to their reply.</summary>
    public int ReplyDocuments { get; set; } = 10;

    /// <summary>
    /// Passage-level lexical scoring (lexical and hybrid modes): before fusion, the
    /// <see cref="PassageDocuments"/> best lexical candidates that are messages and the messages
    /// within <see cref="PassageWindow"/> of them (same context) are re-scored with the words of
    /// their neighbours (see <see cref="PassageCombine"/>), so a turn is also found through the
    /// words of the turns around it. 0 disables it (it costs one neighbour lookup per candidate).
    /// </summary>
    public double PassageWeight { get; set; } = 8;

    /// <summary>Neighbour distance reached by <see cref="PassageWeight"/> (each side).</summary>
    public int PassageWindow { get; set; } = 2;

    /// <summary>Factor per extra step of distance in passage scoring.</summary>
    public double PassageDecay { get; set; } = 0.7;

    /// <summary>How many of the best lexical candidates pass score to their neighbours.</summary>
    public int PassageDocuments { get; set; } = 20;

    /// <summary>
    /// How passage scoring combines a message with its window: <c>coverage</c> (default: BM25 +
    /// PassageWeight × best BM25 × rarity-weighted share of query terms in the window, own terms
    /// weighing 1 and a neighbour's PassageDecay^d), <c>sum</c> or <c>max</c> of the own score and
    /// the neighbours' PassageWeight · PassageDecay^(d − 1)-scaled BM25 scores.
    /// </summary>
    public string PassageCombine { get; set; } = PassageCombines.Coverage;

    /// <summary>
    /// Query-term coverage re-rank (all modes): the first <see cref="CoverageDepth"/> results are
    /// re-ordered greedily by <c>score · (1 + this · share of the query's (weighted) terms not yet
    /// covered by the results above)</c>. 0 disables it.
    /// </summary>
    public double CoverageWeight { get; set; } = 0.5;

    /// <summary>How many leading results the coverage re-rank re-orders.</summary>
    public int CoverageDepth { get; set; } = 20;

    /// <summary>
    /// Term proximity (all modes): each of the first <see cref="CoverageDepth"/> results is multiplied by
    /// <c>1 + this · share of the query's adjacent term pairs found within two terms of each other</c>
    /// in it (before the coverage re-rank). 0 disables it.
    /// </summary>
    public double ProximityWeight { get; set; }

    /// <summary>Largest content accepted (characters).</summary>
    public int MaxContentLength { get; set; } = 32_000;

    /// <summary>PostgreSQL schema of the memory tables.</summary>
    public string Schema { get; set; } = "memories";

    /// <summary>Whether searches record accesses (access count, last accessed).</summary>
    public bool TrackAccess { get; set; } = true;
}

/// <summary>Values of <see cref="LongTermMemoryOptions.ScoreNormalization"/>.</summary>
public static class ScoreNormalizations
{
    /// <summary>Score divided by the query's best score on that side.</summary>
    public const string Max = "max";

    /// <summary>(score − lowest candidate) / (best − lowest candidate).</summary>
    public const string MinMax = "minmax";
}

/// <summary>Values of <see cref="LongTermMemoryOptions.PassageCombine"/>.</summary>
public static class PassageCombines
{
    /// <summary>BM25 plus the window's weighted query-term coverage.</summary>
    public const string Coverage = "coverage";

    /// <summary>Own BM25 plus the decayed BM25 of the neighbours.</summary>
    public const string Sum = "sum";

    /// <summary>The larger of own BM25 and the best decayed neighbour BM25.</summary>
    public const string Max = "max";
}
