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
