using System.Collections.Concurrent;
using System.Net;
using Dapr.Client.Autogen.Grpc.v1;
using System.Net.Http.Json;
using System.Text.Json;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.Contracts;
using CloudMemory.Context.Features.Memories;
using CloudMemory.Contracts.Feedback;
using CloudMemory.Dapr;
using CloudMemory.Dapr.Tests;
using CloudMemory.Dapr.Tests.FakeSidecar;
using CloudMemory.Feedback.Features.Experiences;
using CloudMemory.Feedback.Features.Learning;
using CloudMemory.Feedback.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.Feedback.Tests.Dapr;

/// <summary>
/// The feedback app alone, composed as services/CloudMemory.Feedback/Program.cs composes it, on the
/// Dapr runtime against the fake sidecar: events go out through the sidecar's publish API and come
/// back to the app's subscription route; learning cycles run through the workflow port.
/// </summary>
public sealed class FeedbackServiceOnDaprTests : IAsyncLifetime
{
    private const string TestRoute = "/test/feedback-events";
    private readonly ConcurrentQueue<CloudEvent> _received = new();
    private DaprTestApp _app = null!;
    private HttpClient _client = null!;

    public async Task InitializeAsync()
    {
        _app = await DaprTestApp.StartServiceAsync(new ManualTimeProvider(), FeedbackServiceCollectionExtensions.AppId, builder =>
        {
            builder.AddFeedbackServices();
            // A subscriber of the feedback events, as another app (e.g. context) registers one.
            builder.Services.AddSingleton(new Subscription(FeedbackTopics.FeedbackRecorded, TestRoute, Receive));
            // The context app's memory feedback tally, on the Dapr state store (fed by Receive: one subscription per topic).
            builder.Services.AddSingleton<MemoryFeedbackScores>();
            builder.Services.AddSingleton(new Subscription(FeedbackTopics.StrategyChanged, TestRoute, Receive));
        }, app => app.MapFeedbackEndpoints(), new Dictionary<string, string?>
        {
            ["CloudMemory:Feedback:Learning:MinConversationsPerArm"] = "5",
            ["CloudMemory:Feedback:Learning:ScheduleInterval"] = "00:00:00",
        });
        _client = new HttpClient { BaseAddress = _app.AppBase, Timeout = Wait.Timeout };
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _app.DisposeAsync();
    }

    private async Task<DeliveryStatus> Receive(CloudEvent cloudEvent, CancellationToken cancellationToken)
    {
        var status = cloudEvent.Type == FeedbackTopics.FeedbackRecordedType
            ? await _app.Services.GetRequiredService<MemoryFeedbackScores>().HandleAsync(cloudEvent, cancellationToken)
            : DeliveryStatus.Success;
        _received.Enqueue(cloudEvent);
        return status;
    }

    private Task<HttpResponseMessage> PostAsync<T>(string url, T body) => _client.PostAsJsonAsync(url, body, ContractsJson.Options);

    [Fact]
    public async Task FeedbackApp_OnDapr_RecordsPublishesThroughTheSidecar_AndRunsALearningCycle()
    {
        for (var i = 0; i < 6; i++)
        {
            var response = await PostAsync("v1/feedback", new RecordFeedbackRequest($"fb-{i}", new FeedbackTarget("conversation", $"c-{i}"), "agent-d", "user", "rating",
                JsonSerializer.SerializeToElement(2), null, ["far too long"], Metrics: new Dictionary<string, double> { ["responseLength"] = 1500 }));
            response.StatusCode.Should().Be(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        }
        (await PostAsync("v1/feedback", new RecordFeedbackRequest("fb-0", new FeedbackTarget("conversation", "c-0"), "agent-d", "user", "rating",
            JsonSerializer.SerializeToElement(2), null, ["far too long"], Metrics: new Dictionary<string, double> { ["responseLength"] = 1500 })))
            .StatusCode.Should().Be(HttpStatusCode.OK);
        (await PostAsync("v1/experiences", new RecordExperienceRequest("e-1", "agent-d", new TaskContext(Intent: "triage"), new ExecutionResult(true))))
            .StatusCode.Should().Be(HttpStatusCode.Created);

        var cycle = await (await PostAsync("v1/learning/cycles", new RunLearningCycleRequest("agent-d", "first"))).ReadAsync<LearningCycle>();

        cycle.Id.Should().Be("learning-default-agent-d-first");
        cycle.Decisions.Should().Equal(CycleDecisions.TrialStarted);
        await Wait.UntilAsync(() => _received.Count(e => e.Type == FeedbackTopics.FeedbackRecordedType) >= 6, "six feedback-recorded deliveries");
        await Wait.UntilAsync(() => _received.Any(e => e.Type == FeedbackTopics.StrategyChangedType), "a strategy-changed delivery");
        await _app.Sidecar.WhenDeliveriesSettledAsync();
        _received.Where(e => e.Type == FeedbackTopics.FeedbackRecordedType).Select(e => e.Data.GetProperty("feedbackId").GetString())
            .Should().HaveCount(6, "the repeat's republish carries the same event id and is not handled twice");
        _received.First().Source.Should().Be("feedback");
        _app.Sidecar.GrpcRequests<PublishEventRequest>("PublishEvent").Should().Contain(r => r.PubsubName == "pubsub" && r.Topic == FeedbackTopics.FeedbackRecorded);
        _app.Sidecar.AssertNoViolations();
    }

    [Fact]
    public async Task MemoryFeedbackWithAQuery_OnDapr_ReachesTheTallyThroughTheSidecar_AndCountsOnlyForSimilarQueries()
    {
        var response = await PostAsync("v1/feedback", new RecordFeedbackRequest("fb-m1", new FeedbackTarget("memory", "mem-a"), null, "user", "helpful",
            JsonSerializer.SerializeToElement(false), Query: "morning appointments clinic"));
        response.StatusCode.Should().Be(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());

        await Wait.UntilAsync(() => _received.Any(e => e.Type == FeedbackTopics.FeedbackRecordedType), "the feedback-recorded delivery");
        await _app.Sidecar.WhenDeliveriesSettledAsync();
        var scores = _app.Services.GetRequiredService<MemoryFeedbackScores>();

        _received.Single(e => e.Type == FeedbackTopics.FeedbackRecordedType).Data.GetProperty("query").GetString().Should().Be("morning appointments clinic");
        (await scores.ScoresAsync("default", ["mem-a"], "Which clinic for morning appointments?", CancellationToken.None))
            .Should().ContainKey("mem-a").WhoseValue.Should().BeApproximately(-0.5, 1e-9, "the same words: the feedback counts fully");
        (await scores.ScoresAsync("default", ["mem-a"], "Which city is the clinic in?", CancellationToken.None))
            .Should().BeEmpty("an unrelated query is not moved");
        _app.Sidecar.GrpcRequests<SaveStateRequest>("SaveState").Should().Contain(r => r.States.Any(st => st.Key.Contains("mem-a", StringComparison.Ordinal)));
        _app.Sidecar.AssertNoViolations();
    }
}
