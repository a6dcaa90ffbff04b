using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Sessions;

namespace CloudMemory.Client;

/// <summary>Where the client sends requests.</summary>
public sealed class CloudMemoryClientOptions
{
    /// <summary>Base URL of the embedded host or of a gateway serving all apps (e.g. http://localhost:5080).</summary>
    public Uri? BaseAddress { get; set; }

    /// <summary>Call through the local Dapr sidecar on this HTTP port (service invocation) instead of <see cref="BaseAddress"/>.</summary>
    public int? DaprHttpPort { get; set; }

    /// <summary>Sent as <c>dapr-api-token</c> when calling through the sidecar.</summary>
    public string? DaprApiToken { get; set; }

    /// <summary>App id of the session service.</summary>
    public string SessionAppId { get; set; } = "session";

    /// <summary>App id of the context service.</summary>
    public string ContextAppId { get; set; } = "context";

    /// <summary>App id of the feedback service.</summary>
    public string FeedbackAppId { get; set; } = "feedback";

    /// <summary>Tenant sent as <c>X-Tenant-Id</c> (null: the server's default).</summary>
    public string? TenantId { get; set; }

    /// <summary>Agent sent as <c>X-Agent-Id</c> (needed to write the agent's own slot).</summary>
    public string? AgentId { get; set; }

    /// <summary>API key sent as <c>X-Api-Key</c> (server mode apikey); the tenant and agent are the key's.</summary>
    public string? ApiKey { get; set; }

    /// <summary>Bearer token sent as <c>Authorization: Bearer</c> (server mode jwt); forwarded by Dapr service invocation.</summary>
    public string? BearerToken { get; set; }

    /// <summary>Options for calls through the sidecar at <c>DAPR_HTTP_PORT</c> (default 3500).</summary>
    public static CloudMemoryClientOptions ForDapr(string? tenantId = null) => new()
    {
        DaprHttpPort = int.TryParse(Environment.GetEnvironmentVariable("DAPR_HTTP_PORT"), out var port) ? port : 3500,
        DaprApiToken = Environment.GetEnvironmentVariable("DAPR_API_TOKEN"),
        TenantId = tenantId,
    };
}

/// <summary>A CloudMemory call answered with an error (RFC 7807 problem details).</summary>
public sealed class CloudMemoryException(HttpStatusCode status, string? code, string message) : Exception(message)
{
    /// <summary>HTTP status.</summary>
    public HttpStatusCode Status { get; } = status;

    /// <summary>Stable problem code, e.g. <c>etag-mismatch</c>.</summary>
    public string? Code { get; } = code;
}

/// <summary>
/// Typed client of CloudMemory's short-term memory, with the seed's operation names. Works against
/// a base URL (embedded host) or through Dapr service invocation.
/// </summary>
public sealed partial class CloudMemoryClient(HttpClient http, CloudMemoryClientOptions options)
{
    /// <summary>CreateShortMemory (idempotent).</summary>
    public Task<SessionValue> CreateShortMemoryAsync(string conversationId, string userId, string? agentCode = null, CancellationToken cancellationToken = default) =>
        SendAsync<SessionValue>(HttpMethod.Post, options.SessionAppId, "v1/sessions", new CreateSessionRequest(conversationId, userId, agentCode), null, cancellationToken);

    /// <summary>GetShortMemory with its ETag.</summary>
    public async Task<SessionEnvelope> GetShortMemoryAsync(string conversationId, CancellationToken cancellationToken = default)
    {
        using var response = await SendRawAsync(HttpMethod.Get, options.SessionAppId, $"v1/sessions/{Escape(conversationId)}", null, null, cancellationToken);
        return new SessionEnvelope(await ReadAsync<SessionValue>(response, cancellationToken), response.Headers.ETag?.Tag ?? "");
    }

    /// <summary>SetShortMemory; throws <see cref="CloudMemoryException"/> with code <c>etag-mismatch</c> when the ETag is stale.</summary>
    public async Task<SessionEnvelope> SetShortMemoryAsync(string conversationId, SessionValue session, string etag, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(etag);
        using var response = await SendRawAsync(HttpMethod.Put, options.SessionAppId, $"v1/sessions/{Escape(conversationId)}", session, etag, cancellationToken);
        return new SessionEnvelope(await ReadAsync<SessionValue>(response, cancellationToken), response.Headers.ETag?.Tag ?? "");
    }

    /// <summary>QueryMemoryContext.</summary>
    public Task<MemoryContext> QueryMemoryContextAsync(MemoryQueryRequest request, CancellationToken cancellationToken = default) =>
        SendAsync<MemoryContext>(HttpMethod.Post, options.ContextAppId, "v1/context/query", request, null, cancellationToken);

    /// <summary>WriteTurn; pass a <paramref name="turnId"/> to make retries idempotent.</summary>
    public Task<WriteTurnResult> WriteTurnAsync(string conversationId, string userQuery, string agentResponse, string? agentCode = null, string? userId = null, string? turnId = null, CancellationToken cancellationToken = default) =>
        SendAsync<WriteTurnResult>(HttpMethod.Post, options.SessionAppId, $"v1/sessions/{Escape(conversationId)}/turns",
            new WriteTurnRequest(userId, agentCode, userQuery, agentResponse, turnId), null, cancellationToken);

    /// <summary>CheckpointShortMemory; without a summary CloudMemory summarizes.</summary>
    public Task<CheckpointResult> CheckpointShortMemoryAsync(string conversationId, string? summary = null, int? recentTurns = null, CancellationToken cancellationToken = default) =>
        SendAsync<CheckpointResult>(HttpMethod.Post, options.SessionAppId, $"v1/sessions/{Escape(conversationId)}/checkpoints", new CheckpointRequest(summary, recentTurns), null, cancellationToken);

    /// <summary>FinalizeSessionMemory.</summary>
    public Task<CheckpointResult> FinalizeSessionMemoryAsync(string conversationId, string? summary = null, int? recentTurns = null, CancellationToken cancellationToken = default) =>
        SendAsync<CheckpointResult>(HttpMethod.Post, options.SessionAppId, $"v1/sessions/{Escape(conversationId)}/finalize", new CheckpointRequest(summary, recentTurns), null, cancellationToken);

    /// <summary>Writes this agent's private slot (<see cref="CloudMemoryClientOptions.AgentId"/> must be the slot's agent).</summary>
    public Task<SessionValue> WriteAgentSlotAsync<T>(string conversationId, string agentCode, T value, CancellationToken cancellationToken = default) =>
        SendAsync<SessionValue>(HttpMethod.Put, options.SessionAppId, $"v1/sessions/{Escape(conversationId)}/agent-slots/{Escape(agentCode)}",
            JsonSerializer.SerializeToElement(value, ContractsJson.Options), null, cancellationToken);

    /// <summary>A page of the durable message log.</summary>
    public Task<MessagePage> GetMessagesAsync(string conversationId, long after = 0, int limit = 200, CancellationToken cancellationToken = default) =>
        SendAsync<MessagePage>(HttpMethod.Get, options.ContextAppId, $"v1/conversations/{Escape(conversationId)}/messages?after={after}&limit={limit}", null, null, cancellationToken);

    private async Task<T> SendAsync<T>(HttpMethod method, string appId, string path, object? body, string? ifMatch, CancellationToken cancellationToken)
    {
        using var response = await SendRawAsync(method, appId, path, body, ifMatch, cancellationToken);
        return await ReadAsync<T>(response, cancellationToken);
    }

    private async Task<HttpResponseMessage> SendRawAsync(HttpMethod method, string appId, string path, object? body, string? ifMatch, CancellationToken cancellationToken)
    {
        using var request = CreateRequest(method, appId, path, body, ifMatch);
        return await http.SendAsync(request, cancellationToken);
    }

    private HttpRequestMessage CreateRequest(HttpMethod method, string appId, string path, object? body, string? ifMatch)
    {
        var request = new HttpRequestMessage(method, Resolve(appId, path));
        if (body is not null)
        {
            request.Content = JsonContent.Create(body, body.GetType(), options: ContractsJson.Options);
        }
        if (ifMatch is not null)
        {
            request.Headers.IfMatch.Add(EntityTagHeaderValue.Parse(ifMatch));
        }
        if (options.TenantId is not null)
        {
            request.Headers.Add("X-Tenant-Id", options.TenantId);
        }
        if (options.AgentId is not null)
        {
            request.Headers.Add("X-Agent-Id", options.AgentId);
        }
        if (options.ApiKey is not null)
        {
            request.Headers.Add("X-Api-Key", options.ApiKey);
        }
        if (options.BearerToken is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", options.BearerToken);
        }
        if (options.DaprHttpPort is not null && options.DaprApiToken is not null)
        {
            request.Headers.Add("dapr-api-token", options.DaprApiToken);
        }
        return request;
    }

    private Uri Resolve(string appId, string path)
    {
        if (options.DaprHttpPort is { } port)
        {
            return new Uri($"http://127.0.0.1:{port}/v1.0/invoke/{appId}/method/{path}");
        }
        var baseAddress = options.BaseAddress ?? http.BaseAddress ?? throw new InvalidOperationException("Set BaseAddress or DaprHttpPort.");
        return new Uri(baseAddress, path);
    }

    private static async Task<T> ReadAsync<T>(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return (await response.Content.ReadFromJsonAsync<T>(ContractsJson.Options, cancellationToken))!;
        }
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        string? code = null;
        var detail = text;
        try
        {
            using var problem = JsonDocument.Parse(text);
            code = problem.RootElement.TryGetProperty("code", out var c) ? c.GetString() : null;
            detail = problem.RootElement.TryGetProperty("detail", out var d) ? d.GetString() ?? text : text;
        }
        catch (JsonException)
        {
        }
        throw new CloudMemoryException(response.StatusCode, code, $"{(int)response.StatusCode} {code}: {detail}");
    }

    private static string Escape(string segment) => Uri.EscapeDataString(segment);
}
