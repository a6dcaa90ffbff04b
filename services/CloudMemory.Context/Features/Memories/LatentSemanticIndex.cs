using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CloudMemory.Context.Features.Memories;

/// <summary>
/// One <see cref="LatentSemanticSpace"/> per tenant, learned in the background from the tenant's
/// stored texts (the <see cref="EmbeddingOptions.LatentMaxTexts"/> most recent, read through
/// <see cref="IMemoryStore.ListAsync"/>, so both stores and restarts behave alike) and relearned when
/// the tenant's written texts grew by <see cref="EmbeddingOptions.LatentRefreshFraction"/>. It only
/// re-weights query vectors (<see cref="Expand"/>): stored vectors stay the hashing embedder's, so a
/// retrained space never requires re-embedding. Active only with the local hashing embedder and
/// <see cref="EmbeddingOptions.LatentWeight"/> &gt; 0.
/// </summary>
public sealed class LatentSemanticIndex(IMemoryStore store, IEmbedder embedder, IOptions<EmbeddingOptions> options, TimeProvider time, ILogger<LatentSemanticIndex> logger)
{
    private const int Seed = 17;

    private readonly ConcurrentDictionary<string, TenantState> _tenants = new(StringComparer.Ordinal);

    /// <summary>Whether query vectors are expanded at all.</summary>
    public bool Enabled => options.Value.LatentWeight > 0 && embedder is LocalHashingEmbedder;

    /// <summary>The tenant's current space, or null (not learned yet, too little text, or disabled).</summary>
    public LatentSemanticSpace? SpaceOf(string tenantId) => _tenants.TryGetValue(tenantId, out var s) ? Volatile.Read(ref s.Space) : null;

    /// <summary>Counts a newly written text of the tenant; starts a background training when due. Never blocks.</summary>
    public void Observe(string tenantId)
    {
        if (!Enabled)
        {
            return;
        }
        var state = _tenants.GetOrAdd(tenantId, _ => new TenantState());
        Interlocked.Increment(ref state.Since);
        MaybeTrain(tenantId, state, force: false);
    }

    /// <summary>The query vector with the tenant's latent space added (unchanged when there is none).</summary>
    public float[] Expand(string tenantId, float[] query)
    {
        if (!Enabled)
        {
            return query;
        }
        var state = _tenants.GetOrAdd(tenantId, _ => new TenantState());
        MaybeTrain(tenantId, state, force: false);
        var space = Volatile.Read(ref state.Space);
        return space is null ? query : space.Expand(query, options.Value.LatentWeight);
    }

    /// <summary>Learns the tenant's space from what is stored now and waits for it (tests, benchmarks).</summary>
    public async Task TrainAsync(string tenantId, CancellationToken cancellationToken = default)
    {
        if (!Enabled)
        {
            return;
        }
        var state = _tenants.GetOrAdd(tenantId, _ => new TenantState());
        Task? running;
        lock (state)
        {
            running = state.Training;
        }
        if (running is not null)
        {
            await running.WaitAsync(cancellationToken);
        }
        MaybeTrain(tenantId, state, force: true);
        lock (state)
        {
            running = state.Training;
        }
        if (running is not null)
        {
            await running.WaitAsync(cancellationToken);
        }
    }

    private void MaybeTrain(string tenantId, TenantState state, bool force)
    {
        var o = options.Value;
        lock (state)
        {
            if (state.Training is { IsCompleted: false })
            {
                return;
            }
            var since = Interlocked.Read(ref state.Since);
            var due = force
                || state.Texts < 0
                || (state.Basis < o.LatentMinTexts && state.Basis + since >= o.LatentMinTexts)
                || (state.Basis >= o.LatentMinTexts && since >= Math.Max(1, o.LatentRefreshFraction * state.Basis));
            if (!due)
            {
                return;
            }
            Interlocked.Exchange(ref state.Since, 0);
            // Growth is measured against every text seen, not the (capped) training sample, so a
            // large tenant retrains geometrically rarely.
            state.Basis = Math.Max(0, state.Basis) + since;
            state.Texts = Math.Max(0, state.Texts);
            state.Training = Task.Run(() => TrainCoreAsync(tenantId, state));
        }
    }

    private async Task TrainCoreAsync(string tenantId, TenantState state)
    {
        var o = options.Value;
        try
        {
            var entries = await store.ListAsync(tenantId, new MemoryFilter(), Math.Max(1, o.LatentMaxTexts), time.GetUtcNow());
            // Newest first from the store: one sequence per context, oldest first (a fixed order), so
            // neighbouring messages of a conversation share contexts; entries without one stand alone.
            var sequences = entries
                .OrderBy(e => e.CreatedAt).ThenBy(e => e.Id, StringComparer.Ordinal)
                .GroupBy(e => e.ContextId ?? "\u0000" + e.Id, StringComparer.Ordinal)
                .OrderBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => (IReadOnlyList<string>)g.Select(e => e.Content).ToList())
                .ToList();
            var space = entries.Count >= o.LatentMinTexts
                ? LatentSemanticSpace.Train(sequences, embedder.Dimensions, Math.Max(2, o.LatentDimensions), Seed, 10_000, Math.Max(0, o.LatentTextWindow))
                : null;
            lock (state)
            {
                state.Texts = entries.Count;
                state.Basis = Math.Max(state.Basis, entries.Count);
                if (space is not null)
                {
                    Volatile.Write(ref state.Space, space);
                }
            }
        }
        catch (Exception ex)
        {
            logger.LogWarning(ex, "Learning the latent space of tenant {Tenant} failed; queries use the hashing vectors alone", tenantId);
        }
    }

    private sealed class TenantState
    {
        public LatentSemanticSpace? Space;
        public long Since;
        public long Texts = -1;
        public long Basis;
        public Task? Training;
    }
}
