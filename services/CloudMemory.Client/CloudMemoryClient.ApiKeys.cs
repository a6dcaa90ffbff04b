using CloudMemory.Contracts.Auth;

namespace CloudMemory.Client;

/// <summary>API key management (server mode apikey; the client's <see cref="CloudMemoryClientOptions.ApiKey"/> must be a tenant admin key).</summary>
public sealed partial class CloudMemoryClient
{
    /// <summary>Issues a key for <paramref name="agentId"/> (null: tenant-wide); the result holds the key's only copy.</summary>
    public Task<IssuedApiKey> CreateApiKeyAsync(string? agentId, string? name = null, bool admin = false, CancellationToken cancellationToken = default) =>
        SendAsync<IssuedApiKey>(HttpMethod.Post, options.SessionAppId, "v1/auth/keys", new CreateApiKeyRequest(agentId, name, admin), null, cancellationToken);

    /// <summary>The tenant's keys, without secrets.</summary>
    public Task<List<ApiKeyInfo>> ListApiKeysAsync(CancellationToken cancellationToken = default) =>
        SendAsync<List<ApiKeyInfo>>(HttpMethod.Get, options.SessionAppId, "v1/auth/keys", null, null, cancellationToken);

    /// <summary>Revokes a key of the tenant.</summary>
    public async Task RevokeApiKeyAsync(string keyId, CancellationToken cancellationToken = default)
    {
        using var response = await SendRawAsync(HttpMethod.Delete, options.SessionAppId, $"v1/auth/keys/{Escape(keyId)}", null, null, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            await ReadAsync<object>(response, cancellationToken);
        }
    }
}
