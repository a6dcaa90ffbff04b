using System.Collections.Concurrent;
using System.Net;
using System.Threading.Channels;
using CloudMemory.Contracts.Traces;

namespace CloudMemory.Client;

/// <summary>How a <see cref="TraceWriter"/> buffers and sends.</summary>
public sealed class TraceWriterOptions
{
    /// <summary>Steps held in memory while the service is slow or down; <see cref="TraceWriter.Record"/> returns false beyond it.</summary>
    public int MaxBuffered { get; set; } = 50_000;

    /// <summary>Most steps per request.</summary>
    public int MaxBatch { get; set; } = 500;

    /// <summary>How long a step may wait for companions before its batch is sent.</summary>
    public TimeSpan FlushInterval { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Longest pause between retries of a failed batch.</summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Called when the service rejects a batch as invalid (4xx): those steps are dropped.</summary>
    public Action<CloudMemoryException, IReadOnlyList<TraceStepInput>>? OnRejected { get; set; }
}

/// <summary>
/// Records agent steps without making the agent wait: <see cref="Record"/> only enqueues; a
/// background loop sends batches to <c>POST /v1/traces/steps</c> and retries a batch (same step ids,
/// so retries are idempotent) until the service acknowledges it as durable. Numbering: use
/// <see cref="NextStepIndex"/> for the <c>stepIndex</c> of each trace.
/// </summary>
public sealed class TraceWriter : IAsyncDisposable
{
    private readonly CloudMemoryClient _client;
    private readonly TraceWriterOptions _options;
    private readonly Channel<TraceStepInput> _queue;
    private readonly ConcurrentDictionary<string, Counter> _indexes = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private long _recorded;
    private long _done;
    private long _sent;
    private long _rejected;

    /// <summary>Starts the background sender.</summary>
    public TraceWriter(CloudMemoryClient client, TraceWriterOptions? options = null)
    {
        _client = client;
        _options = options ?? new TraceWriterOptions();
        _queue = Channel.CreateBounded<TraceStepInput>(new BoundedChannelOptions(_options.MaxBuffered) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        _loop = Task.Run(SendLoopAsync);
    }

    /// <summary>Steps acknowledged by the service.</summary>
    public long Sent => Interlocked.Read(ref _sent);

    /// <summary>Steps the service rejected as invalid.</summary>
    public long Rejected => Interlocked.Read(ref _rejected);

    /// <summary>Queues a step; false when the buffer is full (the step is not recorded).</summary>
    public bool Record(TraceStepInput step)
    {
        ArgumentNullException.ThrowIfNull(step);
        if (!_queue.Writer.TryWrite(step))
        {
            return false;
        }
        Interlocked.Increment(ref _recorded);
        return true;
    }

    /// <summary>The next step index of <paramref name="traceId"/> in this process (0, 1, 2, ...).</summary>
    public int NextStepIndex(string traceId) => Interlocked.Increment(ref _indexes.GetOrAdd(traceId, _ => new Counter()).Value);

    /// <summary>Waits until every step recorded before the call is acknowledged (or rejected).</summary>
    public async Task FlushAsync(CancellationToken cancellationToken = default)
    {
        var target = Interlocked.Read(ref _recorded);
        while (Interlocked.Read(ref _done) < target)
        {
            if (_loop.IsCompleted)
            {
                throw new InvalidOperationException("The trace writer has stopped.");
            }
            await Task.Delay(10, cancellationToken);
        }
    }

    private async Task SendLoopAsync()
    {
        var reader = _queue.Reader;
        var batch = new List<TraceStepInput>(_options.MaxBatch);
        try
        {
            while (await reader.WaitToReadAsync(_stop.Token))
            {
                // Give companions a moment to arrive, unless a full batch is already waiting.
                if (reader.Count < _options.MaxBatch && !reader.Completion.IsCompleted)
                {
                    try
                    {
                        await Task.Delay(_options.FlushInterval, _stop.Token);
                    }
                    catch (OperationCanceledException)
                    {
                    }
                }
                batch.Clear();
                while (batch.Count < _options.MaxBatch && reader.TryRead(out var step))
                {
                    batch.Add(step);
                }
                await SendWithRetryAsync(batch);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    private async Task SendWithRetryAsync(List<TraceStepInput> batch)
    {
        var delay = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            try
            {
                await _client.IngestStepsAsync(batch, _stop.Token);
                Interlocked.Add(ref _sent, batch.Count);
                Interlocked.Add(ref _done, batch.Count);
                return;
            }
            catch (CloudMemoryException ex) when ((int)ex.Status is >= 400 and < 500 && ex.Status is not (HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests))
            {
                Interlocked.Add(ref _rejected, batch.Count);
                Interlocked.Add(ref _done, batch.Count);
                _options.OnRejected?.Invoke(ex, [.. batch]);
                return;
            }
            catch (Exception ex) when (ex is CloudMemoryException or HttpRequestException or TaskCanceledException && !_stop.IsCancellationRequested)
            {
                await Task.Delay(delay, _stop.Token);
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, _options.MaxRetryDelay.TotalMilliseconds));
            }
        }
    }

    /// <summary>Sends what is buffered (waiting while the service is unavailable), then stops.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _loop;
        await _stop.CancelAsync();
        _stop.Dispose();
    }

    private sealed class Counter
    {
        public int Value = -1;
    }
}
