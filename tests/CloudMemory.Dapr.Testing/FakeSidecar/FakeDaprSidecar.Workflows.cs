using System.Globalization;
using Dapr.DurableTask.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace CloudMemory.Dapr.Tests.FakeSidecar;

/// <summary>
/// The workflow engine of the fake daprd: Dapr's fork of the durabletask <c>TaskHubSidecarService</c>,
/// whose server base class is generated at build time from the descriptors embedded in Dapr.Workflow
/// (see the project file), so the real Dapr.Workflow worker and <c>DaprWorkflowClient</c> run against it.
/// It keeps each instance's history as daprd keeps it in actor state: it survives the app, not the
/// fake. It hands work items to a worker connected through the sidecar endpoint of the app that
/// started the instance (<see cref="GrpcAddressForAsync"/>; one orchestration work item per
/// instance at a time, with the full past history and the new events: no history cache), turns
/// actions into history (ScheduleTask, CreateTimer, CompleteWorkflow) and activity results into new
/// events, and re-queues any work item whose worker went away before completing it. Child
/// workflows, external events, suspension and purging are not implemented: they fail the test.
/// </summary>
public sealed partial class FakeDaprSidecar
{
    private readonly Lock _workflowGate = new();
    private readonly Dictionary<string, WorkflowInstance> _workflowInstances = new(StringComparer.Ordinal);
    // Work items not yet handed to a worker, oldest first, and those handed out but not completed.
    private readonly LinkedList<QueuedWorkItem> _workQueue = new();
    private readonly Dictionary<string, QueuedWorkItem> _dispatched = new(StringComparer.Ordinal);
    // Completed (and replaced) whenever the queue or the hold changes; workers waiting for work await it.
    private TaskCompletionSource _workChanged = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _completionTokens;

    /// <summary>Every work item handed to a worker, in order (a re-dispatch after a disconnect appears again).</summary>
    public System.Collections.Concurrent.ConcurrentQueue<WorkItem> DispatchedWorkItems { get; } = new();

    /// <summary>
    /// Work items matching this are kept queued and not handed to any worker until
    /// <see cref="ReleaseHeldWorkItems"/>: a test holds a workflow between two steps (e.g. to restart the app).
    /// </summary>
    public Func<WorkItem, bool>? HoldWorkItem { get; set; }

    /// <summary>Queued work items currently held by <see cref="HoldWorkItem"/>.</summary>
    public int HeldWorkItems
    {
        get
        {
            lock (_workflowGate)
            {
                return _workQueue.Count(q => HoldWorkItem?.Invoke(q.Item) == true);
            }
        }
    }

    /// <summary>Stops holding work items and hands the held ones out.</summary>
    public void ReleaseHeldWorkItems()
    {
        lock (_workflowGate)
        {
            HoldWorkItem = null;
            PulseWork();
        }
    }

    /// <summary>The instance's status as the engine stores it, or null when unknown.</summary>
    public OrchestrationStatus? WorkflowStatus(string instanceId)
    {
        lock (_workflowGate)
        {
            return _workflowInstances.TryGetValue(instanceId, out var instance) ? instance.Status : null;
        }
    }

    /// <summary>The instance's history (past events), or an empty list when unknown.</summary>
    public IReadOnlyList<HistoryEvent> WorkflowHistory(string instanceId)
    {
        lock (_workflowGate)
        {
            return _workflowInstances.TryGetValue(instanceId, out var instance) ? instance.History.Select(e => e.Clone()).ToList() : [];
        }
    }

    /// <summary>Activity work items handed out for <paramref name="instanceId"/> named <paramref name="activity"/>.</summary>
    public IReadOnlyList<ActivityRequest> DispatchedActivities(string instanceId, string activity) =>
        DispatchedWorkItems.Where(w => w.ActivityRequest is { } a && a.WorkflowInstance.InstanceId == instanceId && a.Name == activity)
            .Select(w => w.ActivityRequest).ToList();

    /// <summary>Workflow instances pending or running.</summary>
    public int RunningWorkflows
    {
        get
        {
            lock (_workflowGate)
            {
                return _workflowInstances.Values.Count(i => !IsTerminal(i.Status));
            }
        }
    }

    /// <summary>Waits until no workflow instance is pending or running.</summary>
    public Task WhenWorkflowsIdleAsync() => Wait.UntilAsync(() =>
    {
        lock (_workflowGate)
        {
            return _workflowInstances.Values.All(i => IsTerminal(i.Status));
        }
    }, "fake sidecar workflows to finish");

    // ---------------------------------------------------------------- client RPCs

    private CreateInstanceResponse StartInstance(CreateInstanceRequest request, string? appId)
    {
        Expect(!string.IsNullOrEmpty(request.Name), "StartInstance needs a workflow name");
        Expect(!string.IsNullOrEmpty(request.InstanceId), "StartInstance needs an instance id (CloudMemory's ids are deterministic)");
        Expect(request.ScheduledStartTimestamp is null, "StartInstance with a scheduled start: CloudMemory starts workflows at once");
        lock (_workflowGate)
        {
            if (_workflowInstances.ContainsKey(request.InstanceId))
            {
                throw new RpcException(new Status(StatusCode.AlreadyExists, $"a workflow with ID '{request.InstanceId}' already exists"));
            }
            var now = Timestamp.FromDateTimeOffset(_clock.GetUtcNow());
            var executionId = Guid.NewGuid().ToString("N");
            var instance = new WorkflowInstance(request.InstanceId, request.Name, appId, executionId, request.Input, now);
            _workflowInstances[request.InstanceId] = instance;
            instance.Inbox.Add(new HistoryEvent
            {
                EventId = -1,
                Timestamp = now,
                ExecutionStarted = new ExecutionStartedEvent
                {
                    Name = request.Name,
                    Input = request.Input,
                    WorkflowInstance = new global::Dapr.DurableTask.Protobuf.WorkflowInstance { InstanceId = request.InstanceId, ExecutionId = executionId },
                    ParentTraceContext = request.ParentTraceContext,
                },
            });
            DispatchOrchestrationIfIdle(instance);
        }
        return new CreateInstanceResponse { InstanceId = request.InstanceId };
    }

    private GetInstanceResponse GetInstance(GetInstanceRequest request)
    {
        lock (_workflowGate)
        {
            if (!_workflowInstances.TryGetValue(request.InstanceId, out var instance))
            {
                return new GetInstanceResponse { Exists = false };
            }
            var state = new WorkflowState
            {
                InstanceId = instance.Id,
                Name = instance.Name,
                WorkflowStatus = instance.Status,
                CreatedTimestamp = instance.CreatedAt,
                LastUpdatedTimestamp = instance.LastUpdatedAt,
                ExecutionId = instance.ExecutionId,
            };
            if (request.GetInputsAndOutputs)
            {
                state.Input = instance.Input ?? "";
                state.Output = instance.Output ?? "";
                state.CustomStatus = instance.CustomStatus ?? "";
            }
            if (instance.Failure is { } failure)
            {
                state.FailureDetails = failure;
            }
            return new GetInstanceResponse { Exists = true, WorkflowState = state };
        }
    }

    private async Task<GetInstanceResponse> WaitForInstanceAsync(GetInstanceRequest request, Func<OrchestrationStatus, bool> reached, ServerCallContext context)
    {
        while (true)
        {
            var response = GetInstance(request);
            if (!response.Exists || reached(response.WorkflowState.WorkflowStatus))
            {
                return response;
            }
            Task changed;
            lock (_workflowGate)
            {
                changed = _workflowInstances[request.InstanceId].Changed.Task;
            }
            await changed.WaitAsync(context.CancellationToken);
        }
    }

    private GetInstanceHistoryResponse GetInstanceHistory(GetInstanceHistoryRequest request)
    {
        var response = new GetInstanceHistoryResponse();
        response.Events.AddRange(WorkflowHistory(request.InstanceId));
        return response;
    }

    // ---------------------------------------------------------------- worker RPCs

    private async Task GetWorkItems(GetWorkItemsRequest request, IServerStreamWriter<WorkItem> stream, ServerCallContext context, string? appId)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, _stopping.Token);
        var connection = new object();
        try
        {
            while (true)
            {
                QueuedWorkItem? next;
                Task changed;
                lock (_workflowGate)
                {
                    next = _workQueue.FirstOrDefault(q => q.AppId == appId && HoldWorkItem?.Invoke(q.Item) != true);
                    changed = _workChanged.Task;
                    if (next is not null)
                    {
                        _workQueue.Remove(next);
                        next.Connection = connection;
                        _dispatched[next.Item.CompletionToken] = next;
                    }
                }
                if (next is null)
                {
                    await changed.WaitAsync(linked.Token);
                    continue;
                }
                DispatchedWorkItems.Enqueue(next.Item);
                await stream.WriteAsync(next.Item, linked.Token);
            }
        }
        catch (OperationCanceledException) when (linked.IsCancellationRequested)
        {
            // The worker went away (app stopped) or the fake is stopping.
        }
        finally
        {
            // daprd re-sends what a departed worker did not complete to the next worker that connects.
            lock (_workflowGate)
            {
                foreach (var orphan in _dispatched.Values.Where(d => ReferenceEquals(d.Connection, connection)).ToList())
                {
                    _dispatched.Remove(orphan.Item.CompletionToken);
                    orphan.Connection = null;
                    _workQueue.AddFirst(orphan);
                }
                PulseWork();
            }
        }
    }

    private CompleteTaskResponse CompleteActivityTask(ActivityResponse response)
    {
        lock (_workflowGate)
        {
            if (!TakeDispatched(response.CompletionToken, "CompleteActivityTask", out var item))
            {
                return new CompleteTaskResponse();
            }
            var request = item.Item.ActivityRequest;
            Expect(request is not null, "CompleteActivityTask with the token of a workflow work item");
            Expect(response.InstanceId == request?.WorkflowInstance.InstanceId && response.TaskId == request?.TaskId,
                $"CompleteActivityTask for {response.InstanceId}#{response.TaskId} answers {request?.WorkflowInstance.InstanceId}#{request?.TaskId}");
            if (!_workflowInstances.TryGetValue(response.InstanceId, out var instance) || IsTerminal(instance.Status))
            {
                return new CompleteTaskResponse(); // the instance finished meanwhile: the result is dropped, as daprd drops it
            }
            var now = Timestamp.FromDateTimeOffset(_clock.GetUtcNow());
            instance.Inbox.Add(response.FailureDetails is { } failure
                ? new HistoryEvent { EventId = -1, Timestamp = now, TaskFailed = new TaskFailedEvent { TaskScheduledId = response.TaskId, FailureDetails = failure, TaskExecutionId = request?.TaskExecutionId ?? "" } }
                : new HistoryEvent { EventId = -1, Timestamp = now, TaskCompleted = new TaskCompletedEvent { TaskScheduledId = response.TaskId, Result = response.Result ?? "", TaskExecutionId = request?.TaskExecutionId ?? "" } });
            DispatchOrchestrationIfIdle(instance);
        }
        return new CompleteTaskResponse();
    }

    private CompleteTaskResponse CompleteOrchestratorTask(WorkflowResponse response)
    {
        lock (_workflowGate)
        {
            if (!TakeDispatched(response.CompletionToken, "CompleteOrchestratorTask", out var item))
            {
                return new CompleteTaskResponse();
            }
            var request = item.Item.WorkflowRequest;
            if (!Expect(request is not null && request.InstanceId == response.InstanceId, $"CompleteOrchestratorTask for '{response.InstanceId}' answers another work item")
                || !_workflowInstances.TryGetValue(response.InstanceId, out var instance))
            {
                return new CompleteTaskResponse();
            }
            instance.OrchestrationOutstanding = false;
            // The turn's new events become history, then what the workflow decided in that turn.
            instance.History.AddRange(request!.NewEvents);
            var now = Timestamp.FromDateTimeOffset(_clock.GetUtcNow());
            if (instance.Status == OrchestrationStatus.Pending)
            {
                instance.Status = OrchestrationStatus.Running;
            }
            if (!string.IsNullOrEmpty(response.CustomStatus))
            {
                instance.CustomStatus = response.CustomStatus;
            }
            foreach (var action in response.Actions)
            {
                ApplyAction(instance, action, now);
            }
            instance.LastUpdatedAt = now;
            instance.Signal();
            if (!IsTerminal(instance.Status))
            {
                DispatchOrchestrationIfIdle(instance);
            }
        }
        return new CompleteTaskResponse();
    }

    private void ApplyAction(WorkflowInstance instance, WorkflowAction action, Timestamp now)
    {
        switch (action.WorkflowActionTypeCase)
        {
            case WorkflowAction.WorkflowActionTypeOneofCase.ScheduleTask:
                var task = action.ScheduleTask;
                Expect(!string.IsNullOrEmpty(task.Name), "ScheduleTask needs an activity name");
                Expect(string.IsNullOrEmpty(task.Router?.TargetAppID), "ScheduleTask to another app: CloudMemory's activities run in the app of their workflow");
                instance.History.Add(new HistoryEvent
                {
                    EventId = action.Id,
                    Timestamp = now,
                    TaskScheduled = new TaskScheduledEvent { Name = task.Name, Version = task.Version, Input = task.Input, TaskExecutionId = task.TaskExecutionId },
                });
                Enqueue(instance, new WorkItem
                {
                    ActivityRequest = new ActivityRequest
                    {
                        Name = task.Name,
                        Version = task.Version,
                        Input = task.Input,
                        TaskId = action.Id,
                        TaskExecutionId = task.TaskExecutionId,
                        WorkflowInstance = new global::Dapr.DurableTask.Protobuf.WorkflowInstance { InstanceId = instance.Id, ExecutionId = instance.ExecutionId },
                    },
                });
                break;
            case WorkflowAction.WorkflowActionTypeOneofCase.CreateTimer:
                var timer = action.CreateTimer;
                var created = new TimerCreatedEvent { FireAt = timer.FireAt, Name = timer.Name };
                switch (timer.OriginCase)
                {
                    case CreateTimerAction.OriginOneofCase.CreateTimer: created.CreateTimer = timer.CreateTimer; break;
                    case CreateTimerAction.OriginOneofCase.ActivityRetry: created.ActivityRetry = timer.ActivityRetry; break;
                    case CreateTimerAction.OriginOneofCase.ChildWorkflowRetry: created.ChildWorkflowRetry = timer.ChildWorkflowRetry; break;
                    case CreateTimerAction.OriginOneofCase.ExternalEvent: created.ExternalEvent = timer.ExternalEvent; break;
                }
                instance.History.Add(new HistoryEvent { EventId = action.Id, Timestamp = now, TimerCreated = created });
                _ = FireTimerAsync(instance, action.Id, timer.FireAt);
                break;
            case WorkflowAction.WorkflowActionTypeOneofCase.CompleteWorkflow:
                var complete = action.CompleteWorkflow;
                Expect(complete.WorkflowStatus is OrchestrationStatus.Completed or OrchestrationStatus.Failed or OrchestrationStatus.Terminated,
                    $"CompleteWorkflow with status {complete.WorkflowStatus}: CloudMemory's workflows complete, fail or are terminated");
                instance.Status = complete.WorkflowStatus;
                instance.Output = complete.Result;
                instance.Failure = complete.FailureDetails;
                instance.History.Add(new HistoryEvent
                {
                    EventId = -1,
                    Timestamp = now,
                    ExecutionCompleted = new ExecutionCompletedEvent { WorkflowStatus = complete.WorkflowStatus, Result = complete.Result, FailureDetails = complete.FailureDetails },
                });
                // Activities still queued for a finished instance are dropped.
                foreach (var queued in _workQueue.Where(q => q.Item.ActivityRequest?.WorkflowInstance.InstanceId == instance.Id).ToList())
                {
                    _workQueue.Remove(queued);
                }
                break;
            default:
                Violation($"workflow action {action.WorkflowActionTypeCase} is not implemented by the fake sidecar");
                instance.Status = OrchestrationStatus.Failed;
                instance.Failure = new TaskFailureDetails { ErrorType = "FakeSidecar", ErrorMessage = $"{action.WorkflowActionTypeCase} is not implemented by the fake sidecar" };
                break;
        }
    }

    private async Task FireTimerAsync(WorkflowInstance instance, int timerId, Timestamp fireAt)
    {
        var delay = fireAt.ToDateTimeOffset() - _clock.GetUtcNow();
        if (delay > TimeSpan.Zero)
        {
            try
            {
                await Task.Delay(delay, _clock, _stopping.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
        lock (_workflowGate)
        {
            if (IsTerminal(instance.Status))
            {
                return;
            }
            instance.Inbox.Add(new HistoryEvent
            {
                EventId = -1,
                Timestamp = Timestamp.FromDateTimeOffset(_clock.GetUtcNow()),
                TimerFired = new TimerFiredEvent { TimerId = timerId, FireAt = fireAt },
            });
            DispatchOrchestrationIfIdle(instance);
        }
    }

    // Caller holds _workflowGate.
    private void DispatchOrchestrationIfIdle(WorkflowInstance instance)
    {
        if (instance.OrchestrationOutstanding || instance.Inbox.Count == 0)
        {
            return;
        }
        instance.OrchestrationOutstanding = true;
        var request = new WorkflowRequest { InstanceId = instance.Id, ExecutionId = instance.ExecutionId };
        request.PastEvents.AddRange(instance.History.Select(e => e.Clone()));
        // Each turn starts with the time the engine began it.
        request.NewEvents.Add(new HistoryEvent { EventId = -1, Timestamp = Timestamp.FromDateTimeOffset(_clock.GetUtcNow()), WorkflowStarted = new WorkflowStartedEvent() });
        request.NewEvents.AddRange(instance.Inbox);
        instance.Inbox.Clear();
        Enqueue(instance, new WorkItem { WorkflowRequest = request });
    }

    // Caller holds _workflowGate.
    private void Enqueue(WorkflowInstance instance, WorkItem item)
    {
        item.CompletionToken = Interlocked.Increment(ref _completionTokens).ToString(CultureInfo.InvariantCulture);
        _workQueue.AddLast(new QueuedWorkItem(item, instance.AppId));
        PulseWork();
    }

    // Caller holds _workflowGate.
    private void PulseWork()
    {
        var changed = _workChanged;
        _workChanged = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        changed.TrySetResult();
    }

    // Caller holds _workflowGate.
    private bool TakeDispatched(string completionToken, string method, out QueuedWorkItem item)
    {
        if (_dispatched.Remove(completionToken, out item!))
        {
            return true;
        }
        // A completion for an item re-queued after its worker left is late but genuine: take it from the queue.
        if (_workQueue.FirstOrDefault(q => q.Item.CompletionToken == completionToken) is { } requeued)
        {
            _workQueue.Remove(requeued);
            item = requeued;
            return true;
        }
        Expect(long.TryParse(completionToken, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 && n <= Interlocked.Read(ref _completionTokens),
            $"{method} with completion token '{completionToken}', which the fake sidecar never issued");
        return false;
    }

    private static bool IsTerminal(OrchestrationStatus status) =>
        status is OrchestrationStatus.Completed or OrchestrationStatus.Failed or OrchestrationStatus.Terminated or OrchestrationStatus.Canceled;

    private sealed class QueuedWorkItem(WorkItem item, string? appId)
    {
        public WorkItem Item { get; } = item;
        public string? AppId { get; } = appId;
        public object? Connection { get; set; }
    }

    private sealed class WorkflowInstance(string id, string name, string? appId, string executionId, string? input, Timestamp createdAt)
    {
        public string Id { get; } = id;
        public string Name { get; } = name;
        public string? AppId { get; } = appId;
        public string ExecutionId { get; } = executionId;
        public string? Input { get; } = input;
        public Timestamp CreatedAt { get; } = createdAt;
        public Timestamp LastUpdatedAt { get; set; } = createdAt;
        public OrchestrationStatus Status { get; set; } = OrchestrationStatus.Pending;
        public string? Output { get; set; }
        public string? CustomStatus { get; set; }
        public TaskFailureDetails? Failure { get; set; }
        public List<HistoryEvent> History { get; } = [];
        public List<HistoryEvent> Inbox { get; } = [];
        public bool OrchestrationOutstanding { get; set; }
        public TaskCompletionSource Changed { get; private set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Signal()
        {
            var changed = Changed;
            Changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            changed.TrySetResult();
        }
    }

    private sealed class TaskHubService(FakeDaprSidecar fake, SidecarOfApp sidecar) : TaskHubSidecarService.TaskHubSidecarServiceBase
    {
        public override Task<Empty> Hello(Empty request, ServerCallContext context) => Task.FromResult(new Empty());

        public override Task<CreateInstanceResponse> StartInstance(CreateInstanceRequest request, ServerCallContext context) =>
            Task.FromResult(fake.StartInstance(request, sidecar.AppId));

        public override Task<GetInstanceResponse> GetInstance(GetInstanceRequest request, ServerCallContext context) =>
            Task.FromResult(fake.GetInstance(request));

        public override Task<GetInstanceResponse> WaitForInstanceStart(GetInstanceRequest request, ServerCallContext context) =>
            fake.WaitForInstanceAsync(request, s => s != OrchestrationStatus.Pending, context);

        public override Task<GetInstanceResponse> WaitForInstanceCompletion(GetInstanceRequest request, ServerCallContext context) =>
            fake.WaitForInstanceAsync(request, IsTerminal, context);

        public override Task<GetInstanceHistoryResponse> GetInstanceHistory(GetInstanceHistoryRequest request, ServerCallContext context) =>
            Task.FromResult(fake.GetInstanceHistory(request));

        public override Task GetWorkItems(GetWorkItemsRequest request, IServerStreamWriter<WorkItem> responseStream, ServerCallContext context) =>
            fake.GetWorkItems(request, responseStream, context, sidecar.AppId);

        public override Task<CompleteTaskResponse> CompleteActivityTask(ActivityResponse request, ServerCallContext context) =>
            Task.FromResult(fake.CompleteActivityTask(request));

        // Obsolete in the proto in favour of CompleteWorkflowTask, but it is what the 1.19 worker calls.
        [Obsolete("Kept because the Dapr.Workflow 1.19 worker completes orchestrations with it.")]
        public override Task<CompleteTaskResponse> CompleteOrchestratorTask(WorkflowResponse request, ServerCallContext context) =>
            Task.FromResult(fake.CompleteOrchestratorTask(request));

        public override Task<CompleteTaskResponse> CompleteWorkflowTask(WorkflowResponse request, ServerCallContext context) =>
            Task.FromResult(fake.CompleteOrchestratorTask(request));
    }
}
