using CloudMemory.Testing;
using System.Net;
using CloudMemory.BuildingBlocks.Invocation;
using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Feedback;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Feedback.Features.Learning;
using CloudMemory.Feedback.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.Feedback.Tests.Experiences;

/// <summary>
/// QueryMemoryContext asks the feedback app for similar experiences when the request opts in, as the
/// caller (tenant forwarded), within a token budget; one suite on both stores.
/// </summary>
public abstract class RelevantExperiencesBehaviour : IDisposable
{
    private readonly FeedbackHostFactory _factory;
    private readonly WebApplicationFactory<Host.Program> _host;
    private readonly HttpClient _client;
    private readonly string _tenant = "t-" + Guid.NewGuid().ToString("N")[..10];

    protected RelevantExperiencesBehaviour(StoreKind kind)
    {
        _factory = new FeedbackHostFactory(kind);
        // Service invocation goes through the test server, as the loopback invoker goes through the host's own port.
        _host = _factory.WithWebHostBuilder(b => b.ConfigureTestServices(s => s.AddTestServerInvoker()));
        _client = _host.CreateClient();
    }

    public void Dispose()
    {
        _client.Dispose();
        _host.Dispose();
        _factory.Dispose();
        GC.SuppressFinalize(this);
    }

    private static readonly TaskContext Flight = new("Book a flight from Rome to Oslo on Friday", Tools: ["search_flights", "book"]);

    private async Task SeedAsync()
    {
        (await _client.PostJsonAsync("/v1/experiences", new RecordExperienceRequest("exp-ok", "travel",
            new TaskContext("Book a flight from Paris to Berlin on Tuesday", Tools: ["search_flights", "book"]),
            new ExecutionResult(true, "tr-9", 5200, Summary: "searched two airlines, booked the cheaper one")), _tenant)).EnsureSuccessStatusCode();
        (await _client.PostJsonAsync("/v1/experiences", new RecordExperienceRequest("exp-bad", "travel",
            new TaskContext("Book a flight from Madrid to Lima on Monday", Tools: ["search_flights", "book"]),
            new ExecutionResult(false, "tr-12", 30000, Summary: "the airline API timed out"), new ExperienceFeedback(1, Issues: ["slow"])), _tenant)).EnsureSuccessStatusCode();
        (await _client.PostJsonAsync("/v1/sessions", new CreateSessionRequest("c1", "u1"), _tenant)).EnsureSuccessStatusCode();
    }

    [Fact]
    public async Task Query_OptedIn_ReturnsWhatWorkedAndWhatFailedOnASimilarTask()
    {
        await SeedAsync();
        var context = await (await _client.PostJsonAsync("/v1/context/query",
            new MemoryQueryRequest("c1", Query: "flight to Oslo?", IncludeRelevantExperiences: true, TaskContext: Flight), _tenant)).ReadAsync<MemoryContext>();

        // Two past patterns of the same intent (other cities): the one that worked ranks first.
        var experiences = context.RelevantExperiences!;
        experiences.Should().HaveCount(2);
        experiences.Should().OnlyContain(e => e.Intent.Contains("flight", StringComparison.Ordinal) && e.Attempts == 1);
        experiences[0].WorkedTraceId.Should().Be("tr-9");
        experiences[0].Worked.Should().Contain("booked the cheaper one");
        experiences[0].SuccessRate.Should().BeGreaterThan(experiences[1].SuccessRate);
        experiences[1].FailedTraceId.Should().Be("tr-12");
        experiences[1].Failed.Should().Contain("timed out").And.Contain("slow");
        experiences[1].Worked.Should().BeNull();
    }

    [Fact]
    public async Task Query_NotOptedIn_OrTooSmallABudget_CarriesNoExperiences()
    {
        await SeedAsync();
        var plain = await (await _client.PostJsonAsync("/v1/context/query", new MemoryQueryRequest("c1", Query: "flight to Oslo?", TaskContext: Flight), _tenant)).ReadAsync<MemoryContext>();
        plain.RelevantExperiences.Should().BeNull();

        var tiny = await (await _client.PostJsonAsync("/v1/context/query",
            new MemoryQueryRequest("c1", Query: "flight to Oslo?", IncludeRelevantExperiences: true, TaskContext: Flight, MaxExperienceTokens: 5), _tenant)).ReadAsync<MemoryContext>();
        tiny.RelevantExperiences.Should().BeEmpty("one experience takes more than 5 tokens");

        var bad = await _client.PostJsonAsync("/v1/context/query", new MemoryQueryRequest("c1", IncludeRelevantExperiences: true, MaxExperienceTokens: 0), _tenant);
        (await bad.ProblemAsync(400)).GetProperty("code").GetString().Should().Be("invalid-maxExperienceTokens");
    }

    /// <summary>Length complaints about agent "travel" and one cycle: a response_length trial runs.</summary>
    private async Task<Strategy> StartTrialAsync()
    {
        for (var i = 0; i < 12; i++)
        {
            var liked = i % 3 == 0;
            (await _client.PostJsonAsync("/v1/feedback", new RecordFeedbackRequest(null, new FeedbackTarget("conversation", $"old-{i}"), "travel", "user", "rating",
                System.Text.Json.JsonSerializer.SerializeToElement(liked ? 5 : 2), null, liked ? null : ["way too long"],
                Metrics: new Dictionary<string, double> { ["responseLength"] = liked ? 300 : 1200 }), _tenant)).EnsureSuccessStatusCode();
        }
        var cycle = await (await _client.PostJsonAsync("/v1/learning/cycles", new RunLearningCycleRequest("travel"), _tenant)).ReadAsync<LearningCycle>();
        cycle.Decisions.Should().Equal(CycleDecisions.TrialStarted);
        return (await (await _client.GetAsync("/v1/agents/travel/strategy", _tenant)).ReadAsync<AgentStrategy>()).Trial!;
    }

    [Fact]
    public async Task Query_WithIncludeStrategy_CarriesTheAgentsStrategyForThisConversation_AsTheStrategyRouteAnswers()
    {
        var trial = await StartTrialAsync();
        // One conversation in each arm of the trial (the arm is a hash of the trial and conversation ids).
        var ids = Enumerable.Range(0, 64).Select(i => $"conv-{i}").ToList();
        var treated = ids.First(id => LearningEngine.ArmOf(trial.Id, id, trial.TrialShare) == LearningEngine.TreatmentArm);
        var control = ids.First(id => LearningEngine.ArmOf(trial.Id, id, trial.TrialShare) == LearningEngine.ControlArm);
        foreach (var id in new[] { treated, control })
        {
            (await _client.PostJsonAsync("/v1/sessions", new CreateSessionRequest(id, "u1"), _tenant)).EnsureSuccessStatusCode();
        }

        var inTrial = await (await _client.PostJsonAsync("/v1/context/query", new MemoryQueryRequest(treated, Query: "hi", IncludeStrategy: true, AgentId: "travel"), _tenant))
            .ReadAsync<MemoryContext>();
        using var byHeader = new HttpRequestMessage(HttpMethod.Post, "/v1/context/query")
        {
            Content = System.Net.Http.Json.JsonContent.Create(new MemoryQueryRequest(control, Query: "hi", IncludeStrategy: true), options: CloudMemory.Contracts.ContractsJson.Options),
        };
        byHeader.Headers.Add("X-Tenant-Id", _tenant);
        byHeader.Headers.Add("X-Agent-Id", "travel");
        var inControl = await (await _client.SendAsync(byHeader)).ReadAsync<MemoryContext>();
        var plain = await (await _client.PostJsonAsync("/v1/context/query", new MemoryQueryRequest(treated, Query: "hi"), _tenant)).ReadAsync<MemoryContext>();

        inTrial.Strategy!.Arm.Should().Be(LearningEngine.TreatmentArm);
        inTrial.Strategy.Parameters.Should().ContainKey("maxLength").WhoseValue.Should().Be(trial.Parameters["maxLength"]);
        inTrial.Strategy.Trial!.Id.Should().Be(trial.Id);
        inControl.Strategy!.Arm.Should().Be(LearningEngine.ControlArm);
        inControl.Strategy.Parameters.Should().BeEmpty("the control arm keeps the current (here: no) strategy");
        var route = await (await _client.GetAsync($"/v1/agents/travel/strategy?conversationId={treated}", _tenant)).ReadAsync<AgentStrategy>();
        inTrial.Strategy.Should().BeEquivalentTo(route);
        plain.Strategy.Should().BeNull("not asked for");
    }

    [Fact]
    public async Task Query_WithIncludeStrategy_WithoutAnAgent_Is400_AndAnotherTenantGetsNoneOfThisStrategy()
    {
        await StartTrialAsync();
        var other = "o-" + Guid.NewGuid().ToString("N")[..10];
        (await _client.PostJsonAsync("/v1/sessions", new CreateSessionRequest("c1", "u1"), other)).EnsureSuccessStatusCode();

        var problem = await (await _client.PostJsonAsync("/v1/context/query", new MemoryQueryRequest("c1", IncludeStrategy: true), other)).ProblemAsync(400);
        var otherTenant = await (await _client.PostJsonAsync("/v1/context/query", new MemoryQueryRequest("c1", IncludeStrategy: true, AgentId: "travel"), other))
            .ReadAsync<MemoryContext>();

        problem.GetProperty("code").GetString().Should().Be("missing-agentId");
        otherTenant.Strategy!.Trial.Should().BeNull();
        otherTenant.Strategy.Parameters.Should().BeEmpty();
    }

    [Fact]
    public async Task Query_AnotherTenant_SeesNoneOfTheseExperiences()
    {
        await SeedAsync();
        var other = "o-" + Guid.NewGuid().ToString("N")[..10];
        (await _client.PostJsonAsync("/v1/sessions", new CreateSessionRequest("c1", "u1"), other)).EnsureSuccessStatusCode();
        var context = await (await _client.PostJsonAsync("/v1/context/query",
            new MemoryQueryRequest("c1", Query: "flight to Oslo?", IncludeRelevantExperiences: true, TaskContext: Flight), other)).ReadAsync<MemoryContext>();
        context.RelevantExperiences.Should().BeEmpty();
    }
}

public sealed class InMemoryRelevantExperiencesTests() : RelevantExperiencesBehaviour(StoreKind.InMemory);

public sealed class PostgresRelevantExperiencesTests() : RelevantExperiencesBehaviour(StoreKind.Postgres);
