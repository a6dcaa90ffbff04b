using System.Net;
using System.Text.Json;
using CloudMemory.BuildingBlocks.Embedded;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.BuildingBlocks.Workflows;
using CloudMemory.Context.Features.Memories;
using CloudMemory.Context.Features.Memories.Activities;
using CloudMemory.Context.Features.Memories.Workflows;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Dapr.Tests.FakeSidecar;
using CloudMemory.Session.Features.Checkpoints;
using CloudMemory.Session.Features.Sessions;
using CloudMemory.Session.Tests.Infrastructure;
using Dapr.DurableTask.Protobuf;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.Dapr.Tests.Services;

/// <summary>
/// Issue 7: the checkpoint and consolidation workflows run on the real Dapr.Workflow worker against
/// the fake sidecar's TaskHubSidecarService (generated from the descriptors in Dapr.Workflow), and a
/// checkpoint in flight survives an app restart: the sidecar keeps the history, the new app's worker
/// replays it and finishes the instance, and the checkpoint is applied exactly once.
/// </summary>
public sealed partial class SessionServiceOnDaprTests
{
    [Fact]
    public async Task CheckpointWorkflow_OnDapr_RunsOnTheSdkWorker_AndAppliesTheCheckpoint()
    {
        _app.Services.GetService<EmbeddedWorkflowRunner>().Should().BeNull("Dapr mode runs workflows on the SDK's worker, not in process");
        var (id, checkpointId) = await CheckpointThreeTurnsAsync();
        Sidecar.WorkflowStatus(checkpointId).Should().Be(OrchestrationStatus.Completed);
        Sidecar.WorkflowHistory(checkpointId).Where(e => e.TaskScheduled is not null).Select(e => e.TaskScheduled.Name)
            .Should().Equal(nameof(SummarizeConversationActivity), nameof(ApplyCheckpointActivity));
        var session = await ReadAsync<SessionValue>(await _client.GetAsync($"v1/sessions/{id}"));
        session.MessageContext.CheckpointCount.Should().Be(1);
        session.MessageContext.Mode.Should().Be(MemoryMode.SummaryN);

        // A second start of the same id starts nothing: the checkpoint is not applied twice.
        await _app.Services.GetRequiredService<IWorkflowClient>().ScheduleNewWorkflowAsync(nameof(CheckpointConversationWorkflow), checkpointId, new CheckpointWorkflowInput(Tenant.Default, id, checkpointId, RecentTurns: 2));
        Sidecar.DispatchedActivities(checkpointId, nameof(ApplyCheckpointActivity)).Should().HaveCount(1);
        await Sidecar.WhenDeliveriesSettledAsync();
        Sidecar.AssertNoViolations();
    }

    [Fact]
    public async Task CheckpointWorkflow_AppRestartAfterTheFirstActivity_CompletesOnTheNewApp_AppliedExactlyOnce()
    {
        // One sidecar outlives both apps, as daprd and its state store outlive an app restart.
        await DisposeAsync();
        await using var sidecar = await FakeDaprSidecar.StartAsync(_sidecarClock, DaprTestApp.SidecarToken, DaprTestApp.AppToken);
        _app = await StartAppAsync(session: true, context: true, settings: null, sidecar);
        _client = new HttpClient { BaseAddress = _app.AppBase, Timeout = Wait.Timeout };
        var id = NewId();
        (await PostAsync("v1/sessions", new CreateSessionRequest(id, "user-1"))).StatusCode.Should().Be(HttpStatusCode.Created);
        for (var i = 1; i <= 3; i++)
        {
            await TurnAsync(id, i);
        }
        var checkpointId = ConversationActor.CheckpointId(Tenant.Default, id, 1);
        // Hold the workflow turn that follows the summarizer's completion: the app stops between the two activities.
        sidecar.HoldWorkItem = w => w.WorkflowRequest is { } r && r.InstanceId == checkpointId && r.NewEvents.Any(e => e.TaskCompleted is not null);

        await _app.Services.GetRequiredService<IWorkflowClient>().ScheduleNewWorkflowAsync(nameof(CheckpointConversationWorkflow), checkpointId,
            new CheckpointWorkflowInput(Tenant.Default, id, checkpointId, RecentTurns: 2));
        await Wait.UntilAsync(() => sidecar.HeldWorkItems == 1, "the summarizer to complete");
        await sidecar.WhenDeliveriesSettledAsync();
        _client.Dispose();
        await _app.DisposeAsync();
        sidecar.WorkflowStatus(checkpointId).Should().Be(OrchestrationStatus.Running);
        sidecar.DispatchedActivities(checkpointId, nameof(ApplyCheckpointActivity)).Should().BeEmpty("the app stopped before the second activity");

        _app = await StartAppAsync(session: true, context: true, settings: null, sidecar);
        _client = new HttpClient { BaseAddress = _app.AppBase, Timeout = Wait.Timeout };
        sidecar.ReleaseHeldWorkItems();
        var state = await _app.Services.GetRequiredService<IWorkflowClient>().WaitForWorkflowCompletionAsync(checkpointId).WaitAsync(Wait.Timeout);

        state.RuntimeStatus.Should().Be(WorkflowRuntimeStatus.Completed, state.FailureMessage);
        // The new app's worker replayed the summarizer's result from history instead of running it again.
        sidecar.DispatchedActivities(checkpointId, nameof(SummarizeConversationActivity)).Should().HaveCount(1);
        sidecar.DispatchedActivities(checkpointId, nameof(ApplyCheckpointActivity)).Should().HaveCount(1);
        sidecar.ActorCalls.Where(c => c.Type == ActorType && c.Id == ActorId(id) && c.Method == "ApplyCheckpoint")
            .Should().ContainSingle().Which.Status.Should().Be(200);
        var session = await ReadAsync<SessionValue>(await _client.GetAsync($"v1/sessions/{id}"));
        session.MessageContext.CheckpointCount.Should().Be(1);
        session.FlowContext.TurnCount.Should().Be(3);
        await sidecar.WhenDeliveriesSettledAsync();
        sidecar.AssertNoViolations();
    }

    [Fact]
    public async Task CheckpointWorkflow_OnDapr_LlmKeepsFailing_RetriesOnDurableTimers_ThenFallsBack()
    {
        using var llm = new ChatCompletionsStub();
        llm.FailsWith(400); // not retried by the OpenAI client: every retry is the workflow's
        await RestartAsync(new Dictionary<string, string?> { ["CloudMemory:Llm:Endpoint"] = llm.Endpoint.ToString() });
        var (id, checkpointId) = await CheckpointThreeTurnsAsync();
        // SummarizeRetry: 3 attempts with the LLM, 2 durable retry timers between them, then the extractive fallback.
        llm.Requests.Count.Should().Be(CheckpointConversationWorkflow.SummarizeRetry.MaxNumberOfAttempts);
        var history = Sidecar.WorkflowHistory(checkpointId);
        history.Count(e => e.TimerCreated?.ActivityRetry is not null).Should().Be(2);
        history.Count(e => e.TimerFired is not null).Should().Be(2);
        Sidecar.DispatchedActivities(checkpointId, nameof(SummarizeConversationActivity)).Should().HaveCount(4);
        Sidecar.DispatchedActivities(checkpointId, nameof(ApplyCheckpointActivity)).Should().HaveCount(1);
        var session = await ReadAsync<SessionValue>(await _client.GetAsync($"v1/sessions/{id}"));
        session.MessageContext.CheckpointCount.Should().Be(1);
        session.MessageContext.Summary.Should().Contain("headache", "the extractive summary quotes the turns");
        await Sidecar.WhenDeliveriesSettledAsync();
        Sidecar.AssertNoViolations();
    }

    [Fact]
    public async Task ConsolidationWorkflow_OnDapr_WritesTheLongTermEntries()
    {
        var conversationId = NewId();
        var input = new ConsolidationInput(Tenant.Default, conversationId, "user-9",
            "The user planned a trip to Lisbon and booked a hotel near the river.",
            ["user: I prefer vegetarian food when travelling.", "agent: Noted."], Final: true);
        var instanceId = $"consolidate-{conversationId}-test";
        var workflows = _app.Services.GetRequiredService<IWorkflowClient>();

        await workflows.ScheduleNewWorkflowAsync(nameof(ConsolidateConversationWorkflow), instanceId, input);
        var state = await workflows.WaitForWorkflowCompletionAsync(instanceId).WaitAsync(Wait.Timeout);

        state.RuntimeStatus.Should().Be(WorkflowRuntimeStatus.Completed, state.FailureMessage);
        var result = JsonSerializer.Deserialize<ConsolidationResult>(state.SerializedOutput!, ContractsJson.Options)!;
        result.EntryIds.Should().HaveCount(2, "an episode and one preference");
        Sidecar.DispatchedActivities(instanceId, nameof(ExtractLongTermMemoriesActivity)).Should().HaveCount(1);
        Sidecar.DispatchedActivities(instanceId, nameof(WriteLongTermMemoriesActivity)).Should().HaveCount(1);
        var memory = _app.Services.GetRequiredService<ILongTermMemory>();
        foreach (var entryId in result.EntryIds)
        {
            (await memory.GetAsync(Tenant.Default, entryId)).Should().NotBeNull();
        }
        (await memory.GetAsync(Tenant.Default, result.EntryIds[0]))!.ContextId.Should().Be(conversationId);
        Sidecar.AssertNoViolations();
    }

    // A conversation of three turns and its first checkpoint, run to completion by the workflow engine.
    private async Task<(string Id, string CheckpointId)> CheckpointThreeTurnsAsync()
    {
        var id = NewId();
        (await PostAsync("v1/sessions", new CreateSessionRequest(id, "user-1"))).StatusCode.Should().Be(HttpStatusCode.Created);
        for (var i = 1; i <= 3; i++)
        {
            await TurnAsync(id, i);
        }
        var checkpointId = ConversationActor.CheckpointId(Tenant.Default, id, 1);
        var workflows = _app.Services.GetRequiredService<IWorkflowClient>();

        await workflows.ScheduleNewWorkflowAsync(nameof(CheckpointConversationWorkflow), checkpointId, new CheckpointWorkflowInput(Tenant.Default, id, checkpointId, RecentTurns: 2));
        var state = await workflows.WaitForWorkflowCompletionAsync(checkpointId).WaitAsync(Wait.Timeout);

        state.RuntimeStatus.Should().Be(WorkflowRuntimeStatus.Completed, state.FailureMessage);
        JsonSerializer.Deserialize<CheckpointWorkflowOutput>(state.SerializedOutput!, ContractsJson.Options)!.Applied.Should().BeTrue();
        return (id, checkpointId);
    }
}
