using System.Text.Json;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Session.Tests.Infrastructure;

namespace CloudMemory.Session.Tests.Http;

/// <summary>The embedded host's server-sent event stream for agents following a conversation.</summary>
public sealed class EventStreamTests : IDisposable
{
    private readonly CloudMemoryFactory _factory = new(LogKind.InMemory);

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task Stream_DeliversOnlyTheCallersTenantAndConversation_AsCloudEvents()
    {
        var client = _factory.CreateClient();
        await client.PostJsonAsync("/v1/sessions", new CreateSessionRequest("followed", "u1"));
        await client.PostJsonAsync("/v1/sessions", new CreateSessionRequest("other", "u1"));
        await client.PostJsonAsync("/v1/sessions", new CreateSessionRequest("followed", "u1"), tenant: "tenant-b");

        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/events?topics=turn-written&conversationId=followed");
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.Content.Headers.ContentType!.MediaType.Should().Be("text/event-stream");
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        (await reader.ReadLineAsync()).Should().Be(": connected");

        await client.PostJsonAsync("/v1/sessions/followed/turns", new WriteTurnRequest(null, null, "tenant b speaks", "hidden"), tenant: "tenant-b");
        await client.PostJsonAsync("/v1/sessions/other/turns", new WriteTurnRequest(null, null, "other conversation", "hidden"));
        await client.PostJsonAsync("/v1/sessions/followed/turns", new WriteTurnRequest(null, null, "hello", "hi there"));

        var (eventType, data) = await NextEventAsync(reader).WaitAsync(TimeSpan.FromSeconds(10));
        eventType.Should().Be("cloudmemory.turn.written.v1");
        data.GetProperty("tenantid").GetString().Should().Be("default");
        data.GetProperty("data").GetProperty("userQuery").GetString().Should().Be("hello");
        data.GetProperty("specversion").GetString().Should().Be("1.0");
        data.GetProperty("datacontenttype").GetString().Should().Be("application/json");
        data.GetProperty("topic").GetString().Should().Be("turn-written");
        DateTimeOffset.Parse(data.GetProperty("time").GetString()!, System.Globalization.CultureInfo.InvariantCulture).Should().BeAfter(DateTimeOffset.UnixEpoch);
    }

    [Fact]
    public async Task Stream_WithInvalidConversationId_Is400()
    {
        var response = await _factory.CreateClient().GetAsync("/v1/events?conversationId=a%2Fb");
        await response.ProblemAsync(400);
    }

    [Fact]
    public async Task Reconnect_WithLastEventId_ReplaysWhatWasMissed_ThenGoesLive_OnlyForTheCallersTenant()
    {
        var client = _factory.CreateRecordingClient();
        await client.PostJsonAsync("/v1/sessions", new CreateSessionRequest("c1", "u1"));
        for (var i = 1; i <= 3; i++)
        {
            await client.PostJsonAsync("/v1/sessions/c1/turns", new WriteTurnRequest(null, null, $"q{i}", $"a{i}"));
        }
        await client.PostJsonAsync("/v1/sessions", new CreateSessionRequest("c1", "u1"), tenant: "tenant-b");
        await client.PostJsonAsync("/v1/sessions/c1/turns", new WriteTurnRequest(null, null, "tenant b", "hidden"), tenant: "tenant-b");
        var seen = _factory.EventsOfType("cloudmemory.turn.written.v1").First(e => e.TenantId is null or "default").Id;

        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/events?topics=turn-written");
        request.Headers.Add("Last-Event-ID", seen);
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());

        (await NextEventAsync(reader).WaitAsync(TimeSpan.FromSeconds(10))).Data.GetProperty("data").GetProperty("userQuery").GetString().Should().Be("q2");
        (await NextEventAsync(reader).WaitAsync(TimeSpan.FromSeconds(10))).Data.GetProperty("data").GetProperty("userQuery").GetString().Should().Be("q3");
        await client.PostJsonAsync("/v1/sessions/c1/turns", new WriteTurnRequest(null, null, "q4", "a4"));
        (await NextEventAsync(reader).WaitAsync(TimeSpan.FromSeconds(10))).Data.GetProperty("data").GetProperty("userQuery").GetString().Should().Be("q4", "the tenant-b turn is never replayed to this tenant");
    }

    [Fact]
    public async Task Reconnect_WithAnIdNoLongerKept_SaysSoAndReplaysOnlyTheBoundedBuffer()
    {
        using var factory = new CloudMemoryFactory(LogKind.InMemory, new Dictionary<string, string?> { ["CloudMemory:Events:ReplayBufferSize"] = "2" });
        var client = factory.CreateRecordingClient();
        await client.PostJsonAsync("/v1/sessions", new CreateSessionRequest("c1", "u1"));
        for (var i = 1; i <= 4; i++)
        {
            await client.PostJsonAsync("/v1/sessions/c1/turns", new WriteTurnRequest(null, null, $"q{i}", $"a{i}"));
        }
        var evicted = factory.EventsOfType("cloudmemory.turn.written.v1")[0].Id;

        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/events?topics=turn-written&lastEventId={evicted}");
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());

        var lines = new List<string>();
        while (lines.Count(l => l.StartsWith("data: ", StringComparison.Ordinal)) < 2)
        {
            lines.Add((await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10)))!);
        }
        lines.Should().Contain(l => l.StartsWith(": replay-gap", StringComparison.Ordinal));
        lines.Where(l => l.StartsWith("data: ", StringComparison.Ordinal))
            .Select(l => JsonDocument.Parse(l[6..]).RootElement.GetProperty("data").GetProperty("userQuery").GetString())
            .Should().Equal("q3", "q4");
    }

    [Fact]
    public async Task IdleStream_SendsHeartbeatComments()
    {
        using var factory = new CloudMemoryFactory(LogKind.InMemory, new Dictionary<string, string?> { ["CloudMemory:Events:HeartbeatSeconds"] = "0.2" });
        using var response = await factory.CreateClient().GetAsync("/v1/events", HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());

        (await reader.ReadLineAsync()).Should().Be(": connected");
        string? line;
        do
        {
            line = await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        while (line == "");
        line.Should().Be(": heartbeat");
    }

    [Fact]
    public async Task Stream_WithAnUnknownTopic_Is400()
    {
        var problem = await (await _factory.CreateClient().GetAsync("/v1/events?topics=turn-written,turn-writen")).ProblemAsync(400);
        problem.GetProperty("code").GetString().Should().Be("unknown-topic");
        problem.GetProperty("detail").GetString().Should().Contain("turn-writen");
    }

    private static async Task<(string Type, JsonElement Data)> NextEventAsync(StreamReader reader)
    {
        string? type = null;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                type = line["event: ".Length..];
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                return (type!, JsonDocument.Parse(line["data: ".Length..]).RootElement.Clone());
            }
        }
        throw new EndOfStreamException();
    }
}
