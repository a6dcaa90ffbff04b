using System.Collections.Concurrent;
using System.Text.Json;
using CloudMemory.BuildingBlocks.Workflows;
using CloudMemory.Contracts;
using Dapr.Workflow;
using Dapr.Workflow.Abstractions;
using Dapr.Workflow.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using WorkflowRuntimeStatus = CloudMemory.BuildingBlocks.Workflows.WorkflowRuntimeStatus;
using WorkflowState = CloudMemory.BuildingBlocks.Workflows.WorkflowState;

namespace CloudMemory.BuildingBlocks.Embedded;

/// <summary>
/// Runs the same Dapr.Workflow classes the Dapr worker runs, in process: each instance runs in the
/// background with a <see cref="WorkflowContext"/> that calls activities directly (inputs and
/// results round-trip through JSON, as on the sidecar), retries them with the SDK's own
/// <see cref="RetryInterceptor{T}"/> on timers of the injected clock, and never replays
/// (<c>IsReplaying</c> is always false). A failing activity surfaces in the workflow as
/// <see cref="WorkflowTaskFailedException"/>, as on Dapr; a failing workflow fails the instance,
/// never the caller. An instance id runs at most once. Instances do not survive a process restart
/// (the Dapr runtime's do).
/// </summary>
public sealed class EmbeddedWorkflowRunner : IWorkflowClient, IHostedService, IDisposable
{
    private readonly ConcurrentDictionary<string, Instance> _instances = new(StringComparer.Ordinal);
    private readonly Dictionary<string, WorkflowRegistration> _workflows;
    private readonly Dictionary<string, WorkflowRegistration> _activities;
    private readonly IServiceProvider _services;
    private readonly TimeProvider _time;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger<EmbeddedWorkflowRunner> _logger;
    private readonly CancellationTokenSource _stopping = new();
    private volatile bool _disposed;
    private long _schedules;

    /// <summary>Creates the runner.</summary>
    public EmbeddedWorkflowRunner(IEnumerable<WorkflowRegistration> registrations, IServiceProvider services, TimeProvider time, ILoggerFactory loggers)
    {
        var all = registrations.ToList();
        // Dapr's worker matches names case-insensitively; so does this runner.
        _workflows = all.Where(r => !r.IsActivity).ToDictionary(r => r.Name, StringComparer.OrdinalIgnoreCase);
        _activities = all.Where(r => r.IsActivity).ToDictionary(r => r.Name, StringComparer.OrdinalIgnoreCase);
        _services = services;
        _time = time;
        _loggers = loggers;
        _logger = loggers.CreateLogger<EmbeddedWorkflowRunner>();
    }

    /// <summary>Instances that have not finished.</summary>
    public int RunningCount => _instances.Values.Count(i => i.Status is WorkflowRuntimeStatus.Pending or WorkflowRuntimeStatus.Running);

    /// <summary>How long a finished instance is remembered (and its id refused a second run).</summary>
    public TimeSpan FinishedRetention { get; init; } = TimeSpan.FromMinutes(10);

    /// <inheritdoc />
    public Task<string> ScheduleNewWorkflowAsync(string name, string instanceId, object? input, CancellationToken cancellationToken = default)
    {
        if (!_workflows.TryGetValue(name, out var registration))
        {
            throw new InvalidOperationException($"workflow '{name}' is not registered");
        }
        var now = _time.GetUtcNow();
        ForgetFinished(now);
        var candidate = new Instance(instanceId, registration.Name, now);
        var instance = _instances.GetOrAdd(instanceId, candidate);
        if (ReferenceEquals(instance, candidate))
        {
            // Serialize the input now, as Dapr does: the workflow sees a snapshot, not a live object.
            var json = JsonSerializer.SerializeToUtf8Bytes(input, ContractsJson.Options);
            instance.Run = Task.Run(() => RunAsync(instance, registration, json), CancellationToken.None);
        }
        return Task.FromResult(instanceId);
    }

    /// <inheritdoc />
    public Task<WorkflowState?> GetWorkflowStateAsync(string instanceId, CancellationToken cancellationToken = default) =>
        Task.FromResult(_instances.TryGetValue(instanceId, out var i) ? i.ToState() : null);

    /// <inheritdoc />
    public async Task<WorkflowState> WaitForWorkflowCompletionAsync(string instanceId, CancellationToken cancellationToken = default)
    {
        if (!_instances.TryGetValue(instanceId, out var instance))
        {
            throw new KeyNotFoundException($"workflow instance '{instanceId}' does not exist");
        }
        await instance.Completion.Task.WaitAsync(cancellationToken);
        return instance.ToState();
    }

    /// <summary>Waits for every running instance (tests and graceful shutdown).</summary>
    public Task WhenIdleAsync() => Task.WhenAll(_instances.Values.Select(i => i.Completion.Task));

    // Finished instances are dropped after the retention so memory stays bounded.
    private void ForgetFinished(DateTimeOffset now)
    {
        if (Interlocked.Increment(ref _schedules) % 256 != 0)
        {
            return;
        }
        foreach (var (id, instance) in _instances)
        {
            if (instance.Completion.Task.IsCompleted && now - instance.LastUpdatedAt > FinishedRetention)
            {
                _instances.TryRemove(new KeyValuePair<string, Instance>(id, instance));
            }
        }
    }

    private async Task RunAsync(Instance instance, WorkflowRegistration registration, byte[] input)
    {
        instance.Status = WorkflowRuntimeStatus.Running;
        instance.LastUpdatedAt = _time.GetUtcNow();
        try
        {
            using var scope = _services.CreateScope();
            var workflow = (IWorkflow)scope.ServiceProvider.GetRequiredService(registration.ImplementationType);
            var typedInput = JsonSerializer.Deserialize(input, workflow.InputType, ContractsJson.Options);
            var output = await workflow.RunAsync(new Context(this, instance, scope.ServiceProvider), typedInput);
            instance.Output = JsonSerializer.Serialize(output, workflow.OutputType, ContractsJson.Options);
            instance.Status = WorkflowRuntimeStatus.Completed;
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "Workflow {Workflow} {InstanceId} failed", instance.Name, instance.Id);
            instance.Failure = ex.Message;
            instance.Status = _stopping.IsCancellationRequested ? WorkflowRuntimeStatus.Terminated : WorkflowRuntimeStatus.Failed;
        }
        instance.LastUpdatedAt = _time.GetUtcNow();
        instance.Completion.TrySetResult();
    }

    // One attempt: what the sidecar does for a ScheduleTask action. Failures come back as
    // WorkflowTaskFailedException, which is what RetryInterceptor retries and workflows catch.
    private async Task<TResult> CallActivityOnceAsync<TResult>(Instance instance, IServiceProvider services, int taskId, string name, byte[] input)
    {
        if (!_activities.TryGetValue(name, out var registration))
        {
            throw new WorkflowTaskFailedException($"activity '{name}' is not registered",
                new WorkflowTaskFailureDetails(typeof(InvalidOperationException).FullName!, $"activity '{name}' is not registered"));
        }
        try
        {
            var activity = (IWorkflowActivity)services.GetRequiredService(registration.ImplementationType);
            var typedInput = JsonSerializer.Deserialize(input, activity.InputType, ContractsJson.Options);
            var result = await activity.RunAsync(new ActivityContext(registration.Name, instance.Id, taskId), typedInput);
            // Round-trip the result through JSON, as the durable runtime does.
            return JsonSerializer.Deserialize<TResult>(JsonSerializer.SerializeToUtf8Bytes(result, activity.OutputType, ContractsJson.Options), ContractsJson.Options)!;
        }
        catch (Exception ex)
        {
            _logger.LogWarning(ex, "Activity {Activity} of {InstanceId} failed", name, instance.Id);
            throw new WorkflowTaskFailedException($"Task '{name}' (#{taskId}) failed with an unhandled exception: {ex.Message}",
                new WorkflowTaskFailureDetails(ex.GetType().FullName ?? ex.GetType().Name, ex.Message, ex.StackTrace));
        }
    }

    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (!_disposed)
        {
            await _stopping.CancelAsync();
        }
        await WhenIdleAsync().WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _disposed = true;
        _stopping.Dispose();
    }

    private sealed class Instance(string id, string name, DateTimeOffset createdAt)
    {
        public string Id { get; } = id;
        public string Name { get; } = name;
        public DateTimeOffset CreatedAt { get; } = createdAt;
        public DateTimeOffset LastUpdatedAt { get; set; } = createdAt;
        public WorkflowRuntimeStatus Status { get; set; } = WorkflowRuntimeStatus.Pending;
        public string? Output { get; set; }
        public string? Failure { get; set; }
        public Task? Run { get; set; }
        public TaskCompletionSource Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public WorkflowState ToState() => new(Id, Name, Status, CreatedAt, LastUpdatedAt, Output, Failure);
    }

    private sealed class ActivityContext(string name, string instanceId, int taskId) : WorkflowActivityContext
    {
        public override TaskIdentifier Identifier { get; } = new(name);

        public override string TaskExecutionKey { get; } = $"{instanceId}:{taskId}";

        public override int ScheduledEventId => taskId;

        public override string InstanceId => instanceId;
    }

    private sealed class Context(EmbeddedWorkflowRunner runner, Instance instance, IServiceProvider services) : WorkflowContext
    {
        private int _nextTaskId;

        public override string Name => instance.Name;

        public override string InstanceId => instance.Id;

        public override DateTime CurrentUtcDateTime => runner._time.GetUtcNow().UtcDateTime;

        // Nothing is ever replayed in process: the workflow runs once, top to bottom.
        public override bool IsReplaying => false;

        // A fresh run always takes the newest code path.
        public override bool IsPatched(string patchName) => true;

        public override async Task<T> CallActivityAsync<T>(string name, object? input = null, WorkflowTaskOptions? options = null)
        {
            var taskId = Interlocked.Increment(ref _nextTaskId);
            var json = JsonSerializer.SerializeToUtf8Bytes(input, ContractsJson.Options);
            if (options?.RetryPolicy is not { } policy)
            {
                return await runner.CallActivityOnceAsync<T>(instance, services, taskId, name, json);
            }
            return (await new RetryInterceptor<T>(this, policy,
                () => runner.CallActivityOnceAsync<T>(instance, services, taskId, name, json),
                delay => CreateTimer(delay, CancellationToken.None)).Invoke())!;
        }

        public override async Task CreateTimer(DateTime fireAt, CancellationToken cancellationToken)
        {
            var delay = fireAt - CurrentUtcDateTime;
            if (delay > TimeSpan.Zero)
            {
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(runner._stopping.Token, cancellationToken);
                await Task.Delay(delay, runner._time, linked.Token);
            }
        }

        public override async Task<TResult> CallChildWorkflowAsync<TResult>(string workflowName, object? input = null, ChildWorkflowTaskOptions? options = null)
        {
            var childId = options?.InstanceId ?? $"{instance.Id}:child:{Interlocked.Increment(ref _nextTaskId)}";
            await runner.ScheduleNewWorkflowAsync(workflowName, childId, input);
            var state = await runner.WaitForWorkflowCompletionAsync(childId);
            if (state.RuntimeStatus != WorkflowRuntimeStatus.Completed)
            {
                throw new WorkflowTaskFailedException($"child workflow '{workflowName}' ({childId}) {state.RuntimeStatus}: {state.FailureMessage}",
                    new WorkflowTaskFailureDetails(nameof(WorkflowTaskFailedException), state.FailureMessage ?? state.RuntimeStatus.ToString()));
            }
            return JsonSerializer.Deserialize<TResult>(state.SerializedOutput ?? "null", ContractsJson.Options)!;
        }

        public override Task<T> WaitForExternalEventAsync<T>(string eventName, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException("External events are not supported by the Embedded workflow runner; no CloudMemory workflow waits for one.");

        public override void SendEvent(string instanceId, string eventName, object payload) =>
            throw new NotSupportedException("External events are not supported by the Embedded workflow runner; no CloudMemory workflow sends one.");

        public override void ContinueAsNew(object? newInput = null, bool preserveUnprocessedEvents = true) =>
            throw new NotSupportedException("ContinueAsNew is not supported by the Embedded workflow runner; no CloudMemory workflow is eternal.");

        public override void SetCustomStatus(object? customStatus)
        {
            // Not surfaced by IWorkflowClient; accepted so workflows may call it in either runtime.
        }

        public override Guid NewGuid() => Guid.NewGuid(); // never replayed, so any fresh id is stable

        public override PropagatedHistory? GetPropagatedHistory() => null;

        public override ILogger CreateReplaySafeLogger(string categoryName) => runner._loggers.CreateLogger(categoryName);

        public override ILogger CreateReplaySafeLogger(Type type) => runner._loggers.CreateLogger(type);

        public override ILogger CreateReplaySafeLogger<T>() => runner._loggers.CreateLogger<T>();
    }
}
