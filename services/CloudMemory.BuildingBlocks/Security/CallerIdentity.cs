using System.Security.Claims;

namespace CloudMemory.BuildingBlocks.Security;

/// <summary>Who an authenticated request comes from, read from the request's principal.</summary>
public sealed record CallerIdentity(string? Tenant, string? Agent, bool IsAdmin, string? KeyId)
{
    /// <summary>Claim types of the principal CloudMemory's API key handler builds (JWTs are mapped through the configured claims).</summary>
    public const string TenantClaim = "cloudmemory:tenant";

    /// <summary>Agent claim.</summary>
    public const string AgentClaim = "cloudmemory:agent";

    /// <summary>Present (value "true") on tenant admin keys.</summary>
    public const string AdminClaim = "cloudmemory:admin";

    /// <summary>The API key id, for audit.</summary>
    public const string KeyIdClaim = "cloudmemory:key";

    /// <summary>The identity of an authenticated principal; null when the request is anonymous.</summary>
    public static CallerIdentity? From(ClaimsPrincipal user)
    {
        if (user.Identity is not { IsAuthenticated: true })
        {
            return null;
        }
        return new CallerIdentity(
            NullIfEmpty(user.FindFirst(TenantClaim)?.Value),
            NullIfEmpty(user.FindFirst(AgentClaim)?.Value),
            user.FindFirst(AdminClaim)?.Value == "true",
            user.FindFirst(KeyIdClaim)?.Value);
    }

    /// <summary>The principal of an identity, under <paramref name="scheme"/>.</summary>
    public ClaimsPrincipal ToPrincipal(string scheme)
    {
        var claims = new List<Claim>();
        if (Tenant is not null)
        {
            claims.Add(new Claim(TenantClaim, Tenant));
        }
        if (Agent is not null)
        {
            claims.Add(new Claim(AgentClaim, Agent));
        }
        if (IsAdmin)
        {
            claims.Add(new Claim(AdminClaim, "true"));
        }
        if (KeyId is not null)
        {
            claims.Add(new Claim(KeyIdClaim, KeyId));
        }
        return new ClaimsPrincipal(new ClaimsIdentity(claims, scheme));
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;
}
