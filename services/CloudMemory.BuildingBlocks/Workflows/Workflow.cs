using System.Text.Json.Serialization;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.BuildingBlocks.Workflows;

/// <summary>A durable workflow, shaped like Dapr.Workflow's <c>Workflow&lt;TInput, TOutput&gt;</c>.</summary>
public abstract class Workflow<TInput, TOutput> : IWorkflow
{
    /// <summary>Orchestrates activities; must be deterministic.</summary>
    public abstract Task<TOutput> RunAsync(WorkflowContext context, TInput input);

    Type IWorkflow.InputType => typeof(TInput);

    async Task<object?> IWorkflow.RunAsync(WorkflowContext context, object? input) => await RunAsync(context, (TInput)input!);
}

/// <summary>A workflow step with side effects, shaped like Dapr.Workflow's <c>WorkflowActivity</c>.</summary>
public abstract class WorkflowActivity<TInput, TOutput> : IWorkflowActivity
{
    /// <summary>Runs the step.</summary>
    public abstract Task<TOutput> RunAsync(WorkflowActivityContext context, TInput input);

    Type IWorkflowActivity.InputType => typeof(TInput);

    async Task<object?> IWorkflowActivity.RunAsync(WorkflowActivityContext context, object? input) => await RunAsync(context, (TInput)input!);
}

/// <summary>Untyped view of a workflow, for runners.</summary>
public interface IWorkflow
{
    /// <summary>The input type.</summary>
    Type InputType { get; }

    /// <summary>Runs with an input of <see cref="InputType"/>.</summary>
    Task<object?> RunAsync(WorkflowContext context, object? input);
}

/// <summary>Untyped view of an activity, for runners.</summary>
public interface IWorkflowActivity
{
    /// <summary>The input type.</summary>
    Type InputType { get; }

    /// <summary>Runs with an input of <see cref="InputType"/>.</summary>
    Task<object?> RunAsync(WorkflowActivityContext context, object? input);
}

/// <summary>What a workflow sees of its runtime.</summary>
public abstract class WorkflowContext
{
    /// <summary>The instance id.</summary>
    public abstract string InstanceId { get; }

    /// <summary>The workflow name.</summary>
    public abstract string Name { get; }

    /// <summary>Deterministic "now".</summary>
    public abstract DateTimeOffset CurrentUtcDateTime { get; }

    /// <summary>Schedules an activity (by its class name, use nameof) and waits for its result.</summary>
    public abstract Task<TResult> CallActivityAsync<TResult>(string name, object? input = null, WorkflowTaskOptions? options = null);
}

/// <summary>What an activity sees of its runtime.</summary>
/// <param name="InstanceId">The workflow instance.</param>
/// <param name="Name">The activity name.</param>
/// <param name="Attempt">1 for the first try.</param>
public sealed record WorkflowActivityContext(string InstanceId, string Name, int Attempt, CancellationToken CancellationToken);

/// <summary>Options of one activity call.</summary>
public sealed record WorkflowTaskOptions(WorkflowRetryPolicy? RetryPolicy = null);

/// <summary>Retry policy of an activity; keep as static readonly values (changing it breaks in-flight instances).</summary>
public sealed record WorkflowRetryPolicy(int MaxNumberOfAttempts, TimeSpan FirstRetryInterval, double BackoffCoefficient = 2.0, TimeSpan? MaxRetryInterval = null)
{
    /// <summary>The delay before attempt <paramref name="nextAttempt"/> (2 = first retry).</summary>
    public TimeSpan DelayBefore(int nextAttempt)
    {
        var delay = FirstRetryInterval * Math.Pow(BackoffCoefficient, nextAttempt - 2);
        return MaxRetryInterval is { } max && delay > max ? max : delay;
    }
}

/// <summary>Runtime status of an instance (Dapr's names).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<WorkflowRuntimeStatus>))]
public enum WorkflowRuntimeStatus
{
    /// <summary>Scheduled, not started.</summary>
    [JsonStringEnumMemberName("PENDING")] Pending,

    /// <summary>Running.</summary>
    [JsonStringEnumMemberName("RUNNING")] Running,

    /// <summary>Completed.</summary>
    [JsonStringEnumMemberName("COMPLETED")] Completed,

    /// <summary>Failed.</summary>
    [JsonStringEnumMemberName("FAILED")] Failed,

    /// <summary>Terminated.</summary>
    [JsonStringEnumMemberName("TERMINATED")] Terminated,
}

/// <summary>State of a workflow instance.</summary>
public sealed record WorkflowState(
    string InstanceId,
    string Name,
    WorkflowRuntimeStatus RuntimeStatus,
    DateTimeOffset CreatedAt,
    DateTimeOffset LastUpdatedAt,
    string? SerializedOutput,
    string? FailureMessage);

/// <summary>Starts and queries workflow instances.</summary>
public interface IWorkflowClient
{
    /// <summary>
    /// Starts <paramref name="name"/> as <paramref name="instanceId"/>. Starting an id that already
    /// exists starts nothing and returns the id: at most one run per instance id.
    /// </summary>
    Task<string> ScheduleNewWorkflowAsync(string name, string instanceId, object? input, CancellationToken cancellationToken = default);

    /// <summary>The instance's state, or null when unknown.</summary>
    Task<WorkflowState?> GetWorkflowStateAsync(string instanceId, CancellationToken cancellationToken = default);

    /// <summary>Waits until the instance completes, fails or is terminated.</summary>
    Task<WorkflowState> WaitForWorkflowCompletionAsync(string instanceId, CancellationToken cancellationToken = default);
}

/// <summary>Registers workflows and activities under their class names.</summary>
public static class WorkflowServiceCollectionExtensions
{
    /// <summary>Registers a workflow.</summary>
    public static IServiceCollection AddWorkflow<TWorkflow>(this IServiceCollection services)
        where TWorkflow : class, IWorkflow
    {
        services.AddSingleton(new WorkflowRegistration(typeof(TWorkflow).Name, typeof(TWorkflow), IsActivity: false));
        services.AddTransient<TWorkflow>();
        return services;
    }

    /// <summary>Registers an activity.</summary>
    public static IServiceCollection AddWorkflowActivity<TActivity>(this IServiceCollection services)
        where TActivity : class, IWorkflowActivity
    {
        services.AddSingleton(new WorkflowRegistration(typeof(TActivity).Name, typeof(TActivity), IsActivity: true));
        services.AddTransient<TActivity>();
        return services;
    }
}

/// <summary>A registered workflow or activity.</summary>
public sealed record WorkflowRegistration(string Name, Type ImplementationType, bool IsActivity);
