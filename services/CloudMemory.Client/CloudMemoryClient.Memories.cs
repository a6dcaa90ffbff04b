using System.Text;
using System.Text.Json;

namespace CloudMemory.Client;

/// <summary>Long-term memory (<c>/v1/memories</c>, context app). Entries come back as the service's JSON.</summary>
public sealed partial class CloudMemoryClient
{
    /// <summary>
    /// <c>POST /v1/memories</c>: stores a memory entry (with an explicit <paramref name="id"/> the call is idempotent).
    /// </summary>
    public Task<JsonElement> CreateMemoryAsync(string content, string? type = null, string? id = null, string? userId = null, string? contextId = null,
        string? traceId = null, IReadOnlyDictionary<string, string>? metadata = null, IReadOnlyList<string>? tags = null, int? ttlSeconds = null,
        CancellationToken cancellationToken = default) =>
        SendAsync<JsonElement>(HttpMethod.Post, options.ContextAppId, "v1/memories",
            new { content, type, id, userId, contextId, traceId, metadata, tags, ttlSeconds }, null, cancellationToken);

    /// <summary><c>GET /v1/memories/{id}</c>; null when it does not exist (or expired).</summary>
    public async Task<JsonElement?> GetMemoryAsync(string id, CancellationToken cancellationToken = default)
    {
        using var response = await SendRawAsync(HttpMethod.Get, options.ContextAppId, $"v1/memories/{Escape(id)}", null, null, cancellationToken);
        return response.StatusCode == System.Net.HttpStatusCode.NotFound ? null : await ReadAsync<JsonElement>(response, cancellationToken);
    }

    /// <summary><c>PUT /v1/memories/{id}</c> with the fields to change, e.g. <c>new { content = "…", tags = new[] { "x" } }</c>.</summary>
    public Task<JsonElement> UpdateMemoryAsync(string id, object changes, CancellationToken cancellationToken = default) =>
        SendAsync<JsonElement>(HttpMethod.Put, options.ContextAppId, $"v1/memories/{Escape(id)}", changes, null, cancellationToken);

    /// <summary><c>DELETE /v1/memories/{id}</c>; false when it did not exist.</summary>
    public async Task<bool> DeleteMemoryAsync(string id, CancellationToken cancellationToken = default)
    {
        using var response = await SendRawAsync(HttpMethod.Delete, options.ContextAppId, $"v1/memories/{Escape(id)}", null, null, cancellationToken);
        if (response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return false;
        }
        if (!response.IsSuccessStatusCode)
        {
            await ReadAsync<object>(response, cancellationToken);
        }
        return true;
    }

    /// <summary><c>GET /v1/memories</c>: entries matching every filter given, newest first (the answer's <c>items</c>).</summary>
    public Task<JsonElement> ListMemoriesAsync(string? contextId = null, string? traceId = null, string? userId = null, string? type = null, int limit = 100,
        CancellationToken cancellationToken = default)
    {
        var query = new StringBuilder($"v1/memories?limit={limit}");
        foreach (var (name, value) in new[] { ("contextId", contextId), ("traceId", traceId), ("userId", userId), ("type", type) })
        {
            if (value is not null)
            {
                query.Append('&').Append(name).Append('=').Append(Uri.EscapeDataString(value));
            }
        }
        return SendAsync<JsonElement>(HttpMethod.Get, options.ContextAppId, query.ToString(), null, null, cancellationToken);
    }

    /// <summary><c>POST /v1/memories/search</c> with a body such as <c>new { query = "allergies", topK = 5, filters = new { userId = "u1" } }</c>.</summary>
    public Task<JsonElement> SearchMemoriesAsync(object request, CancellationToken cancellationToken = default) =>
        SendAsync<JsonElement>(HttpMethod.Post, options.ContextAppId, "v1/memories/search", request, null, cancellationToken);
}
