using System.Security.Cryptography;
using System.Text;
using System.Threading.Channels;
using CloudMemory.BuildingBlocks.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CloudMemory.Context.Features.Memories;

/// <summary>Long-term memory as the rest of the context service sees it. Every call is scoped to a tenant.</summary>
public interface ILongTermMemory
{
    /// <summary>Creates an entry; a repeated explicit id returns the stored entry with Created = false.</summary>
    Task<(MemoryEntry Entry, bool Created)> CreateAsync(string tenantId, CreateMemoryRequest request, CancellationToken cancellationToken = default);

    /// <summary>Writes an entry with an explicit id, replacing any earlier version (idempotent for equal input).</summary>
    Task<MemoryEntry> UpsertAsync(string tenantId, CreateMemoryRequest request, CancellationToken cancellationToken = default);

    /// <summary>The entry, or null.</summary>
    Task<MemoryEntry?> GetAsync(string tenantId, string id, CancellationToken cancellationToken = default);

    /// <summary>Updates the given fields; null when unknown.</summary>
    Task<MemoryEntry?> UpdateAsync(string tenantId, string id, UpdateMemoryRequest request, CancellationToken cancellationToken = default);

    /// <summary>Deletes the entry from storage and every index; false when unknown.</summary>
    Task<bool> DeleteAsync(string tenantId, string id, CancellationToken cancellationToken = default);

    /// <summary>Entries of a context, trace or user (and type), newest first.</summary>
    Task<IReadOnlyList<MemoryEntry>> ListAsync(string tenantId, MemoryListQuery query, CancellationToken cancellationToken = default);

    /// <summary>Semantic, lexical or hybrid search.</summary>
    Task<MemorySearchResponse> SearchAsync(string tenantId, MemorySearchRequest request, CancellationToken cancellationToken = default);

    /// <summary>
    /// Makes a conversation message searchable (type <c>message</c>, contextId = conversation id).
    /// Idempotent per (conversation, message id).
    /// </summary>
    Task<MemoryEntry> IndexMessageAsync(string tenantId, string conversationId, string messageId, string role, string text, DateTimeOffset createdAt, string? userId = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Makes a batch of conversation messages of one tenant searchable as <see cref="IndexMessageAsync"/>
    /// does, with one look-up of the existing entries; with <paramref name="embed"/> false they are
    /// indexed for keyword search only (no embedding, no retraining of the learned word space).
    /// </summary>
    Task IndexMessagesAsync(string tenantId, IReadOnlyList<MessageToIndex> messages, bool embed, CancellationToken cancellationToken = default);
}

/// <summary>A conversation message to index (see <see cref="ILongTermMemory.IndexMessagesAsync"/>).</summary>
public sealed record MessageToIndex(string ConversationId, string MessageId, string Text, DateTimeOffset CreatedAt, string? UserId);

/// <summary>The implementation over an <see cref="IMemoryStore"/> and an <see cref="IEmbedder"/>.</summary>
public sealed class LongTermMemoryService : ILongTermMemory
{
    private const int MaxMetadataEntries = 64;
    private const int MaxTags = 32;
    private const int MaxListLimit = 1000;

    private readonly IMemoryStore _store;
    private readonly IEmbedder _embedder;
    private readonly EmbeddingPipeline _pipeline;
    private readonly AccessRecorder _access;
    private readonly LongTermMemoryOptions _options;
    private readonly TimeProvider _time;
    private readonly LatentSemanticIndex _latent;
    private readonly MemoryFeedbackScores? _feedback;
    private readonly Compression.MemoryCompressionQueue? _compression;

    /// <summary>Creates the service.</summary>
    public LongTermMemoryService(IMemoryStore store, IEmbedder embedder, EmbeddingPipeline pipeline, AccessRecorder access, IOptions<LongTermMemoryOptions> options, TimeProvider time, LatentSemanticIndex latent, MemoryFeedbackScores? feedback = null,
        Compression.MemoryCompressionQueue? compression = null)
    {
        _compression = compression; // notified of new entries: the automatic compression beyond the threshold
        _feedback = feedback;
        _latent = latent;
        _store = store;
        _embedder = embedder;
        _pipeline = pipeline;
        _access = access;
        _options = options.Value;
        _time = time;
    }

    /// <inheritdoc />
    public async Task<(MemoryEntry Entry, bool Created)> CreateAsync(string tenantId, CreateMemoryRequest request, CancellationToken cancellationToken = default)
    {
        var now = Now();
        var entry = Build(tenantId, request, request.Id is null ? Guid.CreateVersion7(now).ToString("N") : request.Id, now);
        var hash = ContentHash(entry.Content);
        var (stored, created) = await _store.InsertIfAbsentAsync(entry, hash, now, cancellationToken);
        if (created)
        {
            _pipeline.Enqueue(new PendingEmbedding(tenantId, entry.Id, hash, entry.Content));
            _latent.Observe(tenantId);
            _compression?.Written(tenantId, entry.ContextId, entry.UserId);
        }
        return (stored, created);
    }

    /// <inheritdoc />
    public async Task<MemoryEntry> UpsertAsync(string tenantId, CreateMemoryRequest request, CancellationToken cancellationToken = default)
    {
        var id = Ids.Require(request.Id, "id");
        var now = Now();
        var entry = Build(tenantId, request, id, now);
        var hash = ContentHash(entry.Content);
        var existing = await _store.GetAsync(tenantId, id, now, cancellationToken);
        if (existing is not null)
        {
            // A retry or a refresh keeps the entry's history (creation and usage).
            entry = entry with { CreatedAt = existing.CreatedAt, LastAccessedAt = existing.LastAccessedAt, AccessCount = existing.AccessCount };
            if (entry == existing with { Metadata = entry.Metadata, Tags = entry.Tags } && SameMaps(entry, existing))
            {
                return existing;
            }
        }
        await _store.UpsertAsync(entry, hash, cancellationToken);
        if (existing is null)
        {
            _compression?.Written(tenantId, entry.ContextId, entry.UserId);
        }
        if (existing is null || ContentHash(existing.Content) != hash)
        {
            _pipeline.Enqueue(new PendingEmbedding(tenantId, entry.Id, hash, entry.Content));
            _latent.Observe(tenantId);
        }
        return entry;
    }

    /// <inheritdoc />
    public Task<MemoryEntry?> GetAsync(string tenantId, string id, CancellationToken cancellationToken = default) =>
        _store.GetAsync(tenantId, Ids.Require(id, "id"), Now(), cancellationToken);

    /// <inheritdoc />
    public async Task<MemoryEntry?> UpdateAsync(string tenantId, string id, UpdateMemoryRequest request, CancellationToken cancellationToken = default)
    {
        Ids.Require(id, "id");
        var now = Now();
        var existing = await _store.GetAsync(tenantId, id, now, cancellationToken);
        if (existing is null)
        {
            return null;
        }
        var updated = existing with
        {
            Content = request.Content is null ? existing.Content : ValidContent(request.Content),
            Type = request.Type is null ? existing.Type : ValidType(request.Type),
            Metadata = request.Metadata is null ? existing.Metadata : ValidMetadata(request.Metadata),
            Tags = request.Tags is null ? existing.Tags : ValidTags(request.Tags),
            ExpiresAt = request.TtlSeconds is null ? existing.ExpiresAt : now.AddSeconds(ValidTtl(request.TtlSeconds.Value)),
        };
        var hash = ContentHash(updated.Content);
        await _store.UpsertAsync(updated, hash, cancellationToken);
        if (updated.Content != existing.Content)
        {
            _pipeline.Enqueue(new PendingEmbedding(tenantId, id, hash, updated.Content));
        }
        return updated;
    }

    /// <inheritdoc />
    public async Task<bool> DeleteAsync(string tenantId, string id, CancellationToken cancellationToken = default)
    {
        Ids.Require(id, "id");
        var now = Now();
        // A deleted message leaves its neighbours' vectors (conversational enrichment): rebuild them.
        var existing = await _store.GetAsync(tenantId, id, now, cancellationToken);
        var neighbours = existing is { Type: MemoryTypes.Message, ContextId: not null } && _pipeline.EnrichesNeighbours
            ? await _store.ListNeighboursAsync(existing, _pipeline.NeighbourWindow, _pipeline.NeighbourWindow, now, cancellationToken)
            : MemoryNeighbours.None;
        var deleted = await _store.DeleteAsync(tenantId, id, cancellationToken);
        if (deleted)
        {
            foreach (var e in neighbours.Before.Concat(neighbours.After))
            {
                _pipeline.Enqueue(new PendingEmbedding(tenantId, e.Id, ContentHash(e.Content), e.Content) { Refresh = true });
            }
        }
        return deleted;
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<MemoryEntry>> ListAsync(string tenantId, MemoryListQuery query, CancellationToken cancellationToken = default)
    {
        var filter = new MemoryFilter(
            OptionalId(query.ContextId, "contextId"),
            OptionalId(query.TraceId, "traceId"),
            OptionalId(query.UserId, "userId"),
            query.Type is null ? null : [ValidType(query.Type)]);
        if (query.Limit is < 1 or > MaxListLimit)
        {
            throw new ProblemException(400, "invalid-limit", $"'limit' must be between 1 and {MaxListLimit}.");
        }
        return _store.ListAsync(tenantId, filter, query.Limit, Now(), cancellationToken);
    }

    /// <inheritdoc />
    public async Task<MemorySearchResponse> SearchAsync(string tenantId, MemorySearchRequest request, CancellationToken cancellationToken = default)
    {
        using var corpus = EmbeddingTenant.Use(tenantId);
        var query = string.IsNullOrWhiteSpace(request.Query)
            ? throw new ProblemException(400, "invalid-query", "'query' must not be empty.")
            : request.Query.Length > _options.MaxContentLength
                ? throw new ProblemException(400, "invalid-query", $"'query' must be at most {_options.MaxContentLength} characters.")
                : request.Query;
        var topK = request.TopK ?? 10;
        if (topK is < 1 or > 100)
        {
            throw new ProblemException(400, "invalid-topk", "'topK' must be between 1 and 100.");
        }
        var mode = request.Mode ?? SearchModes.Hybrid;
        if (mode is not (SearchModes.Hybrid or SearchModes.Semantic or SearchModes.Lexical))
        {
            throw new ProblemException(400, "invalid-mode", "'mode' must be 'hybrid', 'semantic' or 'lexical'.");
        }
        var fusion = request.Fusion ?? _options.Fusion;
        if (fusion is not (FusionMethods.Weighted or FusionMethods.Rrf))
        {
            throw new ProblemException(400, "invalid-fusion", "'fusion' must be 'weighted' or 'rrf'.");
        }
        var weight = request.SemanticWeight ?? _options.SemanticWeight;
        if (double.IsNaN(weight) || weight is < 0 or > 1)
        {
            throw new ProblemException(400, "invalid-semantic-weight", "'semanticWeight' must be between 0 and 1.");
        }
        var filter = ValidFilter(request.Filters);
        var now = Now();

        var candidates = Math.Max(topK * _options.CandidateMultiplier, _options.MinCandidates);
        IReadOnlyList<ScoredId> semantic = [];
        IReadOnlyList<ScoredId> lexical = [];
        float[] vector = [];
        if (mode != SearchModes.Lexical)
        {
            vector = _latent.Expand(tenantId, await _embedder.EmbedQueryAsync(query, cancellationToken));
            semantic = await _store.SearchVectorAsync(tenantId, vector, filter, candidates, now, cancellationToken);
        }
        if (mode != SearchModes.Semantic)
        {
            lexical = await _store.SearchLexicalAsync(tenantId, query, filter, candidates, now, cancellationToken);
            if (_options.LexicalReplyWeight > 0 && _options.ReplyDocuments > 0)
            {
                lexical = await SpreadLexicalToRepliesAsync(tenantId, lexical, filter, now, cancellationToken);
            }
            if (_options.PassageWeight > 0 && _options.PassageWindow > 0 && _options.PassageDocuments > 0)
            {
                lexical = await PassageLexicalAsync(tenantId, query, lexical, filter, now, cancellationToken);
            }
        }

        var fused = HybridRanking.Fuse(semantic, lexical, mode, fusion, weight, _options.RrfK, _options.ScoreNormalization == ScoreNormalizations.MinMax);
        if (mode == SearchModes.Hybrid && _options.FeedbackWeight > 0 && _options.FeedbackDocuments > 0 && fused.Count > 0)
        {
            // Pseudo-relevance feedback (Rocchio), hybrid only: move the query vector towards the best
            // hits of the first fused pass (both signals agree there) and search the vector side again.
            var top = fused.OrderByDescending(f => f.Value.Fused).ThenBy(f => f.Key, StringComparer.Ordinal).Take(_options.FeedbackDocuments).Select(f => f.Key).ToList();
            var feedback = await _store.GetManyAsync(tenantId, top, now, cancellationToken);
            if (feedback.Count > 0)
            {
                var expanded = (float[])vector.Clone();
                foreach (var e in feedback)
                {
                    var v = await _embedder.EmbedFeedbackAsync(e.Content, cancellationToken);
                    if (v.Length == expanded.Length)
                    {
                        System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(v, (float)(_options.FeedbackWeight / feedback.Count), expanded, expanded);
                    }
                }
                var norm = System.Numerics.Tensors.TensorPrimitives.Norm(expanded);
                if (norm > 0)
                {
                    System.Numerics.Tensors.TensorPrimitives.Divide(expanded, norm, expanded);
                }
                semantic = await _store.SearchVectorAsync(tenantId, expanded, filter, candidates, now, cancellationToken);
                fused = HybridRanking.Fuse(semantic, lexical, mode, fusion, weight, _options.RrfK, _options.ScoreNormalization == ScoreNormalizations.MinMax);
            }
        }
        var entries = (await _store.GetManyAsync(tenantId, fused.Keys.ToList(), now, cancellationToken)).ToDictionary(e => e.Id, StringComparer.Ordinal);
        if (mode == SearchModes.Hybrid && _options.ReplyWeight > 0 && _options.ReplyDocuments > 0)
        {
            await SpreadToRepliesAsync(fused, entries, filter, now, cancellationToken);
        }
        var queryTerms = TextAnalysis.Terms(query).Distinct(StringComparer.Ordinal).ToList();
        var userFeedback = _feedback is not null && _options.UserFeedbackWeight > 0
            ? await _feedback.ScoresAsync(tenantId, entries.Keys, query, cancellationToken)
            : null;
        var ranked = fused
            .Where(f => entries.ContainsKey(f.Key))
            .Select(f =>
            {
                var entry = entries[f.Key];
                var score = f.Value.Fused * HybridRanking.ReRankFactor(entry, now, _options);
                if (userFeedback is not null && userFeedback.TryGetValue(entry.Id, out var feedbackScore))
                {
                    score *= MemoryFeedbackScores.Factor(feedbackScore, _options.UserFeedbackWeight);
                }
                return (Entry: entry, Score: score, f.Value);
            })
            .OrderByDescending(h => h.Score).ThenBy(h => h.Entry.Id, StringComparer.Ordinal)
            .ToList();
        if ((_options.CoverageWeight > 0 || _options.ProximityWeight > 0) && _options.CoverageDepth > 1 && ranked.Count > 1)
        {
            ranked = TermReRank(ranked, query);
        }
        var hits = ranked
            .Take(topK)
            .Select(h =>
            {
                var matched = MatchedTerms(queryTerms, h.Entry.Content);
                return new MemoryHit(h.Entry, Math.Round(h.Score, 6), Math.Round(h.Value.Semantic, 6), Math.Round(h.Value.Lexical, 6), matched, Why(matched, h.Value, mode));
            })
            .ToList();

        if (_options.TrackAccess && hits.Count > 0)
        {
            _access.Record(tenantId, hits.Select(h => h.Entry.Id).ToList(), now);
        }
        return new MemorySearchResponse(query, mode, fusion, hits);
    }

    // The lexical side's counterpart of conversational context enrichment (the index holds each
    // text alone): the message right after one of the ReplyDocuments best lexical hits gains
    // LexicalReplyWeight × that hit's score.
    private async Task<IReadOnlyList<ScoredId>> SpreadLexicalToRepliesAsync(string tenantId, IReadOnlyList<ScoredId> lexical, MemoryFilter filter, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var top = lexical.Take(_options.ReplyDocuments).ToList();
        if (top.Count == 0)
        {
            return lexical;
        }
        var scores = lexical.ToDictionary(l => l.Id, l => l.Score, StringComparer.Ordinal);
        var entries = await _store.GetManyAsync(tenantId, top.Select(t => t.Id).ToList(), now, cancellationToken);
        var byId = entries.ToDictionary(e => e.Id, StringComparer.Ordinal);
        foreach (var hit in top)
        {
            if (!byId.TryGetValue(hit.Id, out var entry) || entry.Type != MemoryTypes.Message || entry.ContextId is null)
            {
                continue;
            }
            var next = await _store.ListNeighboursAsync(entry, 0, 1, now, cancellationToken);
            if (next.After.Count > 0 && filter.Matches(next.After[0]))
            {
                var id = next.After[0].Id;
                scores[id] = scores.GetValueOrDefault(id) + (_options.LexicalReplyWeight * hit.Score);
            }
        }
        return scores.Select(kv => new ScoredId(kv.Key, kv.Value))
            .OrderByDescending(s => s.Score).ThenBy(s => s.Id, StringComparer.Ordinal)
            .Take(Math.Max(lexical.Count, 1)).ToList();
    }

    // Passage-level lexical scoring: the best lexical candidates pass a decayed share of their score
    // to the messages around them (same context and type), so the answer a few turns away from the
    // turn that shares the query's words is found through that turn.
    private async Task<IReadOnlyList<ScoredId>> PassageLexicalAsync(string tenantId, string query, IReadOnlyList<ScoredId> lexical, MemoryFilter filter, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var top = lexical.Take(_options.PassageDocuments).Select(t => t.Id).ToList();
        if (top.Count == 0)
        {
            return lexical;
        }
        var entries = await _store.GetManyAsync(tenantId, top, now, cancellationToken);
        if (string.Equals(_options.PassageCombine, PassageCombines.Coverage, StringComparison.OrdinalIgnoreCase))
        {
            return await PassageCoverageAsync(query, lexical, entries, filter, now, cancellationToken);
        }
        var neighbours = new Dictionary<string, IReadOnlyList<(string Id, int Distance)>>(StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            if (entry.Type != MemoryTypes.Message || entry.ContextId is null)
            {
                continue;
            }
            var around = await _store.ListNeighboursAsync(entry, _options.PassageWindow, _options.PassageWindow, now, cancellationToken);
            // Neighbours outside the search's filters never become results.
            neighbours[entry.Id] = around.Before.Select((e, i) => (e, i + 1)).Concat(around.After.Select((e, i) => (e, i + 1)))
                .Where(n => filter.Matches(n.e)).Select(n => (n.e.Id, n.Item2)).ToList();
        }
        var useMax = string.Equals(_options.PassageCombine, PassageCombines.Max, StringComparison.OrdinalIgnoreCase);
        var scored = PassageRanking.PassageScores(lexical, neighbours, _options.PassageWeight, _options.PassageDecay, useMax);
        return scored.Take(Math.Max(lexical.Count, 1)).ToList();
    }

    // Passage coverage: a message's lexical score becomes its BM25 score plus PassageWeight × the best
    // BM25 score × the (rarity-weighted) share of the query's terms found in its ±PassageWindow window
    // (own terms count 1, a neighbour's PassageDecay^d).
    private async Task<IReadOnlyList<ScoredId>> PassageCoverageAsync(string query, IReadOnlyList<ScoredId> lexical, IReadOnlyList<MemoryEntry> entries, MemoryFilter filter, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var stems = TextAnalysis.Terms(query).Select(TextAnalysis.Stem).Distinct(StringComparer.Ordinal).ToList();
        if (stems.Count == 0)
        {
            return lexical;
        }
        var previous = new Dictionary<string, string>(StringComparer.Ordinal);
        var next = new Dictionary<string, string>(StringComparer.Ordinal);
        var terms = new Dictionary<string, IReadOnlySet<string>>(StringComparer.Ordinal);
        // Neighbours outside the search's filters lend their words to a window but never become results.
        var eligible = new HashSet<string>(lexical.Select(l => l.Id), StringComparer.Ordinal);
        void Add(MemoryEntry e)
        {
            terms.TryAdd(e.Id, TextAnalysis.Terms(e.Content).Select(TextAnalysis.Stem).Where(stems.Contains).ToHashSet(StringComparer.Ordinal));
            if (filter.Matches(e))
            {
                eligible.Add(e.Id);
            }
        }
        foreach (var entry in entries)
        {
            Add(entry);
            if (entry.Type != MemoryTypes.Message || entry.ContextId is null)
            {
                continue;
            }
            var around = await _store.ListNeighboursAsync(entry, _options.PassageWindow * 2, _options.PassageWindow * 2, now, cancellationToken);
            var at = entry.Id;
            foreach (var e in around.Before)
            {
                Add(e);
                previous[at] = e.Id;
                next[e.Id] = at;
                at = e.Id;
            }
            at = entry.Id;
            foreach (var e in around.After)
            {
                Add(e);
                next[at] = e.Id;
                previous[e.Id] = at;
                at = e.Id;
            }
        }
        var pool = terms.Keys.ToList();
        var weights = stems.ToDictionary(t => t, t => Math.Log(1 + (pool.Count / (1.0 + pool.Count(id => terms[id].Contains(t))))), StringComparer.Ordinal);
        var own = lexical.ToDictionary(l => l.Id, l => l.Score, StringComparer.Ordinal);
        var max = lexical.Count == 0 ? 0 : lexical.Max(l => l.Score);
        var scored = pool.Where(eligible.Contains).Select(id => new ScoredId(id, own.GetValueOrDefault(id) + (_options.PassageWeight * max * PassageRanking.WindowCoverage(id, previous, next, terms, weights, _options.PassageWindow, _options.PassageDecay, _options.PassageDecay))))
            .Concat(lexical.Where(l => !terms.ContainsKey(l.Id)))
            .OrderByDescending(s => s.Score).ThenBy(s => s.Id, StringComparer.Ordinal);
        return scored.Take(Math.Max(lexical.Count, 1)).ToList();
    }

    // Query-term coverage: the leading results are re-ordered so that together they cover more of
    // the query's distinct terms (stems); a term's weight is its rarity among those results.
    // Term proximity multiplies each leading result by 1 + ProximityWeight × its share of adjacent query pairs.
    private List<(MemoryEntry Entry, double Score, FusedScore Value)> TermReRank(List<(MemoryEntry Entry, double Score, FusedScore Value)> ranked, string query)
    {
        var querySequence = TextAnalysis.Terms(query).Select(TextAnalysis.Stem).ToList();
        var stems = querySequence.Distinct(StringComparer.Ordinal).ToList();
        if (stems.Count < 2)
        {
            return ranked;
        }
        var depth = Math.Min(_options.CoverageDepth, ranked.Count);
        var withTerms = ranked.Select((h, i) =>
        {
            if (i >= depth)
            {
                return (Id: h.Entry.Id, Score: h.Score, Terms: (IReadOnlySet<string>)new HashSet<string>(StringComparer.Ordinal));
            }
            var sequence = TextAnalysis.Terms(h.Entry.Content).Select(TextAnalysis.Stem).ToList();
            var score = _options.ProximityWeight > 0 ? h.Score * (1 + (_options.ProximityWeight * PassageRanking.PairProximity(querySequence, sequence))) : h.Score;
            return (Id: h.Entry.Id, Score: score, Terms: (IReadOnlySet<string>)sequence.Where(stems.Contains).ToHashSet(StringComparer.Ordinal));
        }).ToList();
        if (_options.CoverageWeight <= 0)
        {
            var byScore = ranked.ToDictionary(h => h.Entry.Id, StringComparer.Ordinal);
            return withTerms.Take(depth).OrderByDescending(w => w.Score).ThenBy(w => w.Id, StringComparer.Ordinal)
                .Concat(withTerms.Skip(depth)).Select(w => byScore[w.Id]).ToList();
        }
        var weights = stems.ToDictionary(t => t, t => Math.Log(1 + (depth / (1.0 + withTerms.Take(depth).Count(w => w.Terms.Contains(t))))), StringComparer.Ordinal);
        var order = PassageRanking.CoverageReRank(withTerms, weights, _options.CoverageWeight, depth);
        var byId = ranked.ToDictionary(h => h.Entry.Id, StringComparer.Ordinal);
        return order.Select(id => byId[id]).ToList();
    }

    // Conversational reply propagation: the message right after a strongly matching message (same
    // context, type message) often holds the answer to it ("How do you relax?" → "Running, mostly"),
    // so it gains ReplyWeight × the matching message's fused score.
    private async Task SpreadToRepliesAsync(Dictionary<string, FusedScore> fused, Dictionary<string, MemoryEntry> entries, MemoryFilter filter, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var top = fused.Where(f => entries.TryGetValue(f.Key, out var e) && e.Type == MemoryTypes.Message && e.ContextId is not null)
            .OrderByDescending(f => f.Value.Fused).ThenBy(f => f.Key, StringComparer.Ordinal)
            .Take(_options.ReplyDocuments).ToList();
        foreach (var (id, score) in top)
        {
            var next = await _store.ListNeighboursAsync(entries[id], 0, 1, now, cancellationToken);
            if (next.After.Count == 0)
            {
                continue;
            }
            var reply = next.After[0];
            if (!filter.Matches(reply))
            {
                continue;
            }
            var gain = _options.ReplyWeight * score.Fused;
            fused[reply.Id] = fused.TryGetValue(reply.Id, out var prior)
                ? prior with { Fused = prior.Fused + gain }
                : new FusedScore(gain, 0, 0, false, false);
            entries.TryAdd(reply.Id, reply);
        }
    }

    /// <inheritdoc />
    public Task<MemoryEntry> IndexMessageAsync(string tenantId, string conversationId, string messageId, string role, string text, DateTimeOffset createdAt, string? userId = null, CancellationToken cancellationToken = default)
    {
        Ids.Require(conversationId, "conversationId");
        Ids.Require(messageId, "messageId");
        var id = DeterministicId("msg", conversationId, messageId);
        var content = string.IsNullOrEmpty(role) ? text : $"{role}: {text}";
        return UpsertAsync(tenantId, new CreateMemoryRequest(
            content, MemoryTypes.Message, id, userId, conversationId,
            Metadata: new Dictionary<string, string>(StringComparer.Ordinal) { ["messageId"] = messageId, ["role"] = role },
            CreatedAt: createdAt), cancellationToken);
    }

    /// <inheritdoc />
    public async Task IndexMessagesAsync(string tenantId, IReadOnlyList<MessageToIndex> messages, bool embed, CancellationToken cancellationToken = default)
    {
        if (messages.Count == 0)
        {
            return;
        }
        var now = Now();
        var entries = messages.Select(m =>
        {
            var id = DeterministicId("msg", Ids.Require(m.ConversationId, "conversationId"), Ids.Require(m.MessageId, "messageId"));
            return Build(tenantId, new CreateMemoryRequest(m.Text, MemoryTypes.Message, id, m.UserId, m.ConversationId,
                Metadata: new Dictionary<string, string>(StringComparer.Ordinal) { ["messageId"] = m.MessageId, ["role"] = "" },
                CreatedAt: m.CreatedAt), id, now);
        }).ToList();
        var existing = (await _store.GetManyAsync(tenantId, entries.Select(e => e.Id).ToList(), now, cancellationToken)).ToDictionary(e => e.Id, StringComparer.Ordinal);
        var writes = new List<(MemoryEntry Entry, string ContentHash)>(entries.Count);
        var embeddings = new List<PendingEmbedding>();
        foreach (var built in entries)
        {
            var entry = built;
            var hash = ContentHash(entry.Content);
            if (existing.TryGetValue(entry.Id, out var prior))
            {
                entry = entry with { CreatedAt = prior.CreatedAt, LastAccessedAt = prior.LastAccessedAt, AccessCount = prior.AccessCount };
                if (entry == prior with { Metadata = entry.Metadata, Tags = entry.Tags } && SameMaps(entry, prior))
                {
                    continue; // a redelivered turn
                }
            }
            writes.Add((entry, hash));
            if (embed && (prior is null || ContentHash(prior.Content) != hash))
            {
                embeddings.Add(new PendingEmbedding(tenantId, entry.Id, hash, entry.Content));
            }
        }
        await _store.UpsertManyAsync(writes, awaitEmbedding: embed, cancellationToken);
        foreach (var (entry, _) in writes.Where(w => !existing.ContainsKey(w.Entry.Id)).DistinctBy(w => (w.Entry.ContextId, w.Entry.UserId)))
        {
            _compression?.Written(tenantId, entry.ContextId, entry.UserId);
        }
        foreach (var pending in embeddings)
        {
            _pipeline.Enqueue(pending);
            _latent.Observe(tenantId);
        }
    }

    /// <summary>A stable id (letters, digits, '-') from its parts, at most 48 characters.</summary>
    public static string DeterministicId(string prefix, params string[] parts)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\u001f', parts)));
        return prefix + "-" + Convert.ToHexStringLower(hash.AsSpan(0, 16));
    }

    // PostgreSQL keeps microseconds: truncating here makes both stores return the same instants.
    private DateTimeOffset Now()
    {
        var now = _time.GetUtcNow();
        return now.AddTicks(-(now.Ticks % 10));
    }

    internal static string ContentHash(string content) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(content)).AsSpan(0, 16));

    private static bool SameMaps(MemoryEntry a, MemoryEntry b) =>
        a.Metadata.Count == b.Metadata.Count && a.Metadata.All(kv => b.Metadata.TryGetValue(kv.Key, out var v) && v == kv.Value)
        && a.Tags.SequenceEqual(b.Tags, StringComparer.Ordinal);

    private static List<string> MatchedTerms(List<string> queryTerms, string content)
    {
        var contentTerms = new HashSet<string>(TextAnalysis.Terms(content), StringComparer.Ordinal);
        var contentStems = new HashSet<string>(contentTerms.Select(TextAnalysis.Stem), StringComparer.Ordinal);
        return queryTerms.Where(t => contentTerms.Contains(t) || contentStems.Contains(TextAnalysis.Stem(t))).ToList();
    }

    private static string Why(List<string> matched, FusedScore score, string mode)
    {
        var parts = new List<string>();
        if (matched.Count > 0)
        {
            parts.Add($"matched terms: {string.Join(", ", matched)}");
        }
        if (mode != SearchModes.Lexical)
        {
            parts.Add(score.HasSemantic ? $"semantic similarity {score.Semantic:0.000}" : "no semantic match (embedding pending or not in the top candidates)");
        }
        if (mode != SearchModes.Semantic)
        {
            parts.Add(score.HasLexical ? $"lexical score {score.Lexical:0.000}" : "no keyword match");
        }
        return string.Join("; ", parts);
    }

    private MemoryEntry Build(string tenantId, CreateMemoryRequest request, string id, DateTimeOffset now)
    {
        Ids.Require(tenantId, "tenant");
        Ids.Require(id, "id");
        // UTC like every stored instant (PostgreSQL's timestamptz takes no other offset from Npgsql).
        var createdAt = request.CreatedAt?.ToUniversalTime() is { } at ? at.AddTicks(-(at.Ticks % 10)) : now;
        return new MemoryEntry(
            id,
            tenantId,
            OptionalId(request.UserId, "userId"),
            OptionalId(request.ContextId, "contextId"),
            OptionalId(request.TraceId, "traceId"),
            request.Type is null ? MemoryTypes.LongTerm : ValidType(request.Type),
            ValidContent(request.Content),
            ValidMetadata(request.Metadata),
            ValidTags(request.Tags),
            createdAt,
            createdAt,
            0,
            request.TtlSeconds is null ? null : now.AddSeconds(ValidTtl(request.TtlSeconds.Value)));
    }

    private string ValidContent(string? content)
    {
        if (string.IsNullOrWhiteSpace(content))
        {
            throw new ProblemException(400, "invalid-content", "'content' must not be empty.");
        }
        if (content.Length > _options.MaxContentLength)
        {
            throw new ProblemException(413, "content-too-large", $"'content' must be at most {_options.MaxContentLength} characters.");
        }
        return content;
    }

    private static string ValidType(string type) =>
        MemoryTypes.All.Contains(type) ? type
        : throw new ProblemException(400, "invalid-type", $"Unknown memory type '{type}'; expected one of {string.Join(", ", MemoryTypes.All)}.");

    private static int ValidTtl(int seconds) =>
        seconds > 0 ? seconds : throw new ProblemException(400, "invalid-ttl", "'ttlSeconds' must be positive.");

    private static string? OptionalId(string? value, string name) => value is null ? null : Ids.Require(value, name);

    private static Dictionary<string, string> ValidMetadata(IReadOnlyDictionary<string, string>? metadata)
    {
        if (metadata is null)
        {
            return new Dictionary<string, string>(StringComparer.Ordinal);
        }
        if (metadata.Count > MaxMetadataEntries || metadata.Any(kv => string.IsNullOrEmpty(kv.Key) || kv.Key.Length > 128 || kv.Value is null || kv.Value.Length > 4096))
        {
            throw new ProblemException(400, "invalid-metadata", $"'metadata' takes at most {MaxMetadataEntries} entries with keys of 1-128 and values of at most 4096 characters.");
        }
        return new Dictionary<string, string>(metadata, StringComparer.Ordinal);
    }

    private static List<string> ValidTags(IReadOnlyList<string>? tags)
    {
        if (tags is null)
        {
            return [];
        }
        if (tags.Count > MaxTags || tags.Any(t => string.IsNullOrWhiteSpace(t) || t.Length > 64))
        {
            throw new ProblemException(400, "invalid-tags", $"'tags' takes at most {MaxTags} non-empty tags of at most 64 characters.");
        }
        return tags.Distinct(StringComparer.Ordinal).ToList();
    }

    private static MemoryFilter ValidFilter(MemorySearchFilters? filters)
    {
        if (filters is null)
        {
            return MemoryFilter.None;
        }
        if (filters.CreatedAfter is { } after && filters.CreatedBefore is { } before && after >= before)
        {
            throw new ProblemException(400, "invalid-time-range", "'createdAfter' must be earlier than 'createdBefore'.");
        }
        return new MemoryFilter(
            OptionalId(filters.ContextId, "contextId"),
            OptionalId(filters.TraceId, "traceId"),
            OptionalId(filters.UserId, "userId"),
            filters.Types?.Select(ValidType).ToHashSet(StringComparer.Ordinal),
            filters.CreatedAfter,
            filters.CreatedBefore);
    }
}

/// <summary>Records search hits as accesses off the request path.</summary>
public sealed class AccessRecorder(IMemoryStore store, ILogger<AccessRecorder> logger) : BackgroundService
{
    private readonly Channel<(string Tenant, IReadOnlyCollection<string> Ids, DateTimeOffset At)> _queue =
        Channel.CreateBounded<(string, IReadOnlyCollection<string>, DateTimeOffset)>(new BoundedChannelOptions(10_000) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });

    /// <summary>Queues an access; drops the oldest when the queue is full (usage statistics are best effort).</summary>
    public void Record(string tenantId, IReadOnlyCollection<string> ids, DateTimeOffset at) => _queue.Writer.TryWrite((tenantId, ids, at));

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var (tenant, ids, at) in _queue.Reader.ReadAllAsync(stoppingToken))
            {
                try
                {
                    await store.TouchAsync(tenant, ids, at, stoppingToken);
                }
                catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
                {
                    logger.LogWarning(ex, "Recording accesses of {Count} entries failed", ids.Count);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down.
        }
    }
}
