namespace CloudMemory.BuildingBlocks.Security;

/// <summary>How callers prove who they are (<c>CloudMemory:Auth:Mode</c>).</summary>
public enum AuthMode
{
    /// <summary>No authentication: the tenant and agent are taken from the headers (loopback only by default).</summary>
    None,

    /// <summary>API keys issued per tenant and agent by a tenant admin key.</summary>
    ApiKey,

    /// <summary>Bearer JWTs validated against the configured issuer, audience and signing keys.</summary>
    Jwt,
}

/// <summary>The <c>CloudMemory:Auth</c> section.</summary>
public sealed class AuthOptions
{
    /// <summary>Configuration section.</summary>
    public const string SectionName = "CloudMemory:Auth";

    /// <summary>none, apikey or jwt; when unset, none (allowed only on loopback addresses).</summary>
    public AuthMode Mode { get; set; } = AuthMode.None;

    /// <summary>Lets mode none listen on non-loopback addresses (e.g. behind a gateway that authenticates).</summary>
    public bool AllowAnonymousNonLoopback { get; set; }

    /// <summary>Bootstrap admin keys, one or more per tenant; each manages that tenant's API keys.</summary>
    public List<AdminKeyOptions> AdminKeys { get; set; } = [];

    /// <summary>JWT validation.</summary>
    public JwtOptions Jwt { get; set; } = new();
}

/// <summary>One bootstrap admin key of a tenant: the key itself or its SHA-256 (hex), so configuration need not hold the secret.</summary>
public sealed class AdminKeyOptions
{
    /// <summary>The tenant this key administers.</summary>
    public string Tenant { get; set; } = "";

    /// <summary>The key as sent by the caller (at least 32 characters).</summary>
    public string? Key { get; set; }

    /// <summary>Lower- or upper-case hex SHA-256 of the UTF-8 key, instead of <see cref="Key"/>.</summary>
    public string? KeySha256 { get; set; }
}

/// <summary>The <c>CloudMemory:Auth:Jwt</c> section.</summary>
public sealed class JwtOptions
{
    /// <summary>Accepted issuers (<c>iss</c>).</summary>
    public List<string> Issuers { get; set; } = [];

    /// <summary>Accepted audiences (<c>aud</c>).</summary>
    public List<string> Audiences { get; set; } = [];

    /// <summary>
    /// Signing keys: a PEM public key (RSA or EC, <c>-----BEGIN PUBLIC KEY-----</c>) or a base64
    /// symmetric key of at least 32 bytes (HMAC).
    /// </summary>
    public List<string> SigningKeys { get; set; } = [];

    /// <summary>OpenID Connect authority whose metadata supplies the signing keys (instead of <see cref="SigningKeys"/>).</summary>
    public string? Authority { get; set; }

    /// <summary>Claim that carries the tenant.</summary>
    public string TenantClaim { get; set; } = "tenant";

    /// <summary>Claim that carries the agent (optional in a token).</summary>
    public string AgentClaim { get; set; } = "agent";

    /// <summary>
    /// Claim that marks a tenant admin (e.g. <c>roles</c>); unset (the default), no token is an admin.
    /// A token is an admin when one of its values of this claim equals <see cref="AdminClaimValue"/>.
    /// </summary>
    public string? AdminClaim { get; set; }

    /// <summary>The value of <see cref="AdminClaim"/> that marks a tenant admin.</summary>
    public string AdminClaimValue { get; set; } = "cloudmemory-admin";

    /// <summary>Allowed clock skew in seconds.</summary>
    public int ClockSkewSeconds { get; set; } = 60;
}

/// <summary>The <c>CloudMemory:RateLimit</c> section: a token bucket per tenant.</summary>
public sealed class RateLimitOptions
{
    /// <summary>Configuration section.</summary>
    public const string SectionName = "CloudMemory:RateLimit";

    /// <summary>Sustained requests per second per tenant; 0 turns rate limiting off.</summary>
    public int PermitsPerSecond { get; set; }

    /// <summary>Burst size per tenant (default: twice <see cref="PermitsPerSecond"/>).</summary>
    public int Burst { get; set; }
}
