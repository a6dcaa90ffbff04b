using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Security.Tests.Infrastructure;
using CloudMemory.Session.Features.Sessions;

namespace CloudMemory.Security.Tests.Robustness;

/// <summary>
/// Inputs that answered 500 (or were stored although invalid) before: each now gets a 400 problem
/// with a stable code and changes nothing, identically on the in-memory and PostgreSQL stores.
/// </summary>
public abstract class BadInputBehaviour : IDisposable
{
    private readonly SecureHost _host;
    private readonly HttpClient _http;
    private readonly string _tenant = SecureHost.NewId("t");

    protected BadInputBehaviour(StoreKind kind)
    {
        _host = new SecureHost(kind);
        _http = _host.CreateClient();
        _http.DefaultRequestHeaders.Add("X-Tenant-Id", _tenant);
    }

    public void Dispose()
    {
        _http.Dispose();
        _host.Dispose();
        GC.SuppressFinalize(this);
    }

    private async Task<string> NewSessionAsync()
    {
        var id = SecureHost.NewId("c");
        (await _http.SendAsync(Http.Request(HttpMethod.Post, "/v1/sessions", new CreateSessionRequest(id, "user-1")))).StatusCode.Should().Be(HttpStatusCode.Created);
        return id;
    }

    private async Task<JsonObject> GetJsonAsync(string id)
    {
        var response = await _http.GetAsync($"/v1/sessions/{id}");
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject();
    }

    private Task<HttpResponseMessage> SendRawAsync(HttpMethod method, string url, byte[] body, string? ifMatch = null)
    {
        var request = new HttpRequestMessage(method, url) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        if (ifMatch is not null)
        {
            request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
        }
        return _http.SendAsync(request);
    }

    private Task<HttpResponseMessage> PutSessionAsync(string id, JsonNode session) =>
        SendRawAsync(HttpMethod.Put, $"/v1/sessions/{id}", Encoding.UTF8.GetBytes(session.ToJsonString()), "*");

    [Theory]
    [InlineData("meta")]
    [InlineData("userSnapshot")]
    [InlineData("globalState")]
    [InlineData("flowContext")]
    [InlineData("messageContext")]
    [InlineData("meta.conversationId")]
    [InlineData("meta.userId")]
    [InlineData("userSnapshot.userId")]
    [InlineData("userSnapshot.allergies")]
    [InlineData("globalState.agentSlots")]
    [InlineData("flowContext.lastBotMessage")]
    public async Task PutSession_NullField_Is400AndChangesNothing(string path)
    {
        var id = await NewSessionAsync();
        var before = await GetJsonAsync(id);
        var body = before.DeepClone().AsObject();
        var parts = path.Split('.');
        var parent = parts.Length == 1 ? body : body[parts[0]]!.AsObject();
        parent[parts[^1]] = null;

        (await (await PutSessionAsync(id, body)).ProblemCodeAsync(400)).Should().Be("null-field");
        (await GetJsonAsync(id)).ToJsonString().Should().Be(before.ToJsonString());
    }

    [Theory]
    [InlineData("meta", "userId", "../../etc/passwd\u0001")]
    [InlineData("userSnapshot", "userId", "../../etc/passwd")]
    [InlineData("userSnapshot", "userId", null)]
    public async Task PutSession_InvalidUserId_Is400LikePostSessions(string section, string field, string? value)
    {
        var id = await NewSessionAsync();
        var before = await GetJsonAsync(id);
        var body = before.DeepClone().AsObject();
        body[section]![field] = value ?? new string('u', 5000);

        (await (await PutSessionAsync(id, body)).ProblemCodeAsync(400)).Should().Be("invalid-userId");
        (await GetJsonAsync(id)).ToJsonString().Should().Be(before.ToJsonString());
    }

    [Fact]
    public async Task PutSession_TooManyAllergies_Is400_AndAThousandMerge()
    {
        var id = await NewSessionAsync();
        var body = (await GetJsonAsync(id)).DeepClone().AsObject();
        body["userSnapshot"]!["allergies"] = new JsonArray(Enumerable.Range(0, 100_000).Select(i => (JsonNode)JsonValue.Create($"a{i}")!).ToArray());
        (await (await PutSessionAsync(id, body)).ProblemCodeAsync(400)).Should().Be("list-too-long");

        body["userSnapshot"]!["allergies"] = new JsonArray(Enumerable.Range(0, SessionInputRules.MaxListItems).Select(i => (JsonNode)JsonValue.Create($"a{i}")!).ToArray());
        (await PutSessionAsync(id, body)).StatusCode.Should().Be(HttpStatusCode.OK);
        var after = await GetJsonAsync(id);
        after["userSnapshot"]!["allergies"]!.AsArray().Should().HaveCount(SessionInputRules.MaxListItems);
    }

    [Fact]
    public void AllergyUnion_KeepsStoredOrder_DropsCaseInsensitiveDuplicates_AndScales()
    {
        SessionMerge.Union(["Peanut", "penicillin"], ["PEANUT", " latex ", "", "Latex"]).Should().Equal("Peanut", "penicillin", "latex");
        var stored = Enumerable.Range(0, 50_000).Select(i => $"s{i}").ToList();
        var incoming = Enumerable.Range(25_000, 50_000).Select(i => $"S{i}").ToList();
        SessionMerge.Union(stored, incoming).Should().HaveCount(75_000);
    }

    [Fact]
    public async Task ChunkedBody_WithoutLength_IsCheckedAndBoundedLikeAnyOther()
    {
        var id = await NewSessionAsync();
        Task<HttpResponseMessage> PutSlotChunkedAsync(byte[] body)
        {
            // Content of unknown length: the body arrives chunked, with no Content-Length (a StreamContent
            // over a MemoryStream would compute one).
            var request = new HttpRequestMessage(HttpMethod.Put, $"/v1/sessions/{id}/agent-slots/triage") { Content = new UnknownLengthContent(body) };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            request.Headers.TransferEncodingChunked = true;
            request.Headers.Add("X-Agent-Id", "triage");
            return _http.SendAsync(request);
        }

        var accepted = await PutSlotChunkedAsync(Encoding.UTF8.GetBytes("{\"step\":\"" + new string('s', 40_000) + "\"}"));
        accepted.StatusCode.Should().Be(HttpStatusCode.OK, "a chunked body under the limit reaches the endpoint whole");
        var before = await GetJsonAsync(id);
        before["globalState"]!["agentSlots"]!["triage"]!["step"]!.GetValue<string>().Should().HaveLength(40_000);

        (await (await PutSlotChunkedAsync([(byte)'{', (byte)'"', 0xC3, 0x28, (byte)'"', (byte)':', (byte)'1', (byte)'}'])).ProblemCodeAsync(400)).Should().Be("invalid-utf8");
        var huge = Encoding.UTF8.GetBytes("{\"step\":\"" + new string('h', RequestTextGuard.MaxBodyBytes) + "\"}");
        (await (await PutSlotChunkedAsync(huge)).ProblemCodeAsync(413)).Should().Be("request-too-large");
        (await GetJsonAsync(id)).ToJsonString().Should().Be(before.ToJsonString());
    }

    [Fact]
    public async Task AgentSlot_InvalidUtf8_Is400()
    {
        var id = await NewSessionAsync();
        var before = await GetJsonAsync(id);
        var body = new byte[] { (byte)'{', (byte)'"', (byte)'a', (byte)'"', (byte)':', (byte)'"', 0xC3, 0x28, 0xFF, (byte)'"', (byte)'}' };
        var request = new HttpRequestMessage(HttpMethod.Put, $"/v1/sessions/{id}/agent-slots/triage") { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Add("X-Agent-Id", "triage");
        (await (await _http.SendAsync(request)).ProblemCodeAsync(400)).Should().Be("invalid-utf8");
        (await GetJsonAsync(id)).ToJsonString().Should().Be(before.ToJsonString());
    }

    [Fact]
    public async Task Nul_InAnyStoredText_Is400OnEveryStore_AndWritesNothing()
    {
        var id = await NewSessionAsync();
        var before = await GetJsonAsync(id);
        var cases = new (HttpMethod Method, string Url, string Json)[]
        {
            (HttpMethod.Post, $"/v1/sessions/{id}/turns", """{"userQuery":"head\u0000ache","agentResponse":"rest"}"""),
            (HttpMethod.Post, $"/v1/sessions/{id}/turns", """{"userQuery":"headache","agentResponse":"re\u0000st"}"""),
            (HttpMethod.Post, $"/v1/sessions/{id}/checkpoints", """{"summary":"sum\u0000mary"}"""),
            (HttpMethod.Post, "/v1/memories", """{"content":"likes \u0000 tea"}"""),
            (HttpMethod.Post, "/v1/memories", """{"content":"likes tea","metadata":{"k":"v\u0000"}}"""),
            (HttpMethod.Post, "/v1/memories/search", """{"query":"tea\u0000"}"""),
            (HttpMethod.Post, "/v1/context/query", $$"""{"conversationId":"{{id}}","query":"what\u0000"}"""),
        };
        foreach (var (method, url, json) in cases)
        {
            var response = await SendRawAsync(method, url, Encoding.UTF8.GetBytes(json));
            (await response.ProblemCodeAsync(400)).Should().Be("nul-character", url + " " + json);
        }
        var slot = new HttpRequestMessage(HttpMethod.Put, $"/v1/sessions/{id}/agent-slots/triage") { Content = new StringContent("""{"note":"a\u0000b"}""", Encoding.UTF8, "application/json") };
        slot.Headers.Add("X-Agent-Id", "triage");
        (await (await _http.SendAsync(slot)).ProblemCodeAsync(400)).Should().Be("nul-character");
        var body = before.DeepClone().AsObject();
        body["userSnapshot"]!["name"] = "Ann\u0000";
        (await (await PutSessionAsync(id, body)).ProblemCodeAsync(400)).Should().Be("nul-character");

        (await GetJsonAsync(id)).ToJsonString().Should().Be(before.ToJsonString());
        var memories = await _http.GetAsync("/v1/memories");
        (await memories.Content.ReadAsStringAsync()).Should().NotContain("tea");

        // An escaped backslash before "u0000" is ordinary text and is accepted.
        var literal = await SendRawAsync(HttpMethod.Post, $"/v1/sessions/{id}/turns", Encoding.UTF8.GetBytes("""{"userQuery":"path C:\\u0000 ok","agentResponse":"fine"}"""));
        literal.StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task QueryString_Nul_Is400()
    {
        (await (await _http.GetAsync("/v1/memories?userId=a%00b")).ProblemCodeAsync(400)).Should().Be("nul-character");
    }

    [Fact]
    public async Task Memory_CreatedAtWithOffset_IsStoredAsTheSameInstantInUtc()
    {
        var response = await SendRawAsync(HttpMethod.Post, "/v1/memories", Encoding.UTF8.GetBytes("""{"content":"prefers morning appointments","createdAt":"2026-03-01T10:00:00+05:30"}"""));
        response.StatusCode.Should().Be(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var createdAt = json.RootElement.GetProperty("createdAt").GetDateTimeOffset();
        createdAt.Should().Be(new DateTimeOffset(2026, 3, 1, 4, 30, 0, TimeSpan.Zero));
        createdAt.Offset.Should().Be(TimeSpan.Zero);
    }
}

/// <summary>Request content that does not tell its length, so it is sent chunked.</summary>
internal sealed class UnknownLengthContent(byte[] body) : HttpContent
{
    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => stream.WriteAsync(body).AsTask();

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }
}

public sealed class BadInputInMemoryTests() : BadInputBehaviour(StoreKind.InMemory);

public sealed class BadInputPostgresTests() : BadInputBehaviour(StoreKind.Postgres);
