using System.Net;
using System.Text.Json;
using CloudMemory.BuildingBlocks.Security;
using CloudMemory.Client;
using CloudMemory.Contracts.Auth;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Security.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.Security.Tests.Auth;

/// <summary>Mode apikey over HTTP and through the .NET client, with keys stored in memory and in PostgreSQL.</summary>
public abstract class ApiKeyAuthBehaviour : IDisposable
{
    private readonly string _tenant = SecureHost.NewId("acme");
    private readonly string _otherTenant = SecureHost.NewId("globex");
    private readonly string _adminKey = "admin-" + Guid.NewGuid().ToString("N") + Guid.NewGuid().ToString("N");
    private readonly string _otherAdminKey = "admin-" + Guid.NewGuid().ToString("N") + Guid.NewGuid().ToString("N");
    private readonly SecureHost _host;
    private readonly HttpClient _http;

    protected ApiKeyAuthBehaviour(StoreKind kind)
    {
        _host = new SecureHost(kind, new Dictionary<string, string?>
        {
            ["CloudMemory:Auth:Mode"] = "apikey",
            ["CloudMemory:Auth:AdminKeys:0:Tenant"] = _tenant,
            ["CloudMemory:Auth:AdminKeys:0:Key"] = _adminKey,
            ["CloudMemory:Auth:AdminKeys:1:Tenant"] = _otherTenant,
            ["CloudMemory:Auth:AdminKeys:1:KeySha256"] = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(_otherAdminKey))),
        });
        _http = _host.CreateClient();
    }

    public void Dispose()
    {
        _http.Dispose();
        _host.Dispose();
        GC.SuppressFinalize(this);
    }

    private async Task<IssuedApiKey> IssueAsync(string? agent, string adminKey, bool admin = false)
    {
        var response = await _http.SendAsync(Http.Request(HttpMethod.Post, "/v1/auth/keys", new CreateApiKeyRequest(agent, "test", admin), apiKey: adminKey));
        response.StatusCode.Should().Be(HttpStatusCode.Created);
        return await response.ReadAsync<IssuedApiKey>();
    }

    private Task<HttpResponseMessage> CreateSessionAsync(string conversationId, string? apiKey, string? tenant = null, string? agent = null) =>
        _http.SendAsync(Http.Request(HttpMethod.Post, "/v1/sessions", new CreateSessionRequest(conversationId, "user-1"), tenant, agent, apiKey));

    [Fact]
    public async Task Request_WithoutKey_Is401Problem()
    {
        var response = await CreateSessionAsync(SecureHost.NewId("c"), apiKey: null, tenant: _tenant);
        (await response.ProblemCodeAsync(401)).Should().Be("unauthenticated");
    }

    [Fact]
    public async Task Request_WithUnknownOrMalformedKey_Is401()
    {
        foreach (var key in new[] { "cmk_0123456789abcdef_" + new string('A', 43), "nonsense", _adminKey + "x" })
        {
            (await (await CreateSessionAsync(SecureHost.NewId("c"), key)).ProblemCodeAsync(401)).Should().Be("unauthenticated");
        }
    }

    [Fact]
    public async Task AgentKey_ActsAsItsTenant_AndRefusesADisagreeingHeader()
    {
        var key = await IssueAsync("triage", _adminKey);
        key.Key.Should().StartWith("cmk_");
        key.Info.TenantId.Should().Be(_tenant);
        var id = SecureHost.NewId("c");

        (await CreateSessionAsync(id, key.Key)).StatusCode.Should().Be(HttpStatusCode.Created);
        (await (await CreateSessionAsync(id, key.Key, tenant: _otherTenant)).ProblemCodeAsync(403)).Should().Be("tenant-mismatch");
        (await CreateSessionAsync(id, key.Key, tenant: _tenant)).StatusCode.Should().Be(HttpStatusCode.OK);
        (await (await CreateSessionAsync(id, key.Key, agent: "drug")).ProblemCodeAsync(403)).Should().Be("agent-mismatch");

        // The other tenant's admin sees no such conversation: the session was written under the key's tenant.
        var other = await IssueAsync(null, _otherAdminKey);
        var read = await _http.SendAsync(Http.Request(HttpMethod.Get, $"/v1/sessions/{id}", apiKey: other.Key));
        read.StatusCode.Should().Be(HttpStatusCode.NotFound);
        var own = await _http.SendAsync(Http.Request(HttpMethod.Get, $"/v1/sessions/{id}", apiKey: key.Key));
        own.StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task AgentSlot_IsWritableOnlyWithThatAgentsKey()
    {
        var triage = await IssueAsync("triage", _adminKey);
        var drug = await IssueAsync("drug", _adminKey);
        var id = SecureHost.NewId("c");
        (await CreateSessionAsync(id, triage.Key)).StatusCode.Should().Be(HttpStatusCode.Created);

        var forged = await _http.SendAsync(Http.Request(HttpMethod.Put, $"/v1/sessions/{id}/agent-slots/triage", new { note = "x" }, agent: "triage", apiKey: drug.Key));
        (await forged.ProblemCodeAsync(403)).Should().Be("agent-mismatch");
        var wrongSlot = await _http.SendAsync(Http.Request(HttpMethod.Put, $"/v1/sessions/{id}/agent-slots/triage", new { note = "x" }, apiKey: drug.Key));
        (await wrongSlot.ProblemCodeAsync(403)).Should().Be("agent-slot-forbidden");
        var own = await _http.SendAsync(Http.Request(HttpMethod.Put, $"/v1/sessions/{id}/agent-slots/triage", new { note = "ok" }, apiKey: triage.Key));
        own.StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task RevokedKey_IsRefusedOnTheNextRequest()
    {
        var key = await IssueAsync("triage", _adminKey);
        (await CreateSessionAsync(SecureHost.NewId("c"), key.Key)).StatusCode.Should().Be(HttpStatusCode.Created);

        var revoke = await _http.SendAsync(Http.Request(HttpMethod.Delete, $"/v1/auth/keys/{key.Info.Id}", apiKey: _adminKey));
        revoke.StatusCode.Should().Be(HttpStatusCode.NoContent);

        (await (await CreateSessionAsync(SecureHost.NewId("c"), key.Key)).ProblemCodeAsync(401)).Should().Be("unauthenticated");
    }

    [Fact]
    public async Task KeyManagement_NeedsTheTenantsAdmin_AndNeverShowsSecrets()
    {
        var agent = await IssueAsync("triage", _adminKey);
        var byAgent = await _http.SendAsync(Http.Request(HttpMethod.Post, "/v1/auth/keys", new CreateApiKeyRequest("drug"), apiKey: agent.Key));
        (await byAgent.ProblemCodeAsync(403)).Should().Be("admin-required");

        // Another tenant's admin can neither see nor revoke this tenant's key.
        var foreignRevoke = await _http.SendAsync(Http.Request(HttpMethod.Delete, $"/v1/auth/keys/{agent.Info.Id}", apiKey: _otherAdminKey));
        (await foreignRevoke.ProblemCodeAsync(404)).Should().Be("api-key-not-found");
        var foreignList = await (await _http.SendAsync(Http.Request(HttpMethod.Get, "/v1/auth/keys", apiKey: _otherAdminKey))).ReadAsync<List<ApiKeyInfo>>();
        foreignList.Should().NotContain(k => k.Id == agent.Info.Id);

        var list = await _http.SendAsync(Http.Request(HttpMethod.Get, "/v1/auth/keys", apiKey: _adminKey));
        var text = await list.Content.ReadAsStringAsync();
        list.StatusCode.Should().Be(HttpStatusCode.OK);
        text.Should().Contain(agent.Info.Id).And.NotContain(agent.Key[^43..]);

        // Stored: the SHA-256 of the secret, not the secret.
        var stored = await _host.Services.GetRequiredService<IApiKeyStore>().FindAsync(agent.Info.Id, default);
        stored!.SecretSha256.Should().HaveCount(32);
        System.Text.Encoding.UTF8.GetString(stored.SecretSha256).Should().NotContain(agent.Key[^43..]);
    }

    [Fact]
    public async Task Client_WithApiKey_WritesAndReadsAsTheKeysTenantAndAgent()
    {
        var admin = new CloudMemoryClient(_http, new CloudMemoryClientOptions { ApiKey = _adminKey });
        var issued = await admin.CreateApiKeyAsync("triage", "client test");
        (await admin.ListApiKeysAsync()).Should().Contain(k => k.Id == issued.Info.Id && k.AgentId == "triage");

        var client = new CloudMemoryClient(_http, new CloudMemoryClientOptions { ApiKey = issued.Key });
        var id = SecureHost.NewId("c");
        await client.CreateShortMemoryAsync(id, "user-1");
        await client.WriteTurnAsync(id, "I have a headache.", "Rest and drink water.");
        await client.WriteAgentSlotAsync(id, "triage", new { severity = "low" });
        var envelope = await client.GetShortMemoryAsync(id);
        envelope.Session.Meta.ConversationId.Should().Be(id);

        var spoofing = new CloudMemoryClient(_http, new CloudMemoryClientOptions { ApiKey = issued.Key, TenantId = _otherTenant });
        var refused = await Assert.ThrowsAsync<CloudMemoryException>(() => spoofing.GetShortMemoryAsync(id));
        refused.Status.Should().Be(HttpStatusCode.Forbidden);
        refused.Code.Should().Be("tenant-mismatch");

        await admin.RevokeApiKeyAsync(issued.Info.Id);
        var revoked = await Assert.ThrowsAsync<CloudMemoryException>(() => client.GetShortMemoryAsync(id));
        revoked.Status.Should().Be(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task HealthAndOpenApi_NeedNoCredential()
    {
        (await _http.GetAsync("/healthz")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await _http.GetAsync("/openapi/v1.json")).StatusCode.Should().Be(HttpStatusCode.OK);
    }
}

public sealed class ApiKeyAuthInMemoryTests() : ApiKeyAuthBehaviour(StoreKind.InMemory);

public sealed class ApiKeyAuthPostgresTests() : ApiKeyAuthBehaviour(StoreKind.Postgres);
