using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Events;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Conversations.Summaries;
using CloudMemory.Session.Tests.Infrastructure;

namespace CloudMemory.Session.Tests.Summaries;

public sealed class SummarizerTests
{
    private static LogMessage Turn(long seq, string q, string a) => new($"m{seq}", "c", seq, null, "u", "agent", q, a, false, 1, DateTimeOffset.UnixEpoch);

    [Fact]
    public async Task Extractive_KeepsSymptomsDurationAdviceAndAllergies_AndIsCumulative()
    {
        var summarizer = new ExtractiveSummarizer();
        var input = new SummaryInput("Earlier: sore throat for a week.",
        [
            Turn(1, "Hello!", "Hi, how can I help?"),
            Turn(2, "I have had a headache for 3 days and a fever.", "I recommend rest and fluids; see a doctor if the fever stays above 39."),
            Turn(3, "我头痛三天了，还发烧", "建议多休息，多喝水。"),
        ], new UserProfile { Allergies = ["penicillin"], ChronicDiseases = ["hypertension"] });

        var summary = await summarizer.SummarizeAsync(input);

        summary.Should().StartWith("Earlier: sore throat for a week.");
        summary.Should().Contain("headache for 3 days").And.Contain("I recommend rest").And.Contain("头痛三天");
        summary.Should().Contain("penicillin").And.Contain("hypertension");
        summary.Should().NotContain("Hello!");
    }

    [Fact]
    public async Task Extractive_EveryTurnItSummarises_IsRepresented_WhileTheBudgetLasts_SafetyFirst()
    {
        var turns = Enumerable.Range(1, 15).Select(i => Turn(i, $"q{i}", $"a{i}")).ToList();
        turns[7] = Turn(8, "By the way I am allergic to shellfish, it is serious.", "Noted your shellfish allergy.");

        var summary = await new ExtractiveSummarizer().SummarizeAsync(new SummaryInput("", turns, new UserProfile(), MaxTokens: 200));

        foreach (var i in Enumerable.Range(1, 15).Where(i => i != 8))
        {
            summary.Should().MatchRegex($@"\b[qa]{i}\b", $"turn {i} is summarised");
        }
        summary.Should().Contain("allergic to shellfish");

        var tight = await new ExtractiveSummarizer().SummarizeAsync(new SummaryInput("", turns.Select(t => t with { Query = t.Query + " " + string.Concat(Enumerable.Repeat("and the pain spreads to the back. ", 10)) }).ToList(), new UserProfile(), MaxTokens: 60));
        Conversations.Text.TokenEstimator.Estimate(tight).Should().BeLessThanOrEqualTo(60);
        tight.Should().Contain("allergic to shellfish", "safety facts come first");
    }

    [Fact]
    public async Task Extractive_StaysWithinItsBudget_HoweverLongTheConversation()
    {
        var turns = Enumerable.Range(1, 500).Select(i => Turn(i, $"Day {i}: the pain is worse, maybe 7 of 10.", $"Take note of symptom {i} and book an appointment.")).ToList();
        var summary = await new ExtractiveSummarizer().SummarizeAsync(new SummaryInput(new string('s', 5000), turns, new UserProfile { Allergies = ["latex"] }));

        summary.Length.Should().BeLessThan(ExtractiveSummarizer.TotalBudget + 100);
        summary.Should().Contain("latex");
    }

    [Fact]
    public async Task Extractive_LeavesOutNearDuplicateSentences()
    {
        var turns = Enumerable.Range(1, 6).Select(i => Turn(i, $"I have had a headache for {i} days.", "Any fever? Please rest.")).ToList();

        var summary = await new ExtractiveSummarizer().SummarizeAsync(new SummaryInput("", turns, new UserProfile()));

        summary.Split("Any fever?").Length.Should().Be(2, "the repeated question is kept once");
        summary.Should().Contain("headache");
    }

    [Fact]
    public void SafetyFacts_AreAppendedOnlyWhenMissing()
    {
        var profile = new UserProfile { Allergies = ["Penicillin", "青霉素"] };
        SummarySafety.EnsureSafetyFacts("Allergic to penicillin.", profile).Should().Be("Allergic to penicillin. Allergies: 青霉素.");
        SummarySafety.EnsureSafetyFacts("对青霉素过敏, penicillin", profile).Should().Be("对青霉素过敏, penicillin");
    }

    [Fact]
    public async Task ChatCompletion_SendsTheSeedPromptToTheConfiguredEndpoint_AndKeepsAllergies()
    {
        using var server = new ChatCompletionsStub();
        var summarizer = new ChatCompletionSummarizer(new LlmOptions { Endpoint = server.Endpoint.ToString(), ApiKey = "sk-test", Model = "gpt-test" });

        var summary = await summarizer.SummarizeAsync(new SummaryInput("Earlier: cough.", [Turn(1, "headache 3 days", "rest")], new UserProfile { Allergies = ["penicillin"] }));

        summary.Should().StartWith(server.Reply).And.Contain("Allergies: penicillin");
        var request = server.Requests.Should().ContainSingle().Subject;
        request.GetProperty("model").GetString().Should().Be("gpt-test");
        var prompt = request.GetProperty("messages")[0].GetProperty("content").GetString();
        prompt.Should().Contain("Earlier: cough.").And.Contain("user: headache 3 days").And.Contain("penicillin").And.Contain("allergies");
        server.Authorizations.Should().ContainSingle().Which.Should().Be("Bearer sk-test");
    }

    [Fact]
    public async Task AutomaticCheckpoint_UsesTheLlm_WhenConfigured()
    {
        using var server = new ChatCompletionsStub();
        server.RepliesWith("LLM summary: headache, advised rest.");
        using var factory = new CloudMemoryFactory(LogKind.InMemory, new Dictionary<string, string?>
        {
            ["CloudMemory:Llm:Endpoint"] = server.Endpoint.ToString(),
            ["CloudMemory:Llm:Model"] = "gpt-test",
            ["CloudMemory:Memory:ModelContextWindow"] = "100",
        });
        var client = factory.CreateRecordingClient();
        await client.PostJsonAsync("/v1/sessions", new CreateSessionRequest("llm-conv", "u-llm"));

        for (var i = 0; i < 4; i++)
        {
            await client.PostJsonAsync("/v1/sessions/llm-conv/turns", new WriteTurnRequest(null, null, $"My head has hurt for {i} days, it is getting worse.", "Please rest and drink water."));
        }
        await factory.WhenWorkflowsIdleAsync();

        var session = await (await client.GetAsync("/v1/sessions/llm-conv")).ReadAsync<SessionValue>();
        session.MessageContext.Mode.Should().Be(MemoryMode.SummaryN);
        session.MessageContext.Summary.Should().Be("LLM summary: headache, advised rest.");
        factory.EventsOfType(EventTypes.CheckpointCreated).Should().ContainSingle().Which.Data.GetProperty("automatic").GetBoolean().Should().BeTrue();
    }

    [Fact]
    public async Task AutomaticCheckpoint_FallsBackToExtractive_WhenTheLlmKeepsFailing_AndTheTurnsNeverFail()
    {
        using var server = new ChatCompletionsStub();
        server.FailsWith(400); // not retried by the OpenAI client itself; the workflow retries, then falls back
        using var factory = new CloudMemoryFactory(LogKind.InMemory, new Dictionary<string, string?>
        {
            ["CloudMemory:Llm:Endpoint"] = server.Endpoint.ToString(),
            ["CloudMemory:Memory:ModelContextWindow"] = "100",
        });
        var client = factory.CreateRecordingClient();
        await client.PostJsonAsync("/v1/sessions", new CreateSessionRequest("fallback-conv", "u-fb"));

        for (var i = 0; i < 10; i++)
        {
            var turn = await client.PostJsonAsync("/v1/sessions/fallback-conv/turns", new WriteTurnRequest(null, null, $"My head has hurt for {i} days.", "Please rest."));
            turn.IsSuccessStatusCode.Should().BeTrue();
        }
        await factory.WhenWorkflowsIdleAsync();

        var session = await (await client.GetAsync("/v1/sessions/fallback-conv")).ReadAsync<SessionValue>();
        session.MessageContext.Mode.Should().Be(MemoryMode.SummaryN);
        session.MessageContext.Summary.Should().Contain("My head has hurt");
        server.Requests.Count.Should().BeGreaterThanOrEqualTo(3, "the summarize activity was retried per its policy before falling back");
    }
}
