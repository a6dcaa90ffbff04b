using System.Security.Claims;
using System.Security.Cryptography;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace CloudMemory.Security.Tests.Infrastructure;

/// <summary>An issuer of test JWTs (HMAC) and the settings that make a host trust it (mode jwt, admin role <c>cloudmemory-admin</c> in <c>roles</c>).</summary>
public sealed class TestJwt
{
    public const string Issuer = "https://login.example.test/";
    public const string Audience = "cloudmemory";

    private readonly byte[] _signingKey = RandomNumberGenerator.GetBytes(32);

    public void AddSettings(IDictionary<string, string?> settings)
    {
        settings["CloudMemory:Auth:Mode"] = "jwt";
        settings["CloudMemory:Auth:Jwt:Issuers:0"] = Issuer;
        settings["CloudMemory:Auth:Jwt:Audiences:0"] = Audience;
        settings["CloudMemory:Auth:Jwt:SigningKeys:0"] = Convert.ToBase64String(_signingKey);
        settings["CloudMemory:Auth:Jwt:AdminClaim"] = "roles";
    }

    /// <summary>A token of <paramref name="tenant"/> (and <paramref name="agent"/>), a tenant admin when <paramref name="admin"/>.</summary>
    public string Token(string tenant, string? agent = null, bool admin = false)
    {
        var claims = new List<Claim> { new("tenant", tenant), new("roles", "reader") };
        if (agent is not null)
        {
            claims.Add(new Claim("agent", agent));
        }
        if (admin)
        {
            claims.Add(new Claim("roles", "cloudmemory-admin"));
        }
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Subject = new ClaimsIdentity(claims),
            Issuer = Issuer,
            Audience = Audience,
            Expires = DateTime.UtcNow.AddHours(1),
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(_signingKey), SecurityAlgorithms.HmacSha256),
        });
    }
}
