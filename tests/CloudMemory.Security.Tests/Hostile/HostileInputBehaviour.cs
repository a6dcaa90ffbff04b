using System.Net;
using System.Text;
using System.Text.Json;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Security.Tests.Infrastructure;

namespace CloudMemory.Security.Tests.Hostile;

/// <summary>
/// A generated corpus of hostile requests over every operation of the OpenAPI document: hostile
/// ids in every route parameter, hostile bodies and headers. No answer is a 5xx, every error is
/// problem+json with a stable code, and a rejected request changes nothing the tenant can read.
/// Written once, run on every host (<see cref="RuntimeKind"/> x <see cref="StoreKind"/>): the same
/// generator and seed; <paramref name="cases"/> bounds the run (docs/security.md lists the sizes).
/// With <paramref name="auth"/> jwt every request carries the tenant's token (one in ten a bad or no
/// token), drawn from a generator of its own so the corpus itself does not change.
/// </summary>
public abstract class HostileInputBehaviour(RuntimeKind runtime, StoreKind kind, int cases, AuthKind auth = AuthKind.None) : IAsyncLifetime
{
    /// <summary>Cases of a full run (both Embedded hosts, and the Dapr apps on sidecar state).</summary>
    public const int FullCorpus = 1200;

    /// <summary>
    /// Cases of the slower Dapr variants (JWT, PostgreSQL), to keep the project's CI time: the first
    /// cases of the same seeded generator, so every operation is still covered several times.
    /// </summary>
    public const int SampledCorpus = 400;

    private static readonly string[] HostileIds =
    [
        "..", ".", "../../etc/passwd", "a\u0001b", new string('x', 5000), "a b", "a%2Fb", "' OR 1=1 --", "<script>", "🦀", "a||b", "%00", "-", "\u202Eevil",
    ];

    private static readonly string?[] HostileBodies =
    [
        null, "", "null", "[]", "{}", "\"text\"", "123", "{", "{\"a\":", new string('[', 5000) + new string(']', 5000),
        "{\"conversationId\":null,\"userId\":null,\"userQuery\":null,\"agentResponse\":null,\"content\":null,\"query\":null}",
        "{\"conversationId\":\"../x\",\"userId\":\"a\\u0001\",\"content\":\"x\",\"query\":\"x\",\"userQuery\":\"q\",\"agentResponse\":\"a\"}",
        "{\"content\":\"a\\u0000b\",\"query\":\"a\\u0000\",\"userQuery\":\"\\u0000\",\"agentResponse\":\"x\",\"summary\":\"\\u0000\"}",
        "{\"topK\":-1,\"recentTurns\":-5,\"limit\":-1,\"ttlSeconds\":-1,\"maxTokens\":-1,\"query\":\"x\",\"content\":\"x\"}",
        "{\"topK\":1e308,\"recentTurns\":99999999999,\"query\":\"x\",\"content\":\"x\"}",
        "{\"meta\":null,\"userSnapshot\":null,\"globalState\":null}",
        "{\"meta\":{\"conversationId\":null},\"userSnapshot\":{\"userId\":null,\"allergies\":null}}",
        "{\"userSnapshot\":{\"allergies\":[null,1,{}]}}",
        "{\"createdAt\":\"not a date\",\"content\":\"x\"}",
        "{\"content\":\"" + new string('y', 300_000) + "\"}",
        "{\"mode\":\"nonsense\",\"fusion\":\"nonsense\",\"semanticWeight\":-3,\"query\":\"x\"}",
        "{\"filters\":{\"unknown\":1},\"query\":\"x\"}",
        "{\"agentId\":\"../root\",\"admin\":\"yes\"}",
    ];

    private readonly string _tenant = SecureHost.NewId("hostile");
    private readonly string _conversation = SecureHost.NewId("victim");
    private readonly TestJwt _jwt = new();
    private ISuiteHost _host = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        var settings = new Dictionary<string, string?> { ["CloudMemory:Memory:AutoCheckpoint"] = "false" };
        if (auth == AuthKind.Jwt)
        {
            _jwt.AddSettings(settings);
        }
        else
        {
            auth.Should().Be(AuthKind.None, "the hostile suite runs without authentication or with JWTs");
        }
        _host = await SuiteHosts.StartAsync(runtime, kind, settings);
        _http = _host.CreateClient();
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _host.DisposeAsync();
    }

    /// <summary>An operation of the public API; <paramref name="IsStream"/> when its success answer is a server-sent event stream.</summary>
    private sealed record Operation(string Method, string Path, bool IsStream);

    // Every /v1 operation of the host's OpenAPI documents (in Dapr mode the union of the four apps' documents).
    private async Task<List<Operation>> OperationsAsync()
    {
        var operations = new List<Operation>();
        foreach (var doc in await _host.OpenApiDocumentsAsync())
        {
            using (doc)
            {
                foreach (var path in doc.RootElement.GetProperty("paths").EnumerateObject())
                {
                    if (!path.Name.StartsWith("/v1", StringComparison.Ordinal))
                    {
                        continue;
                    }
                    foreach (var method in path.Value.EnumerateObject())
                    {
                        var operation = new Operation(method.Name.ToUpperInvariant(), path.Name, IsEventStream(method.Value));
                        if (method.Name is "get" or "post" or "put" or "delete" or "patch" && !operations.Contains(operation))
                        {
                            operations.Add(operation);
                        }
                    }
                }
            }
        }
        return operations;
    }

    private static bool IsEventStream(JsonElement operation) =>
        operation.TryGetProperty("responses", out var responses)
        && responses.TryGetProperty("200", out var ok)
        && ok.TryGetProperty("content", out var content)
        && content.TryGetProperty("text/event-stream", out _);

    // Everything the tenant can read about the seeded objects.
    private async Task<string> FingerprintAsync()
    {
        await _host.WhenQuietAsync();
        var parts = new List<string>();
        foreach (var url in new[] { $"/v1/sessions/{_conversation}", "/v1/memories?limit=1000", $"/v1/conversations/{_conversation}/messages?limit=1000" })
        {
            var response = await _http.SendAsync(Http.Request(HttpMethod.Get, url, tenant: _tenant, bearer: Bearer()));
            var body = await response.Content.ReadAsStringAsync();
            parts.Add($"{(int)response.StatusCode} {SecureHost.WithoutVolatileFields(body)}");
        }
        return string.Join("\n", parts);
    }

    private string? Bearer() => auth == AuthKind.Jwt ? _jwt.Token(_tenant) : null;

    private async Task SeedAsync()
    {
        (await _http.SendAsync(Http.Request(HttpMethod.Post, "/v1/sessions", new CreateSessionRequest(_conversation, "user-1"), _tenant, bearer: Bearer()))).StatusCode.Should().Be(HttpStatusCode.Created);
        (await _http.SendAsync(Http.Request(HttpMethod.Post, $"/v1/sessions/{_conversation}/turns", new WriteTurnRequest(null, "triage", "I am allergic to penicillin.", "Noted."), _tenant, bearer: Bearer()))).StatusCode.Should().Be(HttpStatusCode.OK);
        (await _http.SendAsync(Http.Request(HttpMethod.Post, "/v1/memories", new { content = "Allergic to penicillin.", id = "m1" }, _tenant, bearer: Bearer()))).StatusCode.Should().Be(HttpStatusCode.Created);
    }

    [Fact]
    public async Task HostileCorpus_NoServerError_ProblemWithCode_RejectedChangesNothing()
    {
        var operations = await OperationsAsync();
        operations.Count.Should().BeGreaterThan(10);
        // The event stream (embedded host; session app on Dapr) is in the corpus, recognised as a stream by its OpenAPI entry.
        operations.Should().Contain(new Operation("GET", "/v1/events", IsStream: true));
        await SeedAsync();
        var fingerprint = await FingerprintAsync();
        var random = new Random(20261128);
        var credentials = new Random(7);
        var failures = new List<string>();
        var perOperation = new Dictionary<string, int>();
        for (var i = 0; i < cases; i++)
        {
            // Every operation is covered evenly; the rest of each case is drawn at random.
            var operation = operations[i % operations.Count];
            var ids = new List<string>();
            var url = System.Text.RegularExpressions.Regex.Replace(operation.Path, "\\{[^}]+\\}", _ =>
            {
                var id = random.Next(3) == 0 ? (random.Next(2) == 0 ? _conversation : "m1") : HostileIds[random.Next(HostileIds.Length)];
                ids.Add(id);
                return Uri.EscapeDataString(id);
            });
            if (random.Next(4) == 0)
            {
                url += "?limit=" + (random.Next(2) == 0 ? "-1" : "abc") + "&after=-5&userId=" + Uri.EscapeDataString(HostileIds[random.Next(HostileIds.Length)]);
            }
            var body = HostileBodies[random.Next(HostileBodies.Length)];
            using var request = new HttpRequestMessage(new HttpMethod(operation.Method), url);
            if (body is not null && operation.Method is not "GET" and not "DELETE")
            {
                var bytes = random.Next(15) == 0 ? [0x7B, 0x22, 0xC3, 0x28, 0x22, 0x7D] : Encoding.UTF8.GetBytes(body);
                request.Content = new ByteArrayContent(bytes);
                request.Content.Headers.ContentType = new("application/json");
            }
            request.Headers.TryAddWithoutValidation("X-Tenant-Id", random.Next(10) == 0 ? HostileIds[random.Next(HostileIds.Length)] : _tenant);
            if (random.Next(3) == 0)
            {
                request.Headers.TryAddWithoutValidation("X-Agent-Id", random.Next(2) == 0 ? "triage" : HostileIds[random.Next(HostileIds.Length)]);
            }
            if (random.Next(3) == 0)
            {
                request.Headers.TryAddWithoutValidation("If-Match", random.Next(2) == 0 ? "*" : "\"garbage\"");
            }
            if (auth == AuthKind.Jwt)
            {
                var roll = credentials.Next(20);
                if (roll > 1)
                {
                    request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + _jwt.Token(_tenant, roll % 2 == 0 ? "triage" : null));
                }
                else if (roll == 1)
                {
                    request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + HostileIds[credentials.Next(HostileIds.Length)]);
                }
            }
            perOperation[$"{operation.Method} {operation.Path}"] = perOperation.GetValueOrDefault($"{operation.Method} {operation.Path}") + 1;

            using var hang = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            HttpResponseMessage sent;
            try
            {
                // A stream's answer is judged by its status and headers: an accepted stream never ends.
                sent = await _http.SendAsync(request, operation.IsStream ? HttpCompletionOption.ResponseHeadersRead : HttpCompletionOption.ResponseContentRead, hang.Token);
            }
            catch (OperationCanceledException) when (hang.IsCancellationRequested)
            {
                failures.Add($"#{i} {operation.Method} {url[..Math.Min(url.Length, 120)]}: no answer in 30 s");
                continue;
            }
            using var response = sent;
            var status = (int)response.StatusCode;
            var label = $"#{i} {operation.Method} {url[..Math.Min(url.Length, 120)]} body={body?[..Math.Min(body.Length, 80)]} -> {status}";
            if (operation.IsStream && status == 200)
            {
                response.Content.Headers.ContentType?.MediaType.Should().Be("text/event-stream", label);
                response.Dispose(); // the client hangs up
                fingerprint = await FingerprintAsync();
                continue;
            }
            var text = await response.Content.ReadAsStringAsync();
            if (status >= 500)
            {
                failures.Add($"{label}: server error {text[..Math.Min(text.Length, 300)]}");
                continue;
            }
            if (status < 400)
            {
                fingerprint = await FingerprintAsync();
                continue;
            }
            // Kestrel refuses a request line beyond its limit (8 KB: e.g. two 5000-character ids in one path) with a bare
            // 414 before any middleware runs, so no problem details can be written; it must still change nothing (below).
            var refusedByServer = status == 414 && url.Length > 8 * 1024;
            if (!refusedByServer && (response.Content.Headers.ContentType?.MediaType != "application/problem+json" || !HasCode(text)))
            {
                failures.Add($"{label}: not problem+json with a code: {response.Content.Headers.ContentType} {text[..Math.Min(text.Length, 200)]}");
            }
            var after = await FingerprintAsync();
            if (after != fingerprint)
            {
                var changed = after.Split('\n').Zip(fingerprint.Split('\n')).FirstOrDefault(p => p.First != p.Second);
                failures.Add($"{label} {text[..Math.Min(text.Length, 300)]}: a rejected request changed the tenant's state: before {changed.Second?[..Math.Min(changed.Second.Length, 600)]} after {changed.First?[..Math.Min(changed.First.Length, 600)]}");
                fingerprint = after;
            }
        }
        if (cases >= operations.Count)
        {
            perOperation.Should().HaveCount(operations.Count);
        }
        failures.Should().BeEmpty(string.Join("\n", failures.Take(30)));
        _host.AssertNoViolations();
    }

    private static bool HasCode(string text)
    {
        try
        {
            using var json = JsonDocument.Parse(text);
            return json.RootElement.TryGetProperty("code", out var code) && code.ValueKind == JsonValueKind.String && code.GetString()!.Length > 0;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}

public sealed class HostileInputInMemoryTests() : HostileInputBehaviour(RuntimeKind.Embedded, StoreKind.InMemory, FullCorpus);

public sealed class HostileInputPostgresTests() : HostileInputBehaviour(RuntimeKind.Embedded, StoreKind.Postgres, FullCorpus);

/// <summary>The four Dapr apps over the fake sidecar, state in the sidecar's store (see docs/security.md for the sizes).</summary>
public sealed class HostileInputDaprTests() : HostileInputBehaviour(RuntimeKind.Dapr, StoreKind.InMemory, FullCorpus);

/// <summary>The four Dapr apps over the fake sidecar sharing one PostgreSQL database (log, memories, traces, keys).</summary>
/// <summary>The four Dapr apps over the fake sidecar with authentication on (JWTs forwarded between the apps).</summary>
public sealed class HostileInputDaprJwtTests() : HostileInputBehaviour(RuntimeKind.Dapr, StoreKind.InMemory, SampledCorpus, AuthKind.Jwt);

public sealed class HostileInputDaprPostgresTests() : HostileInputBehaviour(RuntimeKind.Dapr, StoreKind.Postgres, SampledCorpus);
