using System.Text.Json;
using CloudMemory.BuildingBlocks.Workflows;
using CloudMemory.Contracts;
using Dapr.DurableTask.Protobuf;
using Dapr.Workflow;
using Dapr.Workflow.Worker;
using Grpc.Core;
using Grpc.Net.ClientFactory;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using DaprRuntimeStatus = Dapr.Workflow.WorkflowRuntimeStatus;
using WorkflowRuntimeStatus = CloudMemory.BuildingBlocks.Workflows.WorkflowRuntimeStatus;
using WorkflowState = CloudMemory.BuildingBlocks.Workflows.WorkflowState;

namespace CloudMemory.Dapr;

/// <summary>
/// Workflows on the Dapr runtime: the SDK's worker (<c>AddDaprWorkflow</c>) runs the registered
/// workflow and activity classes against the sidecar's workflow engine over gRPC, so an instance's
/// history is durable in the sidecar's actor state store and an instance in flight resumes after
/// an app restart by replay. <see cref="IWorkflowClient"/> is served by <see cref="DaprWorkflowClient"/>.
/// </summary>
public static class DaprWorkflows
{
    /// <summary>Registers the worker, the client and the port.</summary>
    public static IServiceCollection AddDaprWorkflows(this IServiceCollection services, DaprOptions options)
    {
        services.AddDaprWorkflow(_ => { }).WithJsonSerializer(ContractsJson.Options);
        // The SDK reads its registrations when the worker first needs its factory; by then every
        // feature module has called AddWorkflow/AddWorkflowActivity, whatever the order in Program.cs.
        var original = services.Last(d => d.ServiceType == typeof(IWorkflowsFactory));
        services.Replace(ServiceDescriptor.Singleton<IWorkflowsFactory>(sp =>
        {
            var runtimeOptions = sp.GetRequiredService<WorkflowRuntimeOptions>();
            foreach (var registration in sp.GetServices<WorkflowRegistration>())
            {
                registration.Register(runtimeOptions);
            }
            return (IWorkflowsFactory)original.ImplementationFactory!(sp);
        }));
        // The sidecar address comes from DaprOptions, as for every other building block.
        foreach (var name in new[] { typeof(TaskHubSidecarService.TaskHubSidecarServiceClient).FullName!, nameof(TaskHubSidecarService.TaskHubSidecarServiceClient) })
        {
            services.PostConfigure<GrpcClientFactoryOptions>(name, o => o.Address = options.GrpcEndpoint);
        }
        services.TryAddSingleton<IWorkflowClient, DaprWorkflowPort>();
        return services;
    }

    /// <summary><see cref="IWorkflowClient"/> over the SDK's <see cref="DaprWorkflowClient"/>.</summary>
    private sealed class DaprWorkflowPort(DaprWorkflowClient client) : IWorkflowClient
    {
        public async Task<string> ScheduleNewWorkflowAsync(string name, string instanceId, object? input, CancellationToken cancellationToken = default)
        {
            // At most one run per id: daprd refuses an id that is running and may start a finished
            // one afresh, so an id it knows is not scheduled again.
            if (await GetWorkflowStateAsync(instanceId, cancellationToken) is not null)
            {
                return instanceId;
            }
            try
            {
                return await client.ScheduleNewWorkflowAsync(name, instanceId, input, startTime: null, cancellationToken);
            }
            catch (RpcException) when (!cancellationToken.IsCancellationRequested)
            {
                // Another caller started the same id in between.
                if (await GetWorkflowStateAsync(instanceId, cancellationToken) is not null)
                {
                    return instanceId;
                }
                throw;
            }
        }

        public async Task<WorkflowState?> GetWorkflowStateAsync(string instanceId, CancellationToken cancellationToken = default)
        {
            var state = await client.GetWorkflowStateAsync(instanceId, getInputsAndOutputs: true, cancellationToken);
            return state.Exists ? ToState(instanceId, state) : null;
        }

        public async Task<WorkflowState> WaitForWorkflowCompletionAsync(string instanceId, CancellationToken cancellationToken = default)
        {
            var state = await client.WaitForWorkflowCompletionAsync(instanceId, getInputsAndOutputs: true, cancellationToken);
            return state.Exists ? ToState(instanceId, state) : throw new KeyNotFoundException($"workflow instance '{instanceId}' does not exist");
        }

        private static WorkflowState ToState(string instanceId, global::Dapr.Workflow.WorkflowState state)
        {
            var output = state.RuntimeStatus == DaprRuntimeStatus.Completed && state.ReadOutputAs<JsonElement?>() is { } element
                ? element.GetRawText()
                : null;
            return new WorkflowState(instanceId, state.WorkflowName ?? "", ToStatus(state.RuntimeStatus), state.CreatedAt, state.LastUpdatedAt,
                output, state.FailureDetails?.ErrorMessage);
        }

        private static WorkflowRuntimeStatus ToStatus(DaprRuntimeStatus status) => status switch
        {
            DaprRuntimeStatus.Completed => WorkflowRuntimeStatus.Completed,
            DaprRuntimeStatus.Failed => WorkflowRuntimeStatus.Failed,
            DaprRuntimeStatus.Terminated or DaprRuntimeStatus.Canceled => WorkflowRuntimeStatus.Terminated,
            DaprRuntimeStatus.Pending => WorkflowRuntimeStatus.Pending,
            _ => WorkflowRuntimeStatus.Running,
        };
    }
}
