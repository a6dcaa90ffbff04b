using System.Net;
using System.Text.Json;
using CloudMemory.Contracts.Auth;
using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Security.Tests.Infrastructure;

namespace CloudMemory.Security.Tests.CrossTenant;

/// <summary>
/// Two tenants with the same conversation, memory and agent ids: every read, write, search, list
/// and context query of one shows nothing of the other and changes nothing of it. Run without
/// authentication (tenants by header) and with credentials (API keys or JWTs), on every runtime.
/// </summary>
public abstract class CrossTenantBehaviour(RuntimeKind runtime, StoreKind kind, AuthKind auth) : IAsyncLifetime
{
    private const string Conversation = "shared-conv";
    private const string Memory = "shared-mem";

    private readonly TestJwt _jwt = new();
    private readonly string _a = SecureHost.NewId("a");
    private readonly string _b = SecureHost.NewId("b");
    private readonly string _adminA = Guid.NewGuid().ToString("N") + Guid.NewGuid().ToString("N");
    private readonly string _adminB = Guid.NewGuid().ToString("N") + Guid.NewGuid().ToString("N");
    private readonly Dictionary<string, string> _keys = [];
    private ISuiteHost _host = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        var settings = new Dictionary<string, string?> { ["CloudMemory:Memory:AutoCheckpoint"] = "false" };
        if (auth == AuthKind.ApiKey)
        {
            settings["CloudMemory:Auth:Mode"] = "apikey";
            settings["CloudMemory:Auth:AdminKeys:0:Tenant"] = _a;
            settings["CloudMemory:Auth:AdminKeys:0:Key"] = _adminA;
            settings["CloudMemory:Auth:AdminKeys:1:Tenant"] = _b;
            settings["CloudMemory:Auth:AdminKeys:1:Key"] = _adminB;
        }
        else if (auth == AuthKind.Jwt)
        {
            _jwt.AddSettings(settings);
        }
        _host = await SuiteHosts.StartAsync(runtime, kind, settings);
        _http = _host.CreateClient();
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _host.DisposeAsync();
    }

    // The tenant's credential (issued on first use), or null without authentication.
    private async Task<string?> CredentialAsync(string tenant)
    {
        if (auth == AuthKind.None)
        {
            return null;
        }
        if (!_keys.TryGetValue(tenant, out var key))
        {
            if (auth == AuthKind.ApiKey)
            {
                var admin = tenant == _a ? _adminA : _adminB;
                key = (await (await _http.SendAsync(Http.Request(HttpMethod.Post, "/v1/auth/keys", new CreateApiKeyRequest("triage"), apiKey: admin))).ReadAsync<IssuedApiKey>()).Key;
            }
            else
            {
                key = _jwt.Token(tenant, "triage");
            }
            _keys[tenant] = key;
        }
        return key;
    }

    // As the tenant's admin (erasing a user takes one when authentication is on).
    private Task<HttpResponseMessage> SendAsAdminAsync(string tenant, HttpMethod method, string url) => auth switch
    {
        AuthKind.ApiKey => _http.SendAsync(Http.Request(method, url, apiKey: tenant == _a ? _adminA : _adminB)),
        AuthKind.Jwt => _http.SendAsync(Http.Request(method, url, bearer: _jwt.Token(tenant, admin: true))),
        _ => _http.SendAsync(Http.Request(method, url, tenant: tenant)),
    };

    private HttpRequestMessage Authenticated(HttpMethod method, string url, object? body, string? tenantHeader, string credential) =>
        auth == AuthKind.ApiKey
            ? Http.Request(method, url, body, tenantHeader, apiKey: credential)
            : Http.Request(method, url, body, tenantHeader, bearer: credential);

    private async Task<HttpResponseMessage> SendAsync(string tenant, HttpMethod method, string url, object? body = null, string? ifMatch = null)
    {
        var request = await CredentialAsync(tenant) is { } credential
            ? Authenticated(method, url, body, tenantHeader: null, credential)
            : Http.Request(method, url, body, tenant, agent: "triage");
        if (ifMatch is not null)
        {
            request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
        }
        return await _http.SendAsync(request);
    }

    private async Task<string> ReadTextAsync(string tenant, string url)
    {
        var response = await SendAsync(tenant, HttpMethod.Get, url);
        return $"{(int)response.StatusCode} {SecureHost.WithoutVolatileFields(await response.Content.ReadAsStringAsync())}";
    }

    private async Task WriteEverythingAsync(string tenant, string marker)
    {
        (await SendAsync(tenant, HttpMethod.Post, "/v1/sessions", new CreateSessionRequest(Conversation, "user-1"))).StatusCode.Should().Be(HttpStatusCode.Created);
        (await SendAsync(tenant, HttpMethod.Post, $"/v1/sessions/{Conversation}/turns", new WriteTurnRequest(null, "triage", $"{marker} I have a headache.", $"{marker} rest."))).StatusCode.Should().Be(HttpStatusCode.OK);
        var session = await (await SendAsync(tenant, HttpMethod.Get, $"/v1/sessions/{Conversation}")).ReadAsync<SessionValue>();
        session.UserSnapshot.Allergies.Add($"{marker}-allergy");
        (await SendAsync(tenant, HttpMethod.Put, $"/v1/sessions/{Conversation}", session, "*")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await SendAsync(tenant, HttpMethod.Put, $"/v1/sessions/{Conversation}/agent-slots/triage", new { note = marker })).StatusCode.Should().Be(HttpStatusCode.OK);
        (await SendAsync(tenant, HttpMethod.Post, "/v1/memories", new { id = Memory, content = $"{marker} takes vitamin supplements", userId = "user-1", contextId = Conversation })).StatusCode.Should().Be(HttpStatusCode.Created);
        (await SendAsync(tenant, HttpMethod.Post, $"/v1/sessions/{Conversation}/checkpoints", new CheckpointRequest($"{marker} summary"))).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    private async Task<string> EverythingVisibleAsync(string tenant)
    {
        await _host.WhenQuietAsync();
        _host.AssertNoViolations();
        var parts = new List<string>
        {
            await ReadTextAsync(tenant, $"/v1/sessions/{Conversation}"),
            await ReadTextAsync(tenant, $"/v1/conversations/{Conversation}/messages?limit=1000"),
            await ReadTextAsync(tenant, $"/v1/memories/{Memory}"),
            await ReadTextAsync(tenant, "/v1/memories?limit=1000"),
            await ReadTextAsync(tenant, "/v1/memories?userId=user-1"),
        };
        var search = await SendAsync(tenant, HttpMethod.Post, "/v1/memories/search", new { query = "vitamin headache summary", mode = "lexical" });
        parts.Add($"{(int)search.StatusCode} {SecureHost.WithoutVolatileFields(await search.Content.ReadAsStringAsync())}");
        var context = await SendAsync(tenant, HttpMethod.Post, "/v1/context/query", new MemoryQueryRequest(Conversation, Query: "vitamin headache"));
        parts.Add($"{(int)context.StatusCode} {SecureHost.WithoutVolatileFields(await context.Content.ReadAsStringAsync())}");
        return string.Join("\n", parts);
    }

    [Fact]
    public async Task TwoTenants_SameIds_SeeAndChangeOnlyTheirOwn()
    {
        await WriteEverythingAsync(_a, "ALPHA");
        var aBefore = await EverythingVisibleAsync(_a);
        aBefore.Should().Contain("ALPHA").And.NotContain("BRAVO");

        await WriteEverythingAsync(_b, "BRAVO");
        var bView = await EverythingVisibleAsync(_b);
        bView.Should().Contain("BRAVO").And.NotContain("ALPHA");

        // B updates and deletes the shared ids; A's view does not move.
        (await SendAsync(_b, HttpMethod.Put, $"/v1/memories/{Memory}", new { content = "BRAVO changed" })).StatusCode.Should().Be(HttpStatusCode.OK);
        (await SendAsync(_b, HttpMethod.Post, $"/v1/sessions/{Conversation}/finalize", new CheckpointRequest("BRAVO final"))).StatusCode.Should().Be(HttpStatusCode.OK);
        (await SendAsync(_b, HttpMethod.Delete, $"/v1/memories/{Memory}")).StatusCode.Should().Be(HttpStatusCode.NoContent);
        (await EverythingVisibleAsync(_a)).Should().Be(aBefore);

        // B erases its user and its conversation (fanned out to every service); A's view does not move.
        var erased = await SendAsAdminAsync(_b, HttpMethod.Delete, "/v1/users/user-1");
        erased.StatusCode.Should().Be(HttpStatusCode.OK, await erased.Content.ReadAsStringAsync());
        (await SendAsync(_b, HttpMethod.Delete, $"/v1/sessions/{Conversation}")).StatusCode.Should().BeOneOf(HttpStatusCode.NoContent, HttpStatusCode.NotFound);
        (await EverythingVisibleAsync(_a)).Should().Be(aBefore);

        // A still writes its conversation (B's finalize did not finalize A's).
        (await SendAsync(_a, HttpMethod.Post, $"/v1/sessions/{Conversation}/turns", new WriteTurnRequest(null, "triage", "ALPHA again", "ok"))).StatusCode.Should().Be(HttpStatusCode.OK);
        (await EverythingVisibleAsync(_b)).Should().NotContain("ALPHA");
    }

    protected async Task CredentialOfOneTenant_CannotNameTheOtherAsync()
    {
        auth.Should().NotBe(AuthKind.None);
        await WriteEverythingAsync(_a, "ALPHA");
        await WriteEverythingAsync(_b, "BRAVO");
        // B's credential with A's tenant header: refused, and A's data unchanged.
        var before = await EverythingVisibleAsync(_a);
        var request = Authenticated(HttpMethod.Delete, $"/v1/memories/{Memory}", null, tenantHeader: _a, _keys[_b]);
        (await (await _http.SendAsync(request)).ProblemCodeAsync(403)).Should().Be("tenant-mismatch");
        var read = Authenticated(HttpMethod.Get, $"/v1/sessions/{Conversation}", null, tenantHeader: _a, _keys[_b]);
        (await (await _http.SendAsync(read)).ProblemCodeAsync(403)).Should().Be("tenant-mismatch");
        (await EverythingVisibleAsync(_a)).Should().Be(before);
    }
}

public sealed class CrossTenantInMemoryTests() : CrossTenantBehaviour(RuntimeKind.Embedded, StoreKind.InMemory, AuthKind.None);

public sealed class CrossTenantPostgresTests() : CrossTenantBehaviour(RuntimeKind.Embedded, StoreKind.Postgres, AuthKind.None);

public sealed class CrossTenantInMemoryApiKeyTests() : CrossTenantBehaviour(RuntimeKind.Embedded, StoreKind.InMemory, AuthKind.ApiKey)
{
    [Fact]
    public Task CredentialOfOneTenant_CannotNameTheOther() => CredentialOfOneTenant_CannotNameTheOtherAsync();
}

public sealed class CrossTenantPostgresApiKeyTests() : CrossTenantBehaviour(RuntimeKind.Embedded, StoreKind.Postgres, AuthKind.ApiKey)
{
    [Fact]
    public Task CredentialOfOneTenant_CannotNameTheOther() => CredentialOfOneTenant_CannotNameTheOtherAsync();
}

/// <summary>The four Dapr apps over the fake sidecar, tenants by header.</summary>
public sealed class CrossTenantDaprTests() : CrossTenantBehaviour(RuntimeKind.Dapr, StoreKind.InMemory, AuthKind.None);

/// <summary>The four Dapr apps over the fake sidecar, tenants by JWT (forwarded between the apps by service invocation).</summary>
public sealed class CrossTenantDaprJwtTests() : CrossTenantBehaviour(RuntimeKind.Dapr, StoreKind.InMemory, AuthKind.Jwt)
{
    [Fact]
    public Task CredentialOfOneTenant_CannotNameTheOther() => CredentialOfOneTenant_CannotNameTheOtherAsync();
}

/// <summary>
/// The four Dapr apps sharing one PostgreSQL database, tenants by API key: a key issued through one
/// app is honoured by the others because the key store is the shared database.
/// </summary>
public sealed class CrossTenantDaprPostgresApiKeyTests() : CrossTenantBehaviour(RuntimeKind.Dapr, StoreKind.Postgres, AuthKind.ApiKey)
{
    [Fact]
    public Task CredentialOfOneTenant_CannotNameTheOther() => CredentialOfOneTenant_CannotNameTheOtherAsync();
}
