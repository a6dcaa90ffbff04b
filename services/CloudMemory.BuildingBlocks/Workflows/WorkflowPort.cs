using System.Text.Json.Serialization;
using Dapr.Workflow;
using Microsoft.Extensions.DependencyInjection;
using IWorkflowActivity = Dapr.Workflow.Abstractions.IWorkflowActivity;

namespace CloudMemory.BuildingBlocks.Workflows;

// Workflows and activities are Dapr.Workflow SDK classes (Workflow<TIn,TOut>, WorkflowActivity<TIn,TOut>)
// in both runtimes. What lives here is only what feature code needs to start and query them without
// knowing which runtime runs them: the Dapr worker (durable) or EmbeddedWorkflowRunner (in process).

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

/// <summary>Registers Dapr.Workflow workflows and activities under their class names, for whichever runtime runs them.</summary>
public static class WorkflowServiceCollectionExtensions
{
    /// <summary>Registers a workflow.</summary>
    public static IServiceCollection AddWorkflow<TWorkflow>(this IServiceCollection services)
        where TWorkflow : class, IWorkflow
    {
        services.AddSingleton(new WorkflowRegistration(typeof(TWorkflow).Name, typeof(TWorkflow), IsActivity: false,
            options => options.RegisterWorkflow<TWorkflow>(typeof(TWorkflow).Name)));
        services.AddTransient<TWorkflow>();
        return services;
    }

    /// <summary>Registers an activity.</summary>
    public static IServiceCollection AddWorkflowActivity<TActivity>(this IServiceCollection services)
        where TActivity : class, IWorkflowActivity
    {
        services.AddSingleton(new WorkflowRegistration(typeof(TActivity).Name, typeof(TActivity), IsActivity: true,
            options => options.RegisterActivity<TActivity>(typeof(TActivity).Name)));
        services.AddTransient<TActivity>();
        return services;
    }
}

/// <summary>A registered workflow or activity; <paramref name="Register"/> adds it to the Dapr worker's options.</summary>
public sealed record WorkflowRegistration(string Name, Type ImplementationType, bool IsActivity, Action<WorkflowRuntimeOptions> Register);
