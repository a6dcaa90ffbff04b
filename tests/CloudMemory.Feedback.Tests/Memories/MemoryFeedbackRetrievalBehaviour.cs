using System.Text.Json;
using CloudMemory.Context.Features.Memories;
using CloudMemory.Contracts.Feedback;
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

    private async Task<Dictionary<string, double>> SearchAsync()
    {
        var response = await (await _client.PostJsonAsync("/v1/memories/search", new MemorySearchRequest("morning appointments clinic", 10, SearchModes.Lexical), _tenant))
            .ReadAsync<MemorySearchResponse>();
        return response.Hits.ToDictionary(h => h.Entry.Id, h => h.Score);
    }

    private static double Relative(Dictionary<string, double> scores) => scores["mem-a"] / scores["mem-b"];

    private async Task<HttpResponseMessage> HelpfulAsync(string feedbackId, string entryId, bool helpful, string? tenant = null)
    {
        var response = await _client.PostJsonAsync("/v1/feedback", new RecordFeedbackRequest(feedbackId, new FeedbackTarget("memory", entryId), null, "user", "helpful",
            JsonSerializer.SerializeToElement(helpful)), tenant ?? _tenant);
        response.EnsureSuccessStatusCode();
        await _factory.WhenQuietAsync();
        return response;
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
