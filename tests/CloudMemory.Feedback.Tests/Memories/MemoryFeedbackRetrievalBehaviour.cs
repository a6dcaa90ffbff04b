using System.Text.Json;
using CloudMemory.Context.Features.Memories;
using CloudMemory.Contracts.Feedback;
using CloudMemory.Contracts.Traces;
using CloudMemory.Feedback.Tests.Infrastructure;

namespace CloudMemory.Feedback.Tests.Memories;

/// <summary>
/// End to end in the embedded host: feedback on a memory entry (feedback app) reaches the context
/// app over pub/sub and changes the entry's rank in search. On in-memory stores and on PostgreSQL.
/// </summary>
public abstract class MemoryFeedbackRetrievalBehaviour : IDisposable
{
    private readonly FeedbackHostFactory _factory;
    private readonly HttpClient _client;
    private readonly string _tenant = "t-" + Guid.NewGuid().ToString("N")[..10];

    protected MemoryFeedbackRetrievalBehaviour(StoreKind kind)
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

    private const string TrainedQuery = "morning appointments clinic";
    private const string SimilarQuery = "Which clinic for morning appointments, Berlin or Hamburg?";
    private const string UnrelatedQuery = "Which city is the clinic in?";

    private async Task<Dictionary<string, double>> SearchAsync(string query = TrainedQuery)
    {
        var response = await (await _client.PostJsonAsync("/v1/memories/search", new MemorySearchRequest(query, 10, SearchModes.Lexical), _tenant))
            .ReadAsync<MemorySearchResponse>();
        return response.Hits.ToDictionary(h => h.Entry.Id, h => h.Score);
    }

    private static double Relative(Dictionary<string, double> scores) => scores["mem-a"] / scores["mem-b"];

    private async Task<HttpResponseMessage> HelpfulAsync(string feedbackId, string entryId, bool helpful, string? tenant = null, string? query = null)
    {
        var response = await _client.PostJsonAsync("/v1/feedback", new RecordFeedbackRequest(feedbackId, new FeedbackTarget("memory", entryId), null, "user", "helpful",
            JsonSerializer.SerializeToElement(helpful), Query: query), tenant ?? _tenant);
        response.EnsureSuccessStatusCode();
        await _factory.WhenQuietAsync();
        return response;
    }

    private async Task TwoClinicsAsync()
    {
        foreach (var (id, city) in new[] { ("mem-a", "Berlin"), ("mem-b", "Hamburg") })
        {
            (await _client.PostJsonAsync("/v1/memories", new CreateMemoryRequest($"Prefers morning appointments at the {city} clinic.", MemoryTypes.Preference, id), _tenant))
                .EnsureSuccessStatusCode();
        }
    }

    // mem-a's score relative to mem-b's (same text but the city, no feedback) for each query.
    private async Task<Dictionary<string, double>> RelativesAsync()
    {
        var relatives = new Dictionary<string, double>();
        foreach (var query in new[] { TrainedQuery, SimilarQuery, UnrelatedQuery })
        {
            relatives[query] = Relative(await SearchAsync(query));
        }
        return relatives;
    }

    [Fact]
    public async Task FeedbackWithAQuery_DemotesForThatAndSimilarQueries_NotForAnUnrelatedOne()
    {
        await TwoClinicsAsync();
        var before = await RelativesAsync();

        var response = await HelpfulAsync("fb-q1", "mem-a", helpful: false, query: TrainedQuery);
        var after = await RelativesAsync();

        (await response.ReadAsync<FeedbackRecord>()).Query.Should().Be(TrainedQuery);
        (after[TrainedQuery] / before[TrainedQuery]).Should().BeApproximately(0.75, 0.01, "the same query: the feedback counts fully, s = -1 / 2");
        (after[SimilarQuery] / before[SimilarQuery]).Should().BeLessThan(0.95, "a query sharing most of its words is demoted too")
            .And.BeGreaterThan(after[TrainedQuery] / before[TrainedQuery] - 0.001, "but by less than the query the feedback was given for");
        (after[UnrelatedQuery] / before[UnrelatedQuery]).Should().BeApproximately(1.0, 0.001, "a query sharing only 'clinic' is not the question the entry was wrong for");

        await HelpfulAsync("fb-q2", "mem-a", helpful: false, query: "Berlin doctor visit");
        (Relative(await SearchAsync(UnrelatedQuery)) / before[UnrelatedQuery]).Should().BeApproximately(1.0, 0.001,
            "feedback from two different queries is not yet a global prior (UserFeedbackPriorQueries = 3)");
    }

    [Fact]
    public async Task FeedbackNamingARetrievalStep_TakesTheStepsQuery()
    {
        await TwoClinicsAsync();
        (await _client.PostJsonAsync("/v1/traces/steps", new IngestStepsRequest([new TraceStepInput
        {
            TraceId = "tr-1", StepId = "retrieve", StepIndex = 0, StepType = StepTypes.Retrieval,
            Inputs = JsonSerializer.SerializeToElement(new { query = TrainedQuery, topK = 5 }),
        }]), _tenant)).EnsureSuccessStatusCode();
        var before = await RelativesAsync();

        var response = await _client.PostJsonAsync("/v1/feedback", new RecordFeedbackRequest("fb-s1", new FeedbackTarget("memory", "mem-a"), null, "user", "helpful",
            JsonSerializer.SerializeToElement(false), TraceId: "tr-1", StepId: "retrieve"), _tenant);
        var repeat = await _client.PostJsonAsync("/v1/feedback", new RecordFeedbackRequest("fb-s1", new FeedbackTarget("memory", "mem-a"), null, "user", "helpful",
            JsonSerializer.SerializeToElement(false), TraceId: "tr-1", StepId: "retrieve"), _tenant);
        await _factory.WhenQuietAsync();
        var after = await RelativesAsync();

        response.StatusCode.Should().Be(System.Net.HttpStatusCode.Created);
        repeat.StatusCode.Should().Be(System.Net.HttpStatusCode.OK, "a retry is the same feedback");
        var record = await response.ReadAsync<FeedbackRecord>();
        (record.Query, record.TraceId, record.StepId).Should().Be((TrainedQuery, "tr-1", "retrieve"));
        (after[TrainedQuery] / before[TrainedQuery]).Should().BeApproximately(0.75, 0.01);
        (after[UnrelatedQuery] / before[UnrelatedQuery]).Should().BeApproximately(1.0, 0.001);

        var unknownStep = await _client.PostJsonAsync("/v1/feedback", new RecordFeedbackRequest("fb-s2", new FeedbackTarget("memory", "mem-b"), null, "user", "helpful",
            JsonSerializer.SerializeToElement(true), TraceId: "tr-unknown", StepId: "retrieve"), _tenant);
        (await unknownStep.ReadAsync<FeedbackRecord>()).Query.Should().BeNull("a step the trace app does not know leaves the feedback without a query");
    }

    [Fact]
    public async Task ConsistentFeedbackAcrossManyDissimilarQueries_BecomesAGlobalPrior_MixedFeedbackMuchLess()
    {
        await TwoClinicsAsync();
        var before = Relative(await SearchAsync(UnrelatedQuery));

        await HelpfulAsync("fb-p1", "mem-a", helpful: false, query: TrainedQuery);
        await HelpfulAsync("fb-p2", "mem-a", helpful: false, query: "Berlin doctor visit");
        await HelpfulAsync("fb-p3", "mem-a", helpful: false, query: "preferred time of day");
        var demoted = Relative(await SearchAsync(UnrelatedQuery)) / before;

        demoted.Should().BeApproximately(0.625, 0.01, "three dissimilar queries all say wrong: each counts fully, s = -3 / 4");

        await HelpfulAsync("fb-p4", "mem-a", helpful: true, query: "weekend opening hours");
        await HelpfulAsync("fb-p5", "mem-a", helpful: true, query: "favourite pharmacy nearby");
        var mixed = Relative(await SearchAsync(UnrelatedQuery)) / before;

        // Five groups with means -1, -1, -1, +1, +1: consistency |-1| / 5 = 0.2, s = 0.2 · (-1) / (0.2 · 5 + 1).
        mixed.Should().BeApproximately(0.95, 0.01, "disagreeing queries weaken the prior");
    }

    [Fact]
    public async Task FeedbackOnAMemory_NegativeDemotes_PositivePromotes_OncePerFeedbackId_PerTenant()
    {
        foreach (var (id, city) in new[] { ("mem-a", "Berlin"), ("mem-b", "Hamburg") })
        {
            (await _client.PostJsonAsync("/v1/memories", new CreateMemoryRequest($"Prefers morning appointments at the {city} clinic.", MemoryTypes.Preference, id), _tenant))
                .EnsureSuccessStatusCode();
        }
        var before = await SearchAsync();
        before["mem-a"].Should().BeApproximately(before["mem-b"], before["mem-b"] * 0.01, "both entries match the query alike");

        await HelpfulAsync("fb-1", "mem-a", helpful: false);
        await HelpfulAsync("fb-1", "mem-a", helpful: false); // a retry of the same feedback
        await HelpfulAsync("fb-x", "mem-a", helpful: false, tenant: "other-" + _tenant); // another tenant's entry of the same id
        var demoted = await SearchAsync();

        demoted["mem-a"].Should().BeLessThan(demoted["mem-b"]);
        // Relative to mem-b, which gets the same recency and access boosts but no feedback.
        (Relative(demoted) / Relative(before)).Should().BeApproximately(0.75, 0.01, "one negative: s = -1 / 2, factor 1 + 0.5 s; the retry and the other tenant count for nothing");

        await HelpfulAsync("fb-2", "mem-a", helpful: true);
        await HelpfulAsync("fb-3", "mem-a", helpful: true);
        var promoted = await SearchAsync();

        promoted["mem-a"].Should().BeGreaterThan(promoted["mem-b"], "net positive feedback promotes the entry");
        (Relative(promoted) / Relative(before)).Should().BeApproximately(1.125, 0.01, "s = (-1 + 1 + 1) / 4");
    }
}

public sealed class InMemoryMemoryFeedbackRetrievalTests() : MemoryFeedbackRetrievalBehaviour(StoreKind.InMemory);

public sealed class PostgresMemoryFeedbackRetrievalTests() : MemoryFeedbackRetrievalBehaviour(StoreKind.Postgres);
