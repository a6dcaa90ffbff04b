using System.Net;
using System.Security.Claims;
using System.Security.Cryptography;
using CloudMemory.Client;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Security.Tests.Infrastructure;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace CloudMemory.Security.Tests.Auth;

/// <summary>Mode jwt: HMAC and RSA signing keys, configurable claims, over HTTP and through the .NET client.</summary>
public sealed class JwtAuthTests : IDisposable
{
    private const string Issuer = "https://login.example.test/";
    private const string Audience = "cloudmemory";
    private static readonly byte[] HmacKey = RandomNumberGenerator.GetBytes(32);
    private static readonly RSA Rsa = RSA.Create(2048);

    private readonly string _tenant = SecureHost.NewId("acme");
    private readonly SecureHost _host;
    private readonly HttpClient _http;

    public JwtAuthTests()
    {
        _host = new SecureHost(StoreKind.InMemory, new Dictionary<string, string?>
        {
            ["CloudMemory:Auth:Mode"] = "jwt",
            ["CloudMemory:Auth:Jwt:Issuers:0"] = Issuer,
            ["CloudMemory:Auth:Jwt:Audiences:0"] = Audience,
            ["CloudMemory:Auth:Jwt:SigningKeys:0"] = Convert.ToBase64String(HmacKey),
            ["CloudMemory:Auth:Jwt:SigningKeys:1"] = Rsa.ExportSubjectPublicKeyInfoPem(),
            ["CloudMemory:Auth:Jwt:TenantClaim"] = "org",
            ["CloudMemory:Auth:Jwt:AgentClaim"] = "azp",
            ["CloudMemory:Auth:Jwt:AdminClaim"] = "roles",
        });
        _http = _host.CreateClient();
    }

    public void Dispose()
    {
        _http.Dispose();
        _host.Dispose();
    }

    private static string Token(string? tenant, string? agent = null, string issuer = Issuer, string audience = Audience, DateTime? expires = null, SigningCredentials? credentials = null,
        params string[] roles)
    {
        var claims = new List<Claim> { new("sub", "someone") };
        claims.AddRange(roles.Select(role => new Claim("roles", role)));
        if (tenant is not null)
        {
            claims.Add(new Claim("org", tenant));
        }
        if (agent is not null)
        {
            claims.Add(new Claim("azp", agent));
        }
        var now = DateTime.UtcNow;
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Subject = new ClaimsIdentity(claims),
            Issuer = issuer,
            Audience = audience,
            NotBefore = (expires ?? now.AddMinutes(10)).AddMinutes(-20),
            IssuedAt = (expires ?? now.AddMinutes(10)).AddMinutes(-20),
            Expires = expires ?? now.AddMinutes(10),
            SigningCredentials = credentials ?? new SigningCredentials(new SymmetricSecurityKey(HmacKey), SecurityAlgorithms.HmacSha256),
        });
    }

    private Task<HttpResponseMessage> CreateAsync(string? bearer, string? tenantHeader = null) =>
        _http.SendAsync(Http.Request(HttpMethod.Post, "/v1/sessions", new CreateSessionRequest(SecureHost.NewId("c"), "user-1"), tenantHeader, bearer: bearer));

    [Fact]
    public async Task ValidToken_HmacOrRsa_IsAccepted()
    {
        (await CreateAsync(Token(_tenant))).StatusCode.Should().Be(HttpStatusCode.Created);
        var rsa = new SigningCredentials(new RsaSecurityKey(Rsa), SecurityAlgorithms.RsaSha256);
        (await CreateAsync(Token(_tenant, credentials: rsa))).StatusCode.Should().Be(HttpStatusCode.Created);
    }

    [Fact]
    public async Task InvalidTokens_Are401()
    {
        var otherKey = new SigningCredentials(new SymmetricSecurityKey(RandomNumberGenerator.GetBytes(32)), SecurityAlgorithms.HmacSha256);
        var tokens = new[]
        {
            Token(_tenant, issuer: "https://evil.example.test/"),
            Token(_tenant, audience: "someone-else"),
            Token(_tenant, expires: DateTime.UtcNow.AddHours(-1)),
            Token(_tenant, credentials: otherKey),
            "not.a.token",
        };
        foreach (var token in tokens)
        {
            (await (await CreateAsync(token)).ProblemCodeAsync(401)).Should().Be("unauthenticated", token);
        }
        (await (await CreateAsync(null, _tenant)).ProblemCodeAsync(401)).Should().Be("unauthenticated");
    }

    [Fact]
    public async Task TokenWithoutTenant_Is401_AndDisagreeingHeader_Is403()
    {
        (await (await CreateAsync(Token(null))).ProblemCodeAsync(401)).Should().Be("credential-without-tenant");
        (await (await CreateAsync(Token(_tenant), "someone-else")).ProblemCodeAsync(403)).Should().Be("tenant-mismatch");
        (await CreateAsync(Token(_tenant), _tenant)).StatusCode.Should().Be(HttpStatusCode.Created);
    }

    [Fact]
    public async Task AgentClaim_GovernsAgentSlots()
    {
        var id = SecureHost.NewId("c");
        var triage = Token(_tenant, "triage");
        (await _http.SendAsync(Http.Request(HttpMethod.Post, "/v1/sessions", new CreateSessionRequest(id, "u"), bearer: triage))).StatusCode.Should().Be(HttpStatusCode.Created);

        var asDrug = await _http.SendAsync(Http.Request(HttpMethod.Put, $"/v1/sessions/{id}/agent-slots/triage", new { x = 1 }, bearer: Token(_tenant, "drug")));
        (await asDrug.ProblemCodeAsync(403)).Should().Be("agent-slot-forbidden");
        var forgedHeader = await _http.SendAsync(Http.Request(HttpMethod.Put, $"/v1/sessions/{id}/agent-slots/triage", new { x = 1 }, agent: "triage", bearer: Token(_tenant, "drug")));
        (await forgedHeader.ProblemCodeAsync(403)).Should().Be("agent-mismatch");
        var own = await _http.SendAsync(Http.Request(HttpMethod.Put, $"/v1/sessions/{id}/agent-slots/triage", new { x = 1 }, bearer: triage));
        own.StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Client_WithBearerToken_WorksAsTheTokensTenant()
    {
        var client = new CloudMemoryClient(_http, new CloudMemoryClientOptions { BearerToken = Token(_tenant, "triage") });
        var id = SecureHost.NewId("c");
        await client.CreateShortMemoryAsync(id, "user-1");
        await client.WriteTurnAsync(id, "My head hurts.", "Rest.");
        await client.WriteAgentSlotAsync(id, "triage", new { severity = "low" });
        (await client.GetShortMemoryAsync(id)).Session.FlowContext.TurnCount.Should().Be(1);

        var other = new CloudMemoryClient(_http, new CloudMemoryClientOptions { BearerToken = Token(SecureHost.NewId("globex")) });
        var missing = await Assert.ThrowsAsync<CloudMemoryException>(() => other.GetShortMemoryAsync(id));
        missing.Status.Should().Be(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task AdminClaim_AloneMayEraseAUser()
    {
        var id = SecureHost.NewId("c");
        (await _http.SendAsync(Http.Request(HttpMethod.Post, "/v1/sessions", new CreateSessionRequest(id, "user-9"), bearer: Token(_tenant, "triage")))).StatusCode.Should().Be(HttpStatusCode.Created);

        var plain = await _http.SendAsync(Http.Request(HttpMethod.Delete, "/v1/users/user-9", bearer: Token(_tenant, "triage", roles: ["reader", "cloudmemory-adminx"])));
        (await plain.ProblemCodeAsync(403)).Should().Be("admin-required");
        (await _http.SendAsync(Http.Request(HttpMethod.Get, $"/v1/sessions/{id}", bearer: Token(_tenant)))).StatusCode.Should().Be(HttpStatusCode.OK);

        var admin = await _http.SendAsync(Http.Request(HttpMethod.Delete, "/v1/users/user-9", bearer: Token(_tenant, roles: ["reader", "cloudmemory-admin"])));
        admin.StatusCode.Should().Be(HttpStatusCode.OK, await admin.Content.ReadAsStringAsync());
        (await _http.SendAsync(Http.Request(HttpMethod.Get, $"/v1/sessions/{id}", bearer: Token(_tenant)))).StatusCode.Should().Be(HttpStatusCode.NotFound);
    }
}
