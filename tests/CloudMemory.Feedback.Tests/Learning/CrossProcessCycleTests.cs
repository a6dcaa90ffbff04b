using System.Net;
using System.Text.Json;
using CloudMemory.Contracts.Feedback;
using CloudMemory.Feedback.Tests.Infrastructure;

namespace CloudMemory.Feedback.Tests.Learning;

/// <summary>
/// Two embedded hosts on one PostgreSQL database (two replicas of the feedback app): their learning
/// cycles of one agent never run at the same time, a cycle id runs once, and the history has no
/// duplicates. Without the cross-process lock each host's own workflow runner runs its requests,
/// and both see "no trial running" and start one.
/// </summary>
public sealed class CrossProcessCycleTests : IDisposable
{
    private const string Agent = "agent-x";
    private static readonly Dictionary<string, string?> Settings = new()
    {
        ["CloudMemory:Feedback:Learning:ScheduleInterval"] = "00:00:00",
    };

    private readonly FeedbackHostFactory _first = new(StoreKind.Postgres, Settings);
    private readonly FeedbackHostFactory _second = new(StoreKind.Postgres, Settings);
    private readonly string _tenant = "t-" + Guid.NewGuid().ToString("N")[..10];

    public void Dispose()
    {
        _first.Dispose();
        _second.Dispose();
    }

    [Fact]
    public async Task CyclesOfOneAgentFromTwoHosts_NeverOverlap_EachIdRunsOnce_OneTrialStarts()
    {
        using var a = _first.CreateClient();
        using var b = _second.CreateClient();
        for (var i = 0; i < 12; i++)
        {
            await RateAsync(i % 2 == 0 ? a : b, $"before-{i}", 2, 1200, "way too long");
        }
        for (var i = 0; i < 6; i++)
        {
            await RateAsync(a, $"liked-{i}", 5, 300);
        }

        // Each shared id is asked of both hosts at once; each host also runs ids of its own.
        var shared = Enumerable.Range(1, 5).Select(i => $"k{i}").ToList();
        var calls = new List<Task<(string Id, HttpStatusCode Status)>>();
        foreach (var id in shared)
        {
            calls.Add(CycleAsync(a, id));
            calls.Add(CycleAsync(b, id));
        }
        calls.AddRange(Enumerable.Range(1, 3).Select(i => CycleAsync(a, $"a{i}")));
        calls.AddRange(Enumerable.Range(1, 3).Select(i => CycleAsync(b, $"b{i}")));
        var answers = await Task.WhenAll(calls);

        answers.Should().OnlyContain(r => r.Status == HttpStatusCode.Created || r.Status == HttpStatusCode.OK);
        foreach (var id in shared)
        {
            answers.Where(r => r.Id == id).Select(r => r.Status).Should().BeEquivalentTo([HttpStatusCode.Created, HttpStatusCode.OK],
                $"cycle {id} runs on one host; the other answers the stored cycle");
        }

        var history = await (await a.GetAsync($"/v1/learning/cycles?agentId={Agent}&limit=100", _tenant)).ReadAsync<LearningCyclePage>();
        history.Items.Select(c => c.Id).Should().OnlyHaveUniqueItems().And.HaveCount(shared.Count + 6);
        var ordered = history.Items.OrderBy(c => c.StartedAt).ToList();
        for (var i = 1; i < ordered.Count; i++)
        {
            ordered[i].StartedAt.Should().BeOnOrAfter(ordered[i - 1].CompletedAt, $"cycle {ordered[i].Id} started while {ordered[i - 1].Id} was running");
        }
        history.Items.Count(c => c.Decisions.Contains(CycleDecisions.TrialStarted)).Should().Be(1, "the first cycle starts the trial; every later one finds it running");
        var strategies = await (await b.GetAsync($"/v1/agents/{Agent}/strategies", _tenant)).ReadAsync<List<Strategy>>();
        strategies.Count(s => s.Status == StrategyStatuses.Trial).Should().Be(1);
    }

    private async Task RateAsync(HttpClient client, string conversationId, int rating, int length, params string[] issues) =>
        (await client.PostJsonAsync("/v1/feedback", new RecordFeedbackRequest(null, new FeedbackTarget("conversation", conversationId), Agent, "user", "rating",
            JsonSerializer.SerializeToElement(rating), null, issues, Metrics: new Dictionary<string, double> { ["responseLength"] = length }), _tenant))
            .EnsureSuccessStatusCode();

    private async Task<(string, HttpStatusCode)> CycleAsync(HttpClient client, string id)
    {
        using var response = await client.PostJsonAsync("/v1/learning/cycles", new RunLearningCycleRequest(Agent, id), _tenant);
        return (id, response.StatusCode);
    }
}
