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
    ILogger<EmbeddingPipeline> logger) : BackgroundService
{
    private const int MaxAttempts = 3;

    private readonly Channel<PendingEmbedding> _queue = Channel.CreateUnbounded<PendingEmbedding>(new UnboundedChannelOptions { SingleReader = true });
    // Queued (tenant, id, content hash): the start-up recovery scan may meet entries a writer
    // has just queued; each version is embedded once.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string, string, string), byte> _queued = new();
    private long _outstanding;

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
                var vectors = await embedder.EmbedAsync(batch.Select(b => b.Content).ToList(), cancellationToken);
                var updates = batch.Select((b, i) => new EmbeddingUpdate(b.TenantId, b.Id, b.ContentHash, vectors[i])).ToList();
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
}
