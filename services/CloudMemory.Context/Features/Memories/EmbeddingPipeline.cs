using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CloudMemory.Context.Features.Memories;

/// <summary>
/// Embeds written entries in the background, in batches, so a writer never waits for an
/// embedding: until its vector lands, an entry is found through the lexical index only.
/// At start it picks up entries left without a vector (e.g. after a crash).
/// </summary>
public sealed class EmbeddingPipeline(
    IMemoryStore store,
    IEmbedder embedder,
    IOptions<EmbeddingOptions> options,
    TimeProvider time,
    ILogger<EmbeddingPipeline> logger,
    IOptions<TurnIndexingOptions>? turnIndexing = null) : BackgroundService
{
    private const int MaxAttempts = 3;

    // Ids of indexed conversation messages (LongTermMemoryService.DeterministicId("msg", ...)).
    private const string TurnPrefix = "msg-";

    private readonly Channel<PendingEmbedding> _queue = Channel.CreateUnbounded<PendingEmbedding>(new UnboundedChannelOptions { SingleReader = true });
    // Queued (tenant, id, content hash): the start-up recovery scan may meet entries a writer
    // has just queued; each version is embedded once.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string, string, string), byte> _queued = new();
    private long _outstanding;

    /// <summary>Whether message vectors include their neighbours (<see cref="EmbeddingOptions.NeighbourWeight"/> &gt; 0).</summary>
    public bool EnrichesNeighbours => options.Value.NeighbourWeight > 0 && options.Value.NeighbourWindow > 0;

    /// <summary>Neighbouring messages per side folded into a message's vector.</summary>
    public int NeighbourWindow => Math.Max(0, options.Value.NeighbourWindow);

    /// <summary>Entries queued or being embedded.</summary>
    public long Outstanding => Interlocked.Read(ref _outstanding);

    /// <summary>Queues an entry; never blocks.</summary>
    public void Enqueue(PendingEmbedding item)
    {
        if (!_queued.TryAdd((item.TenantId, item.Id, item.ContentHash), 0))
        {
            return;
        }
        Interlocked.Increment(ref _outstanding);
        if (!_queue.Writer.TryWrite(item))
        {
            _queued.TryRemove((item.TenantId, item.Id, item.ContentHash), out _);
            Interlocked.Decrement(ref _outstanding);
        }
    }

    /// <summary>Waits until every queued entry has been embedded (tests, benchmarks, shutdown).</summary>
    public async Task WaitForIdleAsync(CancellationToken cancellationToken = default)
    {
        while (Outstanding > 0)
        {
            await Task.Delay(5, cancellationToken);
        }
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            foreach (var pending in await store.ListPendingEmbeddingsAsync(100_000, stoppingToken))
            {
                // Turns are written keyword-only (not pending) unless their tenant's policy is 'semantic'; turns
                // stored before that marker existed are told apart here by the tenant's current policy.
                if (pending.Id.StartsWith(TurnPrefix, StringComparison.Ordinal) && turnIndexing?.Value.PolicyOf(pending.TenantId) is { } policy
                    && policy != TurnIndexingPolicies.Semantic)
                {
                    continue;
                }
                Enqueue(pending);
            }
        }
        catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
        {
            logger.LogWarning(ex, "Could not list entries pending an embedding; they are embedded when next written");
        }

        var batchSize = Math.Max(1, options.Value.BatchSize);
        var batch = new List<PendingEmbedding>(batchSize);
        try
        {
            while (await _queue.Reader.WaitToReadAsync(stoppingToken))
            {
                while (batch.Count < batchSize && _queue.Reader.TryRead(out var item))
                {
                    batch.Add(item);
                }
                await EmbedBatchAsync(batch, stoppingToken);
                foreach (var item in batch)
                {
                    _queued.TryRemove((item.TenantId, item.Id, item.ContentHash), out _);
                }
                Interlocked.Add(ref _outstanding, -batch.Count);
                batch.Clear();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down: unembedded entries are picked up at the next start.
        }
    }

    private async Task EmbedBatchAsync(List<PendingEmbedding> batch, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var updates = await BuildUpdatesAsync(batch, cancellationToken);
                await store.SetEmbeddingsAsync(updates, cancellationToken);
                return;
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested && attempt < MaxAttempts)
            {
                logger.LogWarning(ex, "Embedding a batch of {Count} failed (attempt {Attempt}); retrying", batch.Count, attempt);
                await Task.Delay(TimeSpan.FromSeconds(attempt), time, cancellationToken);
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                // The entries stay lexically searchable and are retried at the next start.
                logger.LogError(ex, "Embedding a batch of {Count} failed; leaving the entries pending", batch.Count);
                return;
            }
        }
    }

    // Embeds the batch; a `message` entry with a context gets its neighbouring messages folded in
    // (conversational context enrichment), and a newly written one queues its neighbours for a
    // refresh, since their neighbourhood now includes it.
    private async Task<List<EmbeddingUpdate>> BuildUpdatesAsync(List<PendingEmbedding> batch, CancellationToken cancellationToken)
    {
        var fresh = batch.Where(b => !b.Refresh).ToList();
        var refresh = batch.Where(b => b.Refresh).ToList();
        var own = new Dictionary<PendingEmbedding, float[]>(ReferenceEqualityComparer.Instance);
        // One call per tenant, inside its scope: the embedder's corpus statistics are per tenant.
        foreach (var tenant in fresh.GroupBy(b => b.TenantId, StringComparer.Ordinal))
        {
            var items = tenant.ToList();
            using var scope = EmbeddingTenant.Use(tenant.Key);
            var vectors = await embedder.EmbedAsync(items.Select(b => b.Content).ToList(), cancellationToken);
            for (var i = 0; i < items.Count; i++)
            {
                own[items[i]] = vectors[i];
            }
        }
        if (refresh.Count > 0)
        {
            var vectors = await embedder.EmbedContextAsync(refresh.Select(b => b.Content).ToList(), cancellationToken);
            for (var i = 0; i < refresh.Count; i++)
            {
                own[refresh[i]] = vectors[i];
            }
        }

        var weight = options.Value.NeighbourWeight;
        var window = Math.Max(0, options.Value.NeighbourWindow);
        var neighbours = new Dictionary<PendingEmbedding, MemoryNeighbours>(ReferenceEqualityComparer.Instance);
        if (weight > 0 && window > 0)
        {
            var now = time.GetUtcNow();
            foreach (var tenant in batch.GroupBy(b => b.TenantId, StringComparer.Ordinal))
            {
                var entries = (await store.GetManyAsync(tenant.Key, tenant.Select(b => b.Id).Distinct(StringComparer.Ordinal).ToList(), now, cancellationToken))
                    .ToDictionary(e => e.Id, StringComparer.Ordinal);
                foreach (var item in tenant)
                {
                    if (entries.TryGetValue(item.Id, out var entry) && entry.Type == MemoryTypes.Message && entry.ContextId is not null
                        && LongTermMemoryService.ContentHash(entry.Content) == item.ContentHash)
                    {
                        neighbours[item] = await store.ListNeighboursAsync(entry, window, window, now, cancellationToken);
                    }
                }
            }
        }

        var texts = neighbours.Values.SelectMany(n => n.Before.Concat(n.After)).Select(e => e.Content).Distinct(StringComparer.Ordinal).ToList();
        var contextVectors = new Dictionary<string, float[]>(StringComparer.Ordinal);
        if (texts.Count > 0)
        {
            var vectors = await embedder.EmbedContextAsync(texts, cancellationToken);
            for (var i = 0; i < texts.Count; i++)
            {
                contextVectors[texts[i]] = vectors[i];
            }
        }

        var updates = new List<EmbeddingUpdate>(batch.Count);
        foreach (var item in batch)
        {
            var vector = own[item];
            if (neighbours.TryGetValue(item, out var n))
            {
                vector = Enrich(vector, n.Before.Select(e => contextVectors[e.Content]).ToList(), n.After.Select(e => contextVectors[e.Content]).ToList(), weight, options.Value.NeighbourWeightAfter ?? weight);
                if (!item.Refresh)
                {
                    foreach (var e in n.Before.Concat(n.After))
                    {
                        Enqueue(new PendingEmbedding(e.TenantId, e.Id, LongTermMemoryService.ContentHash(e.Content), e.Content) { Refresh = true });
                    }
                }
            }
            updates.Add(new EmbeddingUpdate(item.TenantId, item.Id, item.ContentHash, vector));
        }
        return updates;
    }

    /// <summary>
    /// <c>normalize(self + w · Σ_d 0.5^(d−1) · (before_d + after_d))</c>, d = 1 for the nearest
    /// neighbour; the inputs are unit vectors, nearest first.
    /// </summary>
    public static float[] Enrich(float[] self, IReadOnlyList<float[]> before, IReadOnlyList<float[]> after, double weight) =>
        Enrich(self, before, after, weight, weight);

    /// <summary>
    /// <c>normalize(self + Σ_d 0.5^(d−1) · (wb · before_d + wa · after_d))</c>: a reply inherits the
    /// topic of the turn it answers when <paramref name="weightBefore"/> &gt; <paramref name="weightAfter"/>.
    /// </summary>
    public static float[] Enrich(float[] self, IReadOnlyList<float[]> before, IReadOnlyList<float[]> after, double weightBefore, double weightAfter)
    {
        var result = (float[])self.Clone();
        void Add(IReadOnlyList<float[]> side, double weight)
        {
            for (var d = 0; d < side.Count; d++)
            {
                if (side[d].Length == result.Length)
                {
                    System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(side[d], (float)(weight * Math.Pow(0.5, d)), result, result);
                }
            }
        }
        Add(before, weightBefore);
        Add(after, weightAfter);
        var norm = System.Numerics.Tensors.TensorPrimitives.Norm(result);
        if (norm > 0)
        {
            System.Numerics.Tensors.TensorPrimitives.Divide(result, norm, result);
        }
        return result;
    }
}
