using System.Collections.Concurrent;
using System.Text.Json;
using CloudMemory.BuildingBlocks.Workflows;
using CloudMemory.Contracts;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CloudMemory.BuildingBlocks.Embedded;

/// <summary>
/// In-process workflow runner: each instance runs in the background; activities are retried per
/// their policy with delays on the injected clock; a failing activity fails the instance, never
/// the caller. An instance id runs at most once. Instances do not survive a process restart
/// (the Dapr runtime's workflows do).
/// </summary>
public sealed class EmbeddedWorkflowRunner : IWorkflowClient, IHostedService, IDisposable
{
    private readonly ConcurrentDictionary<string, Instance> _instances = new(StringComparer.Ordinal);
    private readonly Dictionary<string, WorkflowRegistration> _registrations;
    private readonly IServiceProvider _services;
    private readonly TimeProvider _time;
    private readonly ILogger<EmbeddedWorkflowRunner> _logger;
    private readonly CancellationTokenSource _stopping = new();
    private volatile bool _disposed;
    private long _schedules;

    /// <summary>Creates the runner.</summary>
    public EmbeddedWorkflowRunner(IEnumerable<WorkflowRegistration> registrations, IServiceProvider services, TimeProvider time, ILogger<EmbeddedWorkflowRunner> logger)
    {
        _registrations = registrations.ToDictionary(r => r.Name, StringComparer.Ordinal);
        _services = services;
        _time = time;
        _logger = logger;
    }

    /// <summary>Instances that have not finished.</summary>
    public int RunningCount => _instances.Values.Count(i => i.Status is WorkflowRuntimeStatus.Pending or WorkflowRuntimeStatus.Running);

    /// <inheritdoc />
    public Task<string> ScheduleNewWorkflowAsync(string name, string instanceId, object? input, CancellationToken cancellationToken = default)
    {
        if (!_registrations.TryGetValue(name, out var registration) || registration.IsActivity)
        {
            throw new InvalidOperationException($"workflow '{name}' is not registered");
        }
        var now = _time.GetUtcNow();
        ForgetFinished(now);
        var candidate = new Instance(instanceId, name, now);
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

    /// <summary>How long a finished instance is remembered (and its id refused a second run).</summary>
    public TimeSpan FinishedRetention { get; init; } = TimeSpan.FromMinutes(10);

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

    /// <summary>Waits for every running instance (tests and graceful shutdown).</summary>
    public Task WhenIdleAsync() => Task.WhenAll(_instances.Values.Select(i => i.Completion.Task));

    private async Task RunAsync(Instance instance, WorkflowRegistration registration, byte[] input)
    {
        instance.Status = WorkflowRuntimeStatus.Running;
        instance.LastUpdatedAt = _time.GetUtcNow();
        try
        {
            using var scope = _services.CreateScope();
            var workflow = (IWorkflow)scope.ServiceProvider.GetRequiredService(registration.ImplementationType);
            var typedInput = JsonSerializer.Deserialize(input, workflow.InputType, ContractsJson.Options);
            var context = new Context(this, instance, scope.ServiceProvider);
            var output = await workflow.RunAsync(context, typedInput);
            instance.Output = JsonSerializer.Serialize(output, ContractsJson.Options);
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

    private async Task<TResult> CallActivityAsync<TResult>(Instance instance, IServiceProvider services, string name, object? input, WorkflowTaskOptions? options)
    {
        if (!_registrations.TryGetValue(name, out var registration) || !registration.IsActivity)
        {
            throw new InvalidOperationException($"activity '{name}' is not registered");
        }
        var json = JsonSerializer.SerializeToUtf8Bytes(input, ContractsJson.Options);
        var policy = options?.RetryPolicy;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var activity = (IWorkflowActivity)services.GetRequiredService(registration.ImplementationType);
                var typedInput = JsonSerializer.Deserialize(json, activity.InputType, ContractsJson.Options);
                var result = await activity.RunAsync(new WorkflowActivityContext(instance.Id, name, attempt, _stopping.Token), typedInput);
                // Round-trip the result through JSON, as a durable runtime would.
                return JsonSerializer.Deserialize<TResult>(JsonSerializer.SerializeToUtf8Bytes(result, ContractsJson.Options), ContractsJson.Options)!;
            }
            catch (Exception ex) when (policy is not null && attempt < policy.MaxNumberOfAttempts && !_stopping.IsCancellationRequested)
            {
                var delay = policy.DelayBefore(attempt + 1);
                _logger.LogWarning(ex, "Activity {Activity} of {InstanceId} failed (attempt {Attempt}); retrying in {Delay}", name, instance.Id, attempt, delay);
                await Task.Delay(delay, _time, _stopping.Token);
            }
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

    private sealed class Context(EmbeddedWorkflowRunner runner, Instance instance, IServiceProvider services) : WorkflowContext
    {
        public override string InstanceId => instance.Id;

        public override string Name => instance.Name;

        public override DateTimeOffset CurrentUtcDateTime => runner._time.GetUtcNow();

        public override Task<TResult> CallActivityAsync<TResult>(string name, object? input = null, WorkflowTaskOptions? options = null) =>
            runner.CallActivityAsync<TResult>(instance, services, name, input, options);
    }
}
