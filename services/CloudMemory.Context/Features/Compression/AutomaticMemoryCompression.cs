using System.Collections.Concurrent;
using System.Threading.Channels;
using CloudMemory.Conversations.Compression;
using Microsoft.Extensions.Options;

namespace CloudMemory.Context.Features.Compression;

/// <summary>
/// The scopes (a context, a user) that received long-term memory writes since the last pass.
/// Writes only note their scope here (a set insert: never blocks, never waits for compression);
/// beyond <see cref="MaxPending"/> distinct scopes further notes are counted and skipped until the
/// next pass, so memory stays bounded.
/// </summary>
public sealed class MemoryCompressionQueue
{
    /// <summary>Most distinct scopes waiting for a pass.</summary>
    public const int MaxPending = 10_000;

    private readonly ConcurrentDictionary<Scope, byte> _pending = new();
    private readonly Channel<bool> _signal = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });

    /// <summary>Notes a write to a context and/or a user's memory.</summary>
    public void Written(string tenantId, string? contextId, string? userId)
    {
        if (!string.IsNullOrEmpty(contextId))
        {
            Add(new Scope(tenantId, ContextId: contextId, UserId: null));
        }
        if (!string.IsNullOrEmpty(userId))
        {
            Add(new Scope(tenantId, ContextId: null, UserId: userId));
        }
    }

    /// <summary>Scopes waiting for a pass.</summary>
    public int Pending => _pending.Count;

    internal async Task WaitAsync(CancellationToken cancellationToken) => await _signal.Reader.ReadAsync(cancellationToken);

    internal List<Scope> Take(int max)
    {
        var taken = new List<Scope>(Math.Min(max, _pending.Count));
        foreach (var scope in _pending.Keys)
        {
            if (taken.Count == max)
            {
                break;
            }
            if (_pending.TryRemove(scope, out _))
            {
                taken.Add(scope);
            }
        }
        if (!_pending.IsEmpty)
        {
            Signal(); // more than one pass' worth: come back
        }
        return taken;
    }

    private void Add(Scope scope)
    {
        if (_pending.Count >= MaxPending && !_pending.ContainsKey(scope))
        {
            ContextTelemetry.MemoryCompressionSkipped.Add(1);
            return;
        }
        if (_pending.TryAdd(scope, 0))
        {
            Signal();
        }
    }

    private void Signal() => _signal.Writer.TryWrite(true); // one signal pending at most

    /// <summary>One context's or one user's long-term memory.</summary>
    internal sealed record Scope(string TenantId, string? ContextId, string? UserId);
}

/// <summary>
/// Memory compression beyond the threshold without anyone asking (issue 13): a background pass,
/// at most every <see cref="CompressionOptions.AutoCompressInterval"/>, checks the scopes written
/// since the last one (at most <see cref="ScopesPerPass"/> per pass) and runs the same
/// <see cref="MemoryCompressor"/> as <c>POST /v1/memories/compress</c> on each, so the result is the
/// same: summaries linked to their sources, sources retained and expandable, safety facts never
/// merged. Off with <c>CloudMemory:Compression:AutoCompressMemory=false</c>. Observable through the
/// <c>cloudmemory.memories.compressed</c> / <c>cloudmemory.memory_compression.passes</c> counters and logs.
/// </summary>
public sealed class AutomaticMemoryCompression(MemoryCompressionQueue queue, MemoryCompressor compressor, IOptions<CompressionOptions> options,
    ILogger<AutomaticMemoryCompression> logger) : BackgroundService
{
    /// <summary>Most scopes checked in one pass; the rest wait for the next.</summary>
    public const int ScopesPerPass = 100;

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.AutoCompressMemory)
        {
            return;
        }
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await queue.WaitAsync(stoppingToken);
                // Writes arriving in a burst are checked once, after the interval.
                await Task.Delay(options.Value.AutoCompressInterval, stoppingToken);
                foreach (var scope in queue.Take(ScopesPerPass))
                {
                    await CompressAsync(scope, stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
        }
    }

    private async Task CompressAsync(MemoryCompressionQueue.Scope scope, CancellationToken cancellationToken)
    {
        try
        {
            var result = await compressor.CompressAsync(scope.TenantId, new CompressMemoriesRequest(scope.UserId, scope.ContextId), cancellationToken);
            ContextTelemetry.MemoryCompressionPasses.Add(1, new KeyValuePair<string, object?>("compressed", result.Compressed));
            if (result.Compressed)
            {
                logger.LogInformation("Compressed {Merged} of {Entries} memory entries of {Scope} {Id} (tenant {TenantId}) into {Summaries} summaries",
                    result.Summaries.Sum(s => s.Sources.Count), result.Entries, scope.ContextId is null ? "user" : "context", scope.ContextId ?? scope.UserId,
                    scope.TenantId, result.Summaries.Count);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The next write to the scope brings it back; a failure never reaches the writer.
            ContextTelemetry.MemoryCompressionPasses.Add(1, new KeyValuePair<string, object?>("failed", true));
            logger.LogWarning(ex, "Automatic memory compression of {Scope} {Id} (tenant {TenantId}) failed", scope.ContextId is null ? "user" : "context",
                scope.ContextId ?? scope.UserId, scope.TenantId);
        }
    }
}
