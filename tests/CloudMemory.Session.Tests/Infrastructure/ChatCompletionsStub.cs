using System.Text.Json;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;

namespace CloudMemory.Session.Tests.Infrastructure;

/// <summary>
/// An OpenAI-compatible <c>POST /v1/chat/completions</c> on loopback (WireMock.Net): answers with
/// <see cref="Reply"/>, or fails with a status; the requests it received are in WireMock's log.
/// </summary>
public sealed class ChatCompletionsStub : IDisposable
{
    private const string Path = "/v1/chat/completions";
    private static readonly Guid MappingId = Guid.Parse("5d0f64f4-6b1e-4a43-9f0e-1b8f3a6c2d10");
    private readonly WireMockServer _server = WireMockServer.Start();

    public ChatCompletionsStub() => RepliesWith("Headache for 3 days with fever; advised rest and fluids.");

    /// <summary>The base address an OpenAI client is given (…/v1).</summary>
    public Uri Endpoint => new(_server.Url + "/v1");

    /// <summary>The summary the stub answers with.</summary>
    public string Reply { get; private set; } = "";

    /// <summary>The JSON bodies received, oldest first.</summary>
    public IReadOnlyList<JsonElement> Requests => Received().Select(e => JsonDocument.Parse(e.Body!).RootElement.Clone()).ToList();

    /// <summary>The Authorization headers received, oldest first.</summary>
    public IReadOnlyList<string> Authorizations =>
        Received().Select(e => e.Headers is { } h && h.TryGetValue("Authorization", out var v) ? v.ToString() : "").ToList();

    /// <summary>Answers every completion with <paramref name="reply"/> as the assistant message.</summary>
    public void RepliesWith(string reply)
    {
        Reply = reply;
        _server.Given(Request.Create().WithPath(Path).UsingPost()).WithGuid(MappingId).RespondWith(Response.Create()
            .WithStatusCode(200)
            .WithBodyAsJson(new
            {
                id = "chatcmpl-1",
                @object = "chat.completion",
                created = 1_700_000_000,
                model = "gpt-test",
                choices = new[] { new { index = 0, message = new { role = "assistant", content = reply }, finish_reason = "stop" } },
                usage = new { prompt_tokens = 10, completion_tokens = 10, total_tokens = 20 },
            }));
    }

    /// <summary>Fails every completion with <paramref name="status"/> and an OpenAI error body.</summary>
    public void FailsWith(int status) =>
        _server.Given(Request.Create().WithPath(Path).UsingPost()).WithGuid(MappingId).RespondWith(Response.Create()
            .WithStatusCode(status)
            .WithBodyAsJson(new { error = new { message = "unavailable", type = "server_error" } }));

    private IEnumerable<WireMock.IRequestMessage> Received() =>
        _server.LogEntries.Select(e => e.RequestMessage).Where(r => r.Path == Path).OrderBy(r => r.DateTime);

    public void Dispose() => _server.Stop();
}
