using System.Net;
using CloudMemory.Feedback.Features.Experiences;
using CloudMemory.Feedback.Tests.Infrastructure;
using CloudMemory.Contracts.Feedback;

namespace CloudMemory.Feedback.Tests.Experiences;

/// <summary>The experience database over HTTP; one suite on the in-memory store and on PostgreSQL.</summary>
public abstract class ExperienceApiBehaviour : IDisposable
{
    private readonly FeedbackHostFactory _factory;
    private readonly HttpClient _client;
    private readonly string _tenant = "t-" + Guid.NewGuid().ToString("N")[..10];

    protected ExperienceApiBehaviour(StoreKind kind)
    {
        _factory = new FeedbackHostFactory(kind);
        _client = _factory.CreateClient();
    }

    public void Dispose()
    {
        _client.Dispose();
        _factory.Dispose();
        GC.SuppressFinalize(this);
    }

    private Task<HttpResponseMessage> RecordAsync(string? id, TaskContext context, bool success, string? tenant = null) =>
        _client.PostJsonAsync("/v1/experiences", new RecordExperienceRequest(id, "agent-a", context, new ExecutionResult(success, "trace-" + id, 1200, 0.01)), tenant ?? _tenant);

    private async Task<SimilarExperiences> SearchAsync(SearchExperiencesRequest request, string? tenant = null) =>
        await (await _client.PostJsonAsync("/v1/experiences/search", request, tenant ?? _tenant)).ReadAsync<SimilarExperiences>();

    private async Task SeedAsync()
    {
        var good = new TaskContext(Intent: "book_flight", Tools: ["search_flights", "book"], Steps: ["plan", "search", "book"]);
        var poor = new TaskContext(Intent: "book_flight", Tools: ["web_search"], Steps: ["search", "book"]);
        var other = new TaskContext(Intent: "cancel_subscription", Tools: ["billing"]);
        for (var i = 0; i < 5; i++)
        {
            (await RecordAsync($"good-{i}", good, success: i != 2)).StatusCode.Should().Be(HttpStatusCode.Created);
            (await RecordAsync($"poor-{i}", poor, success: i == 0)).StatusCode.Should().Be(HttpStatusCode.Created);
            (await RecordAsync($"other-{i}", other, success: true)).StatusCode.Should().Be(HttpStatusCode.Created);
        }
    }

    [Fact]
    public async Task Search_ThresholdNeedsTwoIntentWords_FindsPatternsSharingAnyTwo_NotOne()
    {
        // Intent and tools only: at 0.6 a candidate must share 2 of the 4 intent tokens
        // (i:book_cheap_flight, w:book, w:cheap, w:flight); book_flight shares w:book and w:flight only.
        (await RecordAsync("e-exact", new TaskContext(Intent: "book_cheap_flight", Tools: ["search"]), success: true)).EnsureSuccessStatusCode();
        (await RecordAsync("e-two", new TaskContext(Intent: "book_flight", Tools: ["search"]), success: true)).EnsureSuccessStatusCode();
        (await RecordAsync("e-one", new TaskContext(Intent: "cheap_hotel", Tools: ["search"]), success: true)).EnsureSuccessStatusCode();

        var found = await SearchAsync(new SearchExperiencesRequest(new TaskContext(Intent: "book_cheap_flight", Tools: ["search"]), MinSimilarity: 0.6));

        found.Items.Select(i => i.Pattern.Intent).Should().Equal("book_cheap_flight", "book_flight");
        found.Items[1].Similarity.Should().BeApproximately((0.5 * 2 / 3 + 0.2) / 0.7, 1e-3, "intent Jaccard 2/3, tools the same");
        found.CandidatesScored.Should().Be(2, "cheap_hotel shares one intent word and cannot reach 0.6: it is not fetched");
    }

    [Fact]
    public async Task Search_SharedIntentWordsButTooManyOfItsOwn_IsNotRead_APatternThatCanReachTheThresholdIs()
    {
        // diagnose_lab_result with a tool at 0.7 needs an intent Jaccard of 0.58: lab_result shares 2 of
        // 3 words (2/3) and is read; compare_lab_result shares the same 2 words but has one of its own
        // (2/4) and can never reach it, so it is not read, however many of them there are.
        foreach (var (id, intent) in new[] { ("e-same", "diagnose_lab_result"), ("e-sub", "lab_result"), ("e-own-1", "compare_lab_result"), ("e-own-2", "explain_lab_result") })
        {
            (await RecordAsync(id, new TaskContext(Intent: intent, Tools: ["ocr"]), success: true)).EnsureSuccessStatusCode();
        }

        var found = await SearchAsync(new SearchExperiencesRequest(new TaskContext(Intent: "diagnose_lab_result", Tools: ["ocr"])));

        found.Items.Select(i => i.Pattern.Intent).Should().Equal("diagnose_lab_result", "lab_result");
        found.CandidatesScored.Should().Be(2, "the patterns with a word of their own are not fetched");
        var loose = await SearchAsync(new SearchExperiencesRequest(new TaskContext(Intent: "diagnose_lab_result", Tools: ["ocr"]), MinSimilarity: 0.6));
        loose.Items.Select(i => i.Pattern.Intent).Should().BeEquivalentTo(["diagnose_lab_result", "lab_result", "compare_lab_result", "explain_lab_result"],
            "at 0.6 an intent Jaccard of 2/4 is enough");
    }

    [Fact]
    public async Task Record_FromADescription_ExtractsIntentAndEntities_AndIsIdempotentById()
    {
        var context = new TaskContext("Book a flight from Paris to Berlin on Tuesday", Tools: ["search_flights"]);
        var created = await RecordAsync("e-1", context, success: true);
        var repeat = await RecordAsync("e-1", context, success: true);

        created.StatusCode.Should().Be(HttpStatusCode.Created);
        repeat.StatusCode.Should().Be(HttpStatusCode.OK);
        var pattern = (await created.ReadAsync<Experience>()).Pattern;
        pattern.Intent.Should().Be("book_flight");
        pattern.Entities.Should().Equal("berlin", "paris", "tuesday");
        var found = await SearchAsync(new SearchExperiencesRequest(new TaskContext("Book a flight from Rome to Oslo", Tools: ["search_flights"])));
        found.Items.Should().ContainSingle().Which.Attempts.Should().Be(1, "the repeat did not count twice");
    }

    [Fact]
    public async Task Search_RanksBySuccessRateAndSimilarity_WithReasonsAndWhatWorkedAndFailed()
    {
        await SeedAsync();

        var result = await SearchAsync(new SearchExperiencesRequest(new TaskContext(Intent: "Book flight", Tools: ["search_flights"])));

        result.Items.Select(i => i.Pattern.Tools[0]).Should().Equal(["book", "web_search"], "the 4-of-5 pattern ranks above the 1-of-5 one; the unrelated intent is not similar");
        var best = result.Items[0];
        best.Similarity.Should().BeGreaterThanOrEqualTo(0.7);
        best.Successes.Should().Be(4);
        best.Attempts.Should().Be(5);
        best.Reason.Should().Contain("same intent 'book_flight'").And.Contain("search_flights").And.Contain("4 of 5");
        best.LastSuccess!.Id.Should().Be("good-4");
        best.LastFailure!.Id.Should().Be("good-2");
        best.AverageDurationMs.Should().Be(1200);
        result.Items[1].SuccessRate.Should().BeLessThan(best.SuccessRate);
    }

    [Fact]
    public async Task Search_MinSimilarity_ExcludesLessSimilarPatterns_AndOtherTenantsSeeNothing()
    {
        await SeedAsync();

        var strict = await SearchAsync(new SearchExperiencesRequest(new TaskContext(Intent: "book_flight", Tools: ["search_flights"]), MinSimilarity: 0.8));
        var otherTenant = await SearchAsync(new SearchExperiencesRequest(new TaskContext(Intent: "book_flight")), "other-" + _tenant);

        strict.Items.Should().ContainSingle().Which.Pattern.Tools.Should().Contain("search_flights");
        otherTenant.Items.Should().BeEmpty();
    }

    [Theory]
    [InlineData("/v1/experiences", "{\"result\":{\"success\":true}}", "missing-task-context")]
    [InlineData("/v1/experiences", "{\"taskContext\":{\"intent\":\"x\"}}", "missing-result")]
    [InlineData("/v1/experiences", "{\"taskContext\":{\"intent\":\"x\"},\"result\":{}}", "missing-success")]
    [InlineData("/v1/experiences", "{\"taskContext\":{\"intent\":\"x\"},\"result\":{\"success\":true,\"durationMs\":-1}}", "invalid-result")]
    [InlineData("/v1/experiences/search", "{\"taskContext\":{\"intent\":\"x\"},\"minSimilarity\":2}", "invalid-min-similarity")]
    [InlineData("/v1/experiences/search", "{\"taskContext\":{\"intent\":\"x\"},\"topK\":0}", "invalid-top-k")]
    public async Task BadInput_Returns400WithCode(string url, string body, string code)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json") };
        request.Headers.Add("X-Tenant-Id", _tenant);
        (await (await _client.SendAsync(request)).ProblemAsync(400)).GetProperty("code").GetString().Should().Be(code);
    }
}

public sealed class InMemoryExperienceApiTests() : ExperienceApiBehaviour(StoreKind.InMemory);

public sealed class PostgresExperienceApiTests() : ExperienceApiBehaviour(StoreKind.Postgres);

public sealed class TaskPatternTests
{
    [Fact]
    public void Compare_StepSignature_CountsEditDistance()
    {
        var a = TaskPatterns.Extract(new TaskContext(Intent: "triage", Steps: ["ask", "lookup", "answer"]));
        var b = TaskPatterns.Extract(new TaskContext(Intent: "triage", Steps: ["ask", "answer"]));

        var (similarity, match) = TaskPatterns.Compare(a, b);

        match.Steps.Should().BeApproximately(2.0 / 3, 1e-3);
        similarity.Should().BeApproximately((0.5 + 0.15 * 2.0 / 3) / 0.65, 1e-3);
        a.Key.Should().NotBe(b.Key);
        TaskPatterns.Extract(new TaskContext(Intent: "Triage", Steps: ["ASK", "lookup", "answer"])).Key.Should().Be(a.Key, "patterns are normalized");
    }
}
