using System.Net.Http.Json;
using System.Text.Json;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Dapr.Tests.FakeSidecar;
using CloudMemory.Session;

namespace CloudMemory.Dapr.Tests.Services;

/// <summary>
/// <c>GET /v1/events</c> on the Dapr runtime: the session app, composed as its Program.cs composes
/// it, follows every known topic through the (fake) sidecar's pub/sub and streams its deliveries to
/// followers — per tenant, resumable with <c>Last-Event-ID</c> — as the embedded host does.
/// </summary>
public sealed class EventStreamOnDaprTests : IAsyncLifetime
{
    private DaprTestApp _app = null!;
    private HttpClient _client = null!;

    public async Task InitializeAsync()
    {
        _app = await DaprTestApp.StartServiceAsync(new ManualTimeProvider(), SessionServiceCollectionExtensions.AppId,
            builder => builder.AddSessionServices(), app => app.MapSessionEndpoints(), new Dictionary<string, string?> { ["CloudMemory:Llm:Endpoint"] = "" });
        _client = new HttpClient { BaseAddress = _app.AppBase, Timeout = Timeout.InfiniteTimeSpan };
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _app.DisposeAsync();
    }

    private async Task WriteTurnAsync(string tenant, string conversationId, string text)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"v1/sessions/{conversationId}/turns")
        {
            Content = JsonContent.Create(new WriteTurnRequest(null, "triage", text, "noted"), options: ContractsJson.Options),
        };
        request.Headers.Add(Tenant.HeaderName, tenant);
        using var response = await _client.SendAsync(request);
        response.IsSuccessStatusCode.Should().BeTrue(await response.Content.ReadAsStringAsync());
    }

    private async Task CreateAsync(string tenant, string conversationId)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/sessions")
        {
            Content = JsonContent.Create(new CreateSessionRequest(conversationId, "u1"), options: ContractsJson.Options),
        };
        request.Headers.Add(Tenant.HeaderName, tenant);
        using var response = await _client.SendAsync(request);
        response.IsSuccessStatusCode.Should().BeTrue(await response.Content.ReadAsStringAsync());
    }

    private async Task<(HttpResponseMessage Response, StreamReader Reader)> FollowAsync(string tenant, string? lastEventId = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "v1/events?topics=turn-written");
        request.Headers.Add(Tenant.HeaderName, tenant);
        if (lastEventId is not null)
        {
            request.Headers.Add("Last-Event-ID", lastEventId);
        }
        var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.IsSuccessStatusCode.Should().BeTrue();
        response.Content.Headers.ContentType!.MediaType.Should().Be("text/event-stream");
        return (response, new StreamReader(await response.Content.ReadAsStreamAsync()));
    }

    // The next event of the stream (comments such as heartbeats skipped): its id and CloudEvent.
    private static async Task<(string Id, JsonElement CloudEvent)> NextEventAsync(StreamReader reader)
    {
        using var timeout = new CancellationTokenSource(Wait.Timeout);
        string? id = null, data = null;
        while (true)
        {
            var line = await reader.ReadLineAsync(timeout.Token) ?? throw new InvalidOperationException("the stream ended");
            if (line.StartsWith("id: ", StringComparison.Ordinal))
            {
                id = line[4..];
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                data = line[6..];
            }
            else if (line.Length == 0 && data is not null)
            {
                return (id!, JsonSerializer.Deserialize<JsonElement>(data));
            }
        }
    }

    [Fact]
    public async Task Followers_GetTheirTenantsTurnsThroughTheSidecar_AndResumeWithLastEventId()
    {
        var conversation = "c-" + Guid.NewGuid().ToString("N")[..8];
        await CreateAsync("tenant-a", conversation);
        await CreateAsync("tenant-b", conversation);
        var (response, reader) = await FollowAsync("tenant-a");
        using (response)
        using (reader)
        {
            // Tenant b's turn goes first: had it leaked, it would be the first event tenant a sees.
            await WriteTurnAsync("tenant-b", conversation, "b's secret question");
            await WriteTurnAsync("tenant-a", conversation, "a's first question");
            var (firstId, first) = await NextEventAsync(reader);
            first.GetProperty("tenantid").GetString().Should().Be("tenant-a");
            first.GetProperty("data").GetProperty("userQuery").GetString().Should().Be("a's first question");

            await WriteTurnAsync("tenant-a", conversation, "a's second question");
            var (secondId, second) = await NextEventAsync(reader);
            second.GetProperty("data").GetProperty("userQuery").GetString().Should().Be("a's second question");

            // A follower that lost its connection after the first event gets the second one replayed.
            var (again, resumed) = await FollowAsync("tenant-a", lastEventId: firstId);
            using (again)
            using (resumed)
            {
                var (replayedId, _) = await NextEventAsync(resumed);
                replayedId.Should().Be(secondId);
            }
        }
        _app.Sidecar.AssertNoViolations();
    }
}
