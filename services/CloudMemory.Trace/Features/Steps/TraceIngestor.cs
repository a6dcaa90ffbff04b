using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.Contracts.Traces;
using CloudMemory.Trace.Features.Audit;
using Microsoft.Extensions.Options;

namespace CloudMemory.Trace.Features.Steps;

/// <summary>
/// Validates, audits and stores steps. Concurrent requests are group-committed: writer loops take
/// whatever is queued (up to <see cref="TraceOptions.MaxWriteSteps"/>) and store it in one
/// transaction. A request is answered only when its steps are committed; while the store fails, its
/// steps stay queued and are retried with backoff until <see cref="TraceOptions.AckTimeout"/>, so a
/// database restart delays acknowledgements but loses nothing that was acknowledged.
/// </summary>
public sealed class TraceIngestor : IAsyncDisposable
{
    private readonly ITraceStore _store;
    private readonly IEventPublisher _publisher;
    private readonly TimeProvider _time;
    private readonly ILogger<TraceIngestor> _logger;
    private readonly TraceOptions _options;
    private readonly SensitivityClassifier _classifier;
    private readonly Channel<Pending> _queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = false });
    private readonly CancellationTokenSource _stop = new();
    private readonly Task[] _writers;

    // Concurrent store writes (write loops and callers writing their own batch): TraceOptions.Writers.
    private readonly SemaphoreSlim _slots;

    /// <summary>Starts the writer loops.</summary>
    public TraceIngestor(ITraceStore store, IEventPublisher publisher, IOptions<TraceOptions> options, TimeProvider time, ILogger<TraceIngestor> logger)
    {
        _store = store;
        _publisher = publisher;
        _time = time;
        _logger = logger;
        _options = options.Value;
        _classifier = new SensitivityClassifier(_options.Audit);
        _slots = new SemaphoreSlim(Math.Max(1, _options.Writers));
        _writers = [.. Enumerable.Range(0, Math.Max(1, _options.Writers)).Select(_ => Task.Run(WriteLoopAsync))];
    }

    /// <summary>Validates and stores a batch for <paramref name="tenantId"/>; throws a 4xx problem for bad input (nothing stored) or 503 when the store stayed down.</summary>
    public async Task<IngestStepsResult> IngestAsync(string tenantId, IReadOnlyList<TraceStepInput>? inputs, string? defaultAgentId, CancellationToken cancellationToken = default)
    {
        return await StoreAsync(Prepare(tenantId, inputs, defaultAgentId), cancellationToken);
    }

    /// <summary>Stores prepared steps, then publishes the compliance alerts of the new ones.</summary>
    public async Task<IngestStepsResult> StoreAsync(TenantStep[] steps, CancellationToken cancellationToken = default)
    {
        var inserted = await WriteAsync(steps, cancellationToken);
        var newCount = inserted.Count(i => i);
        TraceTelemetry.StepsStored.Add(newCount);
        await PublishAlertsAsync(steps, inserted);
        return new IngestStepsResult(steps.Length, newCount, steps.Length - newCount);
    }

    /// <summary>Validates and audits a batch without storing it.</summary>
    public TenantStep[] Prepare(string tenantId, IReadOnlyList<TraceStepInput>? inputs, string? defaultAgentId)
    {
        if (inputs is null || inputs.Count == 0)
        {
            throw new ProblemException(400, "missing-steps", "'steps' must hold at least one step.");
        }
        if (inputs.Count > _options.MaxBatchSteps)
        {
            throw new ProblemException(413, "batch-too-large", $"At most {_options.MaxBatchSteps} steps per request ({inputs.Count} sent).");
        }
        var now = _time.GetUtcNow();
        var steps = new TenantStep[inputs.Count];
        for (var i = 0; i < inputs.Count; i++)
        {
            try
            {
                steps[i] = Normalize(tenantId, inputs[i] ?? throw new ProblemException(400, "missing-step", "A step is null."), defaultAgentId, now);
            }
            catch (ProblemException problem)
            {
                throw new ProblemException(problem.Status, problem.Code, $"steps[{i}]: {problem.Message}");
            }
        }
        return steps;
    }

    private TenantStep Normalize(string tenantId, TraceStepInput input, string? defaultAgentId, DateTimeOffset now)
    {
        var traceId = Ids.Require(input.TraceId, "traceId");
        var stepIndex = input.StepIndex ?? throw new ProblemException(400, "missing-stepIndex", "'stepIndex' is required.");
        if (stepIndex < 0)
        {
            throw new ProblemException(400, "invalid-stepIndex", "'stepIndex' must be 0 or more.");
        }
        var stepId = input.StepId is null ? $"s{stepIndex}" : Ids.Require(input.StepId, "stepId");
        var stepType = (input.StepType ?? StepTypes.Custom).ToLowerInvariant();
        if (!StepTypes.All.Contains(stepType))
        {
            throw new ProblemException(400, "invalid-stepType", $"'stepType' must be one of {string.Join(", ", StepTypes.All)}.");
        }
        var agentId = Ids.Require(input.AgentId ?? defaultAgentId ?? "unknown", "agentId");
        var name = input.Name ?? stepType;
        if (name.Length is 0 or > 256 || name.Any(char.IsControl))
        {
            throw new ProblemException(400, "invalid-name", "'name' must be 1-256 characters without control characters.");
        }
        var duration = input.DurationMs ?? 0;
        if (!double.IsFinite(duration) || duration < 0)
        {
            throw new ProblemException(400, "invalid-durationMs", "'durationMs' must be a finite number of 0 or more.");
        }
        if (input.Usage is { } usage && (usage.InputTokens < 0 || usage.OutputTokens < 0))
        {
            throw new ProblemException(400, "invalid-usage", "Token counts must be 0 or more.");
        }
        if (input.Cost is { } cost && (!double.IsFinite(cost) || cost < 0))
        {
            throw new ProblemException(400, "invalid-cost", "'cost' must be a finite number of 0 or more.");
        }
        var tags = input.Tags ?? [];
        if (tags.Count > 32 || tags.Any(t => string.IsNullOrEmpty(t) || t.Length > 128))
        {
            throw new ProblemException(400, "invalid-tags", "At most 32 tags of 1-128 characters.");
        }
        var memoryIds = input.MemoryIds ?? [];
        if (memoryIds.Count > 64)
        {
            throw new ProblemException(400, "invalid-memoryIds", "At most 64 memory ids per step.");
        }
        foreach (var memoryId in memoryIds)
        {
            Ids.Require(memoryId, "memoryId");
        }
        if (input.Error is { } error && (string.IsNullOrEmpty(error.Type) || error.Type.Length > 256 || (error.Message?.Length ?? 0) > 8192))
        {
            throw new ProblemException(400, "invalid-error", "'error.type' must be 1-256 characters and 'error.message' at most 8192.");
        }
        var size = Size(input.Inputs) + Size(input.Outputs) + Size(input.Metadata);
        if (size > _options.MaxStepBytes)
        {
            throw new ProblemException(413, "step-too-large", $"Inputs, outputs and metadata of step '{stepId}' take {size} bytes; the limit is {_options.MaxStepBytes}.");
        }

        var audit = _classifier.Classify(input.Inputs, input.Outputs, input.Error);
        var step = new TraceStep
        {
            TraceId = traceId,
            StepId = stepId,
            StepIndex = stepIndex,
            ContextId = Optional(input.ContextId, "contextId"),
            AgentId = agentId,
            ParentStepId = Optional(input.ParentStepId, "parentStepId"),
            StepType = stepType,
            Name = name,
            Inputs = audit.Inputs,
            Outputs = audit.Outputs,
            StartedAt = input.StartedAt ?? now,
            DurationMs = duration,
            Success = input.Success ?? input.Error is null,
            Error = audit.Error ?? (input.Success == false ? new StepError("error") : null),
            Usage = input.Usage,
            Cost = input.Cost ?? 0,
            Tags = tags,
            RetryOf = Optional(input.RetryOf, "retryOf"),
            SpawnedBy = Optional(input.SpawnedBy, "spawnedBy"),
            DelegatedTo = Optional(input.DelegatedTo, "delegatedTo"),
            MemoryIds = memoryIds,
            Metadata = input.Metadata,
            InputHash = CanonicalHash.Of(input.Inputs),
            OutputHash = CanonicalHash.Of(input.Outputs),
            Audit = audit.Audit,
            RecordedAt = now,
        };
        return new TenantStep(tenantId, step, audit.Flags);
    }

    private static string? Optional(string? id, string name) => id is null ? null : Ids.Require(id, name);

    private static int Size(JsonElement? value) => value is { } element ? element.GetRawText().Length : 0;

    /// <summary>Stores prepared steps through the group commit; returns, per step, whether it was new.</summary>
    public Task<bool[]> WriteAsync(TenantStep[] steps, CancellationToken cancellationToken = default)
    {
        var pending = new Pending(steps, Environment.TickCount64 + (long)_options.AckTimeout.TotalMilliseconds, cancellationToken);
        // Nothing queued and a store writer free: the caller stores its batch itself. Handing every
        // batch to a write loop and waiting to be woken left the cores idle between hand-offs when
        // few writers were sending (8 writers ingested half as fast as 64 in memory). Under load the
        // queue fills and the write loops group-commit it as before.
        return _queue.Reader.Count == 0 && _slots.Wait(0, CancellationToken.None) ? WriteDirectAsync(pending) : Enqueue(pending);
    }

    private Task<bool[]> Enqueue(Pending pending) =>
        _queue.Writer.TryWrite(pending)
            ? pending.Completion.Task
            : throw new ProblemException(503, "trace-service-stopping", "The trace service is shutting down.");

    private async Task<bool[]> WriteDirectAsync(Pending pending)
    {
        try
        {
            TraceTelemetry.BatchSize.Record(pending.Steps.Length);
            return await _store.AppendAsync(pending.Steps, _stop.Token);
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            throw new ProblemException(503, "trace-service-stopping", "The trace service stopped before the steps were stored.");
        }
        catch (Exception ex)
        {
            // The store failed: the batch joins the queue, whose write loops retry it with backoff until its deadline.
            TraceTelemetry.StoreRetries.Add(1);
            _logger.LogWarning(ex, "Storing {Count} trace steps failed; queued for retry", pending.Steps.Length);
        }
        finally
        {
            _slots.Release();
        }
        return await Enqueue(pending);
    }

    private async Task WriteLoopAsync()
    {
        var reader = _queue.Reader;
        var batch = new List<Pending>();
        try
        {
            while (await reader.WaitToReadAsync(_stop.Token))
            {
                await _slots.WaitAsync(_stop.Token);
                try
                {
                    batch.Clear();
                    var count = 0;
                    while (count < _options.MaxWriteSteps && reader.TryRead(out var pending))
                    {
                        batch.Add(pending);
                        count += pending.Steps.Length;
                    }
                    if (batch.Count > 0)
                    {
                        await WriteWithRetryAsync(batch);
                    }
                }
                finally
                {
                    _slots.Release();
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    private async Task WriteWithRetryAsync(List<Pending> batch)
    {
        var delay = TimeSpan.FromMilliseconds(50);
        while (batch.Count > 0)
        {
            TenantStep[] all = batch.Count == 1 ? batch[0].Steps : [.. batch.SelectMany(p => p.Steps)];
            try
            {
                TraceTelemetry.BatchSize.Record(all.Length);
                var inserted = await _store.AppendAsync(all, _stop.Token);
                var offset = 0;
                foreach (var pending in batch)
                {
                    pending.Completion.TrySetResult(inserted[offset..(offset + pending.Steps.Length)]);
                    offset += pending.Steps.Length;
                }
                return;
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                foreach (var pending in batch)
                {
                    pending.Completion.TrySetException(new ProblemException(503, "trace-service-stopping", "The trace service stopped before the steps were stored."));
                }
                return;
            }
            catch (Exception ex)
            {
                TraceTelemetry.StoreRetries.Add(1);
                _logger.LogWarning(ex, "Storing {Count} trace steps failed; retrying in {Delay} ms", all.Length, delay.TotalMilliseconds);
                var now = Environment.TickCount64;
                batch.RemoveAll(pending =>
                {
                    if (pending.RequestAborted.IsCancellationRequested)
                    {
                        pending.Completion.TrySetCanceled(pending.RequestAborted);
                        return true;
                    }
                    if (now >= pending.Deadline)
                    {
                        pending.Completion.TrySetException(new ProblemException(503, "trace-store-unavailable",
                            $"The trace store did not accept the steps within {_options.AckTimeout.TotalSeconds:0.#} s; nothing was acknowledged, retry the request. ({ex.Message})"));
                        return true;
                    }
                    return false;
                });
                if (batch.Count == 0)
                {
                    return;
                }
                try
                {
                    await Task.Delay(delay, _stop.Token);
                }
                catch (OperationCanceledException)
                {
                    continue;
                }
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 1000));
            }
        }
    }

    private async Task PublishAlertsAsync(TenantStep[] steps, bool[] inserted)
    {
        for (var i = 0; i < steps.Length; i++)
        {
            var (tenant, step, _) = steps[i];
            if (!inserted[i] || step.Audit.Status != "violation")
            {
                continue;
            }
            var alert = new TraceComplianceAlert(tenant, step.TraceId, step.StepId, step.StepIndex, step.AgentId, step.ContextId,
                step.Audit.Sensitivity, step.Audit.Kinds, step.Audit.Violations, step.Audit.Status, step.RecordedAt.ToUnixTimeSeconds());
            var eventId = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{tenant}\n{step.TraceId}\n{step.StepId}\ncompliance")))[..32];
            try
            {
                await _publisher.PublishAsync(TraceEvents.ComplianceAlertTopic, TraceEvents.ComplianceAlertType, alert,
                    new PublishOptions(eventId, step.TraceId, tenant));
            }
            catch (Exception ex)
            {
                _logger.LogError(ex, "Publishing the compliance alert of step {StepId} of trace {TraceId} failed", step.StepId, step.TraceId);
            }
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        try
        {
            // Let queued batches finish (bounded by the acknowledgement timeout) before stopping.
            await Task.WhenAll(_writers).WaitAsync(_options.AckTimeout);
        }
        catch (TimeoutException)
        {
        }
        await _stop.CancelAsync();
        _stop.Dispose();
    }

    private sealed record Pending(TenantStep[] Steps, long Deadline, CancellationToken RequestAborted)
    {
        public TaskCompletionSource<bool[]> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
