namespace CloudMemory.Contracts.Auth;

/// <summary>POST /v1/auth/keys: a key for one agent of the admin's tenant (no agent: tenant-wide), or another admin key.</summary>
public sealed record CreateApiKeyRequest(string? AgentId, string? Name = null, bool Admin = false);

/// <summary>An API key as listed (never its secret).</summary>
public sealed record ApiKeyInfo(string Id, string TenantId, string? AgentId, bool Admin, string? Name, DateTimeOffset CreatedAt, DateTimeOffset? RevokedAt);

/// <summary>A newly issued key: <see cref="Key"/> is shown once and stored only as a hash.</summary>
public sealed record IssuedApiKey(string Key, ApiKeyInfo Info);
