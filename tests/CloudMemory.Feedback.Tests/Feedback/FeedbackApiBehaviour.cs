using System.Net;
using System.Text.Json;
using CloudMemory.Contracts.Feedback;
using CloudMemory.Feedback.Tests.Infrastructure;

namespace CloudMemory.Feedback.Tests.Feedback;

/// <summary>Feedback over HTTP in the embedded host; one suite on the in-memory store and on PostgreSQL.</summary>
public abstract partial class FeedbackApiBehaviour : IDisposable
{
    private readonly FeedbackHostFactory _factory;
    private readonly HttpClient _client;
    private readonly string _tenant = "t-" + Guid.NewGuid().ToString("N")[..10];

    protected FeedbackApiBehaviour(StoreKind kind)
    {
        _factory = new FeedbackHostFactory(kind);
        _client = _factory.CreateRecordingClient();
    }

    public void Dispose()
    {
        _client.Dispose();
        _factory.Dispose();
        GC.SuppressFinalize(this);
    }

    private static JsonElement Json(object value) => JsonSerializer.SerializeToElement(value);

    private static RecordFeedbackRequest Rating(string? id, int rating, string traceId = "trace-1", string agent = "agent-a", IReadOnlyList<string>? issues = null) =>
        new(id, new FeedbackTarget(FeedbackTargetTypes.Trace, traceId), agent, FeedbackKinds.User, "rating", Json(rating), "ok", issues);

    private Task<HttpResponseMessage> PostAsync(RecordFeedbackRequest request, string? tenant = null) =>
        _client.PostJsonAsync("/v1/feedback", request, tenant ?? _tenant);

    private async Task<FeedbackPage> ListAsync(string query, string? tenant = null) =>
        await (await _client.GetAsync("/v1/feedback?" + query, tenant ?? _tenant)).ReadAsync<FeedbackPage>();

    [Fact]
    public async Task Record_NewThenSameIdAgain_Returns201Then200_StoredOnce()
    {
        var first = await PostAsync(Rating("fb-1", 4));
        var repeat = await PostAsync(Rating("fb-1", 4));

        first.StatusCode.Should().Be(HttpStatusCode.Created);
        repeat.StatusCode.Should().Be(HttpStatusCode.OK);
        var stored = await first.ReadAsync<FeedbackRecord>();
        stored.Score.Should().Be(0.5, "4 on a 1..5 scale is halfway between neutral and best");
        (await repeat.ReadAsync<FeedbackRecord>()).Should().BeEquivalentTo(stored, o => o.ComparingByMembers<JsonElement>().Excluding(r => r.Value));
        (await ListAsync("targetType=trace&targetId=trace-1")).Items.Should().ContainSingle().Which.Id.Should().Be("fb-1");
    }

    [Fact]
    public async Task Record_SameIdOtherContent_Returns409_AndKeepsTheOriginal()
    {
        (await PostAsync(Rating("fb-1", 4))).StatusCode.Should().Be(HttpStatusCode.Created);

        var problem = await (await PostAsync(Rating("fb-1", 1))).ProblemAsync(409);

        problem.GetProperty("code").GetString().Should().Be("feedback-id-conflict");
        var item = (await ListAsync("targetId=trace-1")).Items.Should().ContainSingle().Subject;
        item.Value.GetInt32().Should().Be(4);
    }

    [Fact]
    public async Task Record_PublishesFeedbackRecorded_WithTenantTargetAndScore()
    {
        await PostAsync(new RecordFeedbackRequest("fb-m", new FeedbackTarget(FeedbackTargetTypes.Memory, "mem-1"), null, FeedbackKinds.User, "helpful", Json(false)));
        await _factory.WhenQuietAsync();

        var recorded = _factory.EventsOfType(FeedbackTopics.FeedbackRecordedType).Should().ContainSingle(e => e.TenantId == _tenant).Subject;
        var data = recorded.Data.Deserialize<FeedbackRecorded>(CloudMemory.Contracts.ContractsJson.Options)!;
        data.TargetType.Should().Be("memory");
        data.TargetId.Should().Be("mem-1");
        data.Score.Should().Be(-1);
        recorded.Topic.Should().Be(FeedbackTopics.FeedbackRecorded);
    }

    [Theory]
    [InlineData("{\"target\":{\"type\":\"planet\",\"id\":\"x\"},\"kind\":\"user\",\"name\":\"rating\",\"value\":3}", "invalid-target-type")]
    [InlineData("{\"kind\":\"user\",\"name\":\"rating\",\"value\":3}", "missing-target")]
    [InlineData("{\"target\":{\"type\":\"trace\",\"id\":\"a/b\"},\"kind\":\"user\",\"name\":\"rating\",\"value\":3}", "invalid-target-id")]
    [InlineData("{\"target\":{\"type\":\"trace\",\"id\":\"t\"},\"kind\":\"robot\",\"name\":\"rating\",\"value\":3}", "invalid-kind")]
    [InlineData("{\"target\":{\"type\":\"trace\",\"id\":\"t\"},\"kind\":\"user\",\"name\":\"stars\",\"value\":3}", "unknown-feedback-name")]
    [InlineData("{\"target\":{\"type\":\"trace\",\"id\":\"t\"},\"kind\":\"user\",\"name\":\"rating\",\"value\":9}", "invalid-feedback-value")]
    [InlineData("{\"target\":{\"type\":\"trace\",\"id\":\"t\"},\"kind\":\"user\",\"name\":\"rating\",\"value\":\"5\"}", "invalid-feedback-value")]
    [InlineData("{\"target\":{\"type\":\"trace\",\"id\":\"t\"},\"kind\":\"user\",\"name\":\"rating\"}", "missing-value")]
    [InlineData("{\"target\":{\"type\":\"trace\",\"id\":\"t\"},\"kind\":\"user\",\"name\":\"thumbs\",\"value\":1}", "invalid-feedback-value")]
    [InlineData("{\"target\":{\"type\":\"conversation\",\"id\":\"c1\"},\"conversationId\":\"c2\",\"kind\":\"user\",\"name\":\"rating\",\"value\":3}", "conversation-mismatch")]
    [InlineData("{\"target\":{\"type\":\"memory\",\"id\":\"m1\"},\"kind\":\"user\",\"name\":\"helpful\",\"value\":false,\"query\":\"  \"}", "invalid-query")]
    [InlineData("{\"target\":{\"type\":\"memory\",\"id\":\"m1\"},\"kind\":\"user\",\"name\":\"helpful\",\"value\":false,\"stepId\":\"s1\"}", "missing-trace-id")]
    [InlineData("{\"target\":{\"type\":\"memory\",\"id\":\"m1\"},\"kind\":\"user\",\"name\":\"helpful\",\"value\":false,\"traceId\":\"a/b\",\"stepId\":\"s1\"}", "invalid-traceId")]
    public async Task Record_BadInput_Returns400WithCode_AndStoresNothing(string body, string code)
    {
        using var content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/feedback") { Content = content };
        request.Headers.Add("X-Tenant-Id", _tenant);

        var problem = await (await _client.SendAsync(request)).ProblemAsync(400);

        problem.GetProperty("code").GetString().Should().Be(code);
        (await ListAsync("limit=10")).Items.Should().BeEmpty();
    }

    [Fact]
    public async Task Configs_CategoricalConfig_ValidatesValuesAndScoresBestFirst()
    {
        var config = new FeedbackConfig("answer_quality", FeedbackValueTypes.Categorical, Values: ["excellent", "fine", "bad"]);
        (await _client.SendJsonAsync(HttpMethod.Put, "/v1/feedback/configs/answer_quality", config, _tenant)).StatusCode.Should().Be(HttpStatusCode.OK);

        var bad = await (await PostAsync(new RecordFeedbackRequest(null, new FeedbackTarget("step", "s1"), "agent-a", "user", "answer_quality", Json("bad")))).ReadAsync<FeedbackRecord>();
        var fine = await (await PostAsync(new RecordFeedbackRequest(null, new FeedbackTarget("step", "s1"), "agent-a", "user", "answer_quality", Json("fine")))).ReadAsync<FeedbackRecord>();
        var unknown = await (await PostAsync(new RecordFeedbackRequest(null, new FeedbackTarget("step", "s1"), "agent-a", "user", "answer_quality", Json("meh")))).ProblemAsync(400);
        var otherTenant = await (await PostAsync(new RecordFeedbackRequest(null, new FeedbackTarget("step", "s1"), "agent-a", "user", "answer_quality", Json("fine")), "other-" + _tenant)).ProblemAsync(400);

        bad.Score.Should().Be(-1);
        fine.Score.Should().Be(0);
        unknown.GetProperty("code").GetString().Should().Be("invalid-feedback-value");
        otherTenant.GetProperty("code").GetString().Should().Be("unknown-feedback-name", "configs belong to one tenant");
        var configs = await (await _client.GetAsync("/v1/feedback/configs", _tenant)).ReadAsync<JsonElement>();
        configs.GetProperty("items").EnumerateArray().Select(c => c.GetProperty("name").GetString()).Should().Contain(["answer_quality", "rating", "thumbs"]);
    }

    [Fact]
    public async Task Configs_InvalidDefinition_Returns400()
    {
        var problem = await (await _client.SendJsonAsync(HttpMethod.Put, "/v1/feedback/configs/q", new FeedbackConfig("q", FeedbackValueTypes.Categorical), _tenant)).ProblemAsync(400);
        problem.GetProperty("code").GetString().Should().Be("invalid-config-values");
        (await _client.GetAsync("/v1/feedback/configs/q", _tenant)).StatusCode.Should().Be(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task List_FiltersByTargetAndAgent_AndPagesWithoutGapsOrRepeats()
    {
        for (var i = 0; i < 7; i++)
        {
            (await PostAsync(Rating($"a-{i}", 1 + i % 5, traceId: i % 2 == 0 ? "trace-even" : "trace-odd"))).StatusCode.Should().Be(HttpStatusCode.Created);
        }
        (await PostAsync(Rating("b-0", 5, agent: "agent-b"))).StatusCode.Should().Be(HttpStatusCode.Created);

        var seen = new List<string>();
        string? cursor = null;
        do
        {
            var page = await ListAsync("agentId=agent-a&limit=3" + (cursor is null ? "" : "&cursor=" + cursor));
            page.Items.Count.Should().BeLessThanOrEqualTo(3);
            seen.AddRange(page.Items.Select(i => i.Id));
            cursor = page.NextCursor;
        }
        while (cursor is not null);

        seen.Should().Equal(Enumerable.Range(0, 7).Reverse().Select(i => $"a-{i}"), "newest first, each once");
        (await ListAsync("targetType=trace&targetId=trace-even")).Items.Select(i => i.Id).Should().BeEquivalentTo(["a-0", "a-2", "a-4", "a-6"]);
        (await ListAsync("agentId=agent-b")).Items.Should().ContainSingle().Which.Id.Should().Be("b-0");
        (await (await _client.GetAsync("/v1/feedback?cursor=abc", _tenant)).ProblemAsync(400)).GetProperty("code").GetString().Should().Be("invalid-cursor");
    }

    [Theory]
    [InlineData("/v1/feedback?limit=0", "invalid-limit")]
    [InlineData("/v1/feedback?limit=501", "invalid-limit")]
    [InlineData("/v1/feedback?cursor=-3", "invalid-cursor")]
    [InlineData("/v1/feedback?cursor=0", "invalid-cursor")]
    [InlineData("/v1/learning/cycles?limit=0", "invalid-limit")]
    [InlineData("/v1/learning/cycles?limit=501", "invalid-limit")]
    public async Task Listings_BadLimitOrCursor_Return400WithThePagingCodesOfEveryListing(string url, string code)
    {
        (await PostAsync(Rating("fb-1", 4))).StatusCode.Should().Be(HttpStatusCode.Created);

        var problem = await (await _client.GetAsync(url, _tenant)).ProblemAsync(400);

        problem.GetProperty("code").GetString().Should().Be(code);
    }

    [Fact]
    public async Task List_WithoutALimit_Pages50_AndAcceptsUpTo500()
    {
        for (var i = 0; i < 51; i++)
        {
            (await PostAsync(Rating($"p-{i}", 1 + i % 5))).StatusCode.Should().Be(HttpStatusCode.Created);
        }

        var first = await ListAsync("agentId=agent-a");
        var all = await ListAsync("agentId=agent-a&limit=500");
        var rest = await ListAsync("agentId=agent-a&cursor=" + first.NextCursor);

        first.Items.Should().HaveCount(50);
        first.NextCursor.Should().NotBeNull();
        all.Items.Should().HaveCount(51);
        all.NextCursor.Should().BeNull();
        rest.Items.Should().ContainSingle().Which.Id.Should().Be("p-0");
    }

    [Fact]
    public async Task Tenants_SeeOnlyTheirOwnFeedback_AndTheSameIdIsIndependent()
    {
        var other = "other-" + _tenant;
        (await PostAsync(Rating("shared-id", 5))).StatusCode.Should().Be(HttpStatusCode.Created);
        (await PostAsync(Rating("shared-id", 1), other)).StatusCode.Should().Be(HttpStatusCode.Created, "ids are per tenant");

        (await ListAsync("targetId=trace-1")).Items.Should().ContainSingle().Which.Value.GetInt32().Should().Be(5);
        (await ListAsync("targetId=trace-1", other)).Items.Should().ContainSingle().Which.Value.GetInt32().Should().Be(1);
    }
}

public sealed class InMemoryFeedbackApiTests() : FeedbackApiBehaviour(StoreKind.InMemory);

public sealed class PostgresFeedbackApiTests() : FeedbackApiBehaviour(StoreKind.Postgres);
