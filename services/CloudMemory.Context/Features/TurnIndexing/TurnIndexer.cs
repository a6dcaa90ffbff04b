using System.Diagnostics.Metrics;
using System.Threading.Channels;
using CloudMemory.Context.Features.Memories;
using CloudMemory.Conversations.Log;
using CloudMemory.Conversations.Text;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace CloudMemory.Context.Features.TurnIndexing;

/// <summary>
/// Makes written turns searchable in the background, in batches, by the tenant's
/// <see cref="TurnIndexingOptions">indexing policy</see>: a turn's write never waits for its
/// indexing. The backlog is bounded (<see cref="TurnIndexingOptions.MaxBacklog"/>): when it is full
/// <see cref="EnqueueAsync"/> refuses and the event is redelivered later by the broker; its size is
/// the <c>cloudmemory.turn_index.backlog</c> metric and the <c>turn-indexing</c> entry of <c>/readyz</c>.
/// Conversations with queued turns are marked durably (<see cref="ITurnBacklogMarks"/>), so turns
/// queued when the process stopped are read back from the log and indexed at the next start.
/// </summary>
public sealed class TurnIndexer : BackgroundService
{
    private static readonly Counter<long> Indexed = ContextTelemetry.Meter.CreateCounter<long>("cloudmemory.turn_index.indexed", "{turn}", "turns indexed as long-term memory");
    private static readonly Counter<long> Refused = ContextTelemetry.Meter.CreateCounter<long>("cloudmemory.turn_index.refused", "{turn}", "turns refused because the backlog was full (redelivered later)");
    private const int CatchUpPage = 500;

    private readonly Channel<PendingTurn> _queue = Channel.CreateUnbounded<PendingTurn>(new UnboundedChannelOptions { SingleReader = false }); // one reader, but Count and TryPeek need the general channel
    // Conversations with a durable mark: turns queued (or recently indexed) and the mark's token.
    private readonly Dictionary<(string, string), Marked> _marked = [];
    private readonly Lock _gate = new();
    private readonly TaskCompletionSource _caughtUp = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ILongTermMemory _memory;
    private readonly ITurnBacklogMarks _marks;
    private readonly IConversationLog _log;
    private readonly TurnIndexingOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<TurnIndexer> _logger;
    private long _backlog;
    private long _indexed;
    private long _catchingUp;

    /// <summary>Creates the indexer.</summary>
    public TurnIndexer(ILongTermMemory memory, ITurnBacklogMarks marks, IConversationLog log, IOptions<TurnIndexingOptions> options, TimeProvider time, ILogger<TurnIndexer> logger)
    {
        _memory = memory;
        _marks = marks;
        _log = log;
        _options = options.Value;
        _time = time;
        _logger = logger;
        ContextTelemetry.Meter.CreateObservableGauge("cloudmemory.turn_index.backlog", () => Backlog + CatchingUp, "{turn}", "turns written but not yet indexed (queued, or conversations left marked by an earlier run)");
    }

    /// <summary>Turns queued or being indexed.</summary>
    public long Backlog => Interlocked.Read(ref _backlog);

    /// <summary>Conversations left marked by an earlier run that are still being caught up.</summary>
    public long CatchingUp => Interlocked.Read(ref _catchingUp);

    /// <summary>Turns indexed since the start.</summary>
    public long IndexedCount => Interlocked.Read(ref _indexed);

    /// <summary>The backlog's bound.</summary>
    public int Capacity => Math.Max(1, _options.MaxBacklog);

    /// <summary>The policy of a tenant.</summary>
    public string PolicyOf(string tenantId) => _options.PolicyOf(tenantId);

    /// <summary>
    /// Queues a turn by its tenant's policy: true when it is queued (its conversation durably marked
    /// first, so a restart catches it up) or needs no indexing (policy <c>none</c>); false when the
    /// backlog is full (the caller retries later). Waits at most for the mark of a conversation
    /// not yet in the backlog, never for indexing.
    /// </summary>
    public async Task<bool> EnqueueAsync(PendingTurn turn, CancellationToken cancellationToken = default)
    {
        if (PolicyOf(turn.TenantId) == TurnIndexingPolicies.None)
        {
            return true;
        }
        if (Interlocked.Increment(ref _backlog) > Capacity)
        {
            Interlocked.Decrement(ref _backlog);
            Refused.Add(1);
            return false;
        }
        var key = (turn.TenantId, turn.ConversationId);
        Marked marked;
        lock (_gate)
        {
            if (!_marked.TryGetValue(key, out marked!) || marked.Mark.IsFaulted)
            {
                var token = Guid.NewGuid().ToString("N");
                marked = new Marked(token, _marks.MarkAsync(turn.TenantId, turn.ConversationId, token, CancellationToken.None));
                _marked[key] = marked;
            }
            marked.Pending++;
        }
        try
        {
            await marked.Mark.WaitAsync(cancellationToken);
        }
        catch
        {
            Release(key, marked);
            Interlocked.Decrement(ref _backlog);
            throw; // the broker redelivers
        }
        _queue.Writer.TryWrite(turn);
        return true;
    }

    /// <summary>Waits until the backlog is empty (tests, benchmarks, shutdown).</summary>
    public async Task WaitForIdleAsync(CancellationToken cancellationToken = default)
    {
        await _caughtUp.Task.WaitAsync(cancellationToken);
        while (Backlog > 0 || CatchingUp > 0)
        {
            await Task.Delay(5, cancellationToken);
        }
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        try
        {
            await CatchUpAsync(stoppingToken);
            _caughtUp.TrySetResult();
            var batchSize = Math.Max(1, _options.BatchSize);
            var batch = new List<PendingTurn>(batchSize);
            var lastSweep = _time.GetTimestamp();
            while (true)
            {
                if (!_queue.Reader.TryPeek(out _))
                {
                    // Idle: wait for turns; marks of drained conversations go when the interval is up
                    // (clearing them at once would re-mark a conversation for nearly every turn).
                    var remaining = TimeSpan.FromSeconds(_options.MarkClearSeconds) - _time.GetElapsedTime(lastSweep);
                    var arrived = _queue.Reader.WaitToReadAsync(stoppingToken).AsTask();
                    if (remaining > TimeSpan.Zero)
                    {
                        await Task.WhenAny(arrived, Task.Delay(remaining, _time, stoppingToken));
                    }
                    if (!arrived.IsCompleted)
                    {
                        await SweepMarksAsync(stoppingToken);
                        lastSweep = _time.GetTimestamp();
                        await arrived;
                    }
                    stoppingToken.ThrowIfCancellationRequested();
                }
                // Lazily: a moment for more turns to arrive, so a busy system indexes in batches.
                if (_options.BatchDelayMilliseconds > 0 && _queue.Reader.Count < batchSize)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(_options.BatchDelayMilliseconds), _time, stoppingToken);
                }
                while (batch.Count < batchSize && _queue.Reader.TryRead(out var turn))
                {
                    batch.Add(turn);
                }
                await WriteBatchAsync(batch, stoppingToken);
                lock (_gate)
                {
                    foreach (var turn in batch)
                    {
                        if (_marked.TryGetValue((turn.TenantId, turn.ConversationId), out var marked))
                        {
                            marked.Pending--;
                        }
                    }
                }
                Interlocked.Add(ref _backlog, -batch.Count);
                batch.Clear();
                // Under load, marks of drained conversations are cleared now and then, not per batch:
                // a busy conversation is marked once per interval instead of once per batch.
                if (_time.GetElapsedTime(lastSweep).TotalSeconds >= _options.MarkClearSeconds)
                {
                    await SweepMarksAsync(stoppingToken);
                    lastSweep = _time.GetTimestamp();
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down: queued turns keep their conversations' marks and are caught up at the next start.
        }
    }

    // Conversations marked by an earlier run (stopped or crashed with turns queued): their turns are
    // read back from the log and indexed (existing entries are skipped), then the marks cleared.
    private async Task CatchUpAsync(CancellationToken cancellationToken)
    {
        IReadOnlyList<TurnBacklogMark> marks;
        try
        {
            marks = await _marks.ListAsync(100_000, cancellationToken);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            _logger.LogWarning(ex, "Could not list conversations left with unindexed turns; they are caught up at the next start");
            return;
        }
        if (marks.Count == 0)
        {
            return;
        }
        _logger.LogInformation("Catching up the indexing of {Count} conversations left with unindexed turns", marks.Count);
        Interlocked.Exchange(ref _catchingUp, marks.Count);
        foreach (var mark in marks)
        {
            try
            {
                await CatchUpAsync(mark, cancellationToken);
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                _logger.LogWarning(ex, "Catching up conversation {ConversationId} failed; its mark stays for the next start", mark.ConversationId);
            }
            Interlocked.Decrement(ref _catchingUp);
        }
    }

    private async Task CatchUpAsync(TurnBacklogMark mark, CancellationToken cancellationToken)
    {
        var policy = PolicyOf(mark.TenantId);
        long after = 0;
        while (policy != TurnIndexingPolicies.None)
        {
            var page = await _log.ReadAsync(mark.TenantId, mark.ConversationId, after, CatchUpPage, cancellationToken);
            var turns = page.Where(m => !m.IsCheckpoint)
                .Select(m => new PendingTurn(mark.TenantId, mark.ConversationId, m.MessageId, ConversationText.RenderTurn(m.Query, m.Answer), m.CreatedAt,
                    string.IsNullOrEmpty(m.UserId) ? null : m.UserId)).ToList();
            await WriteBatchAsync(turns, cancellationToken);
            if (page.Count < CatchUpPage)
            {
                break;
            }
            after = page[^1].Sequence;
        }
        await _marks.ClearAsync([mark], cancellationToken);
    }

    private async Task SweepMarksAsync(CancellationToken cancellationToken)
    {
        List<TurnBacklogMark> drained;
        lock (_gate)
        {
            drained = _marked.Where(m => m.Value.Pending == 0 && m.Value.Mark.IsCompletedSuccessfully)
                .Select(m => new TurnBacklogMark(m.Key.Item1, m.Key.Item2, m.Value.Token)).ToList();
            foreach (var mark in drained)
            {
                _marked.Remove((mark.TenantId, mark.ConversationId));
            }
        }
        if (drained.Count == 0)
        {
            return;
        }
        try
        {
            // Only marks that still carry these tokens go: a conversation marked again meanwhile keeps its mark.
            await _marks.ClearAsync(drained, cancellationToken);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            _logger.LogWarning(ex, "Clearing {Count} turn backlog marks failed; their conversations are re-read at the next start", drained.Count);
        }
    }

    private void Release((string, string) key, Marked marked)
    {
        lock (_gate)
        {
            marked.Pending--;
            if (marked.Pending == 0 && _marked.TryGetValue(key, out var current) && ReferenceEquals(current, marked) && !marked.Mark.IsCompletedSuccessfully)
            {
                _marked.Remove(key);
            }
        }
    }

    private async Task WriteBatchAsync(List<PendingTurn> batch, CancellationToken cancellationToken)
    {
        foreach (var tenant in batch.GroupBy(t => t.TenantId, StringComparer.Ordinal))
        {
            var policy = PolicyOf(tenant.Key);
            if (policy == TurnIndexingPolicies.None)
            {
                continue; // the policy changed while they waited
            }
            var messages = tenant.Select(t => new MessageToIndex(t.ConversationId, t.MessageId, t.Text, t.CreatedAt, t.UserId)).ToList();
            try
            {
                await _memory.IndexMessagesAsync(tenant.Key, messages, policy == TurnIndexingPolicies.Semantic, cancellationToken);
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                // One bad turn (or a store hiccup) must not lose the batch: index one by one.
                _logger.LogWarning(ex, "Indexing a batch of {Count} turns of tenant {Tenant} failed; indexing them one by one", messages.Count, tenant.Key);
                foreach (var message in messages)
                {
                    try
                    {
                        await _memory.IndexMessagesAsync(tenant.Key, [message], policy == TurnIndexingPolicies.Semantic, cancellationToken);
                    }
                    catch (Exception single) when (!cancellationToken.IsCancellationRequested)
                    {
                        _logger.LogError(single, "Turn {MessageId} of {ConversationId} could not be indexed", message.MessageId, message.ConversationId);
                    }
                }
            }
            Interlocked.Add(ref _indexed, messages.Count);
            Indexed.Add(messages.Count);
        }
    }

    private sealed class Marked(string token, Task mark)
    {
        public string Token { get; } = token;

        public Task Mark { get; } = mark;

        public int Pending { get; set; }
    }

    /// <summary>The <c>turn-indexing</c> entry of <c>/readyz</c>: degraded (still ready) when the backlog is 90% full.</summary>
    public sealed class HealthCheck(TurnIndexer indexer) : IHealthCheck
    {
        /// <inheritdoc />
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            var backlog = indexer.Backlog;
            var data = new Dictionary<string, object>
            {
                ["backlog"] = backlog, ["capacity"] = indexer.Capacity, ["indexed"] = indexer.IndexedCount, ["catchingUpConversations"] = indexer.CatchingUp,
            };
            var description = $"turn indexing backlog {backlog} of {indexer.Capacity}, {indexer.CatchingUp} conversations catching up";
            return Task.FromResult(backlog >= indexer.Capacity * 0.9
                ? HealthCheckResult.Degraded(description + ": turns are searchable late", data: data)
                : HealthCheckResult.Healthy(description, data));
        }
    }
}

/// <summary>A written turn waiting to be indexed.</summary>
public sealed record PendingTurn(string TenantId, string ConversationId, string MessageId, string Text, DateTimeOffset CreatedAt, string? UserId);
