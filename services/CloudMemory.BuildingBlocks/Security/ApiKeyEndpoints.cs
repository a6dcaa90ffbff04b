using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Auth;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace CloudMemory.BuildingBlocks.Security;

/// <summary><c>/v1/auth/keys</c>: a tenant admin key issues, lists and revokes its tenant's API keys.</summary>
public static class ApiKeyEndpoints
{
    /// <summary>Maps the key management API.</summary>
    public static IEndpointRouteBuilder MapApiKeyEndpoints(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/v1/auth/keys").WithTags("Auth");
        group.MapPost("/", CreateAsync).WithName("CreateApiKey");
        group.MapGet("/", ListAsync).WithName("ListApiKeys");
        group.MapDelete("/{keyId}", RevokeAsync).WithName("RevokeApiKey");
        return endpoints;
    }

    /// <summary>Issues a key; the response holds its only copy.</summary>
    public static async Task<Created<IssuedApiKey>> CreateAsync(CreateApiKeyRequest? request, HttpContext http, ApiKeys keys, CancellationToken ct)
    {
        var tenant = RequireAdmin(http);
        if (request is null)
        {
            throw new ProblemException(400, "missing-body", "A JSON body {agentId, name, admin} is required.");
        }
        var agent = string.IsNullOrEmpty(request.AgentId) ? null : Ids.Require(request.AgentId, "agentId");
        if (request.Name is { Length: > 200 })
        {
            throw new ProblemException(400, "invalid-name", "'name' is at most 200 characters.");
        }
        if (request.Name is not null && request.Name.Any(char.IsControl))
        {
            throw new ProblemException(400, "invalid-name", "'name' must not contain control characters.");
        }
        var (key, record) = await keys.IssueAsync(tenant, agent, request.Admin, request.Name, ct);
        return TypedResults.Created($"/v1/auth/keys/{record.Id}", new IssuedApiKey(key, Info(record)));
    }

    /// <summary>The tenant's keys, revoked ones included, without secrets.</summary>
    public static async Task<Ok<List<ApiKeyInfo>>> ListAsync(HttpContext http, IApiKeyStore store, CancellationToken ct)
    {
        var tenant = RequireAdmin(http);
        return TypedResults.Ok((await store.ListAsync(tenant, ct)).Select(Info).ToList());
    }

    /// <summary>Revokes a key at once: the next request with it is refused.</summary>
    public static async Task<NoContent> RevokeAsync(string keyId, HttpContext http, IApiKeyStore store, TimeProvider time, CancellationToken ct)
    {
        var tenant = RequireAdmin(http);
        Ids.Require(keyId, "keyId");
        return await store.RevokeAsync(tenant, keyId, time.GetUtcNow(), ct)
            ? TypedResults.NoContent()
            : throw new ProblemException(404, "api-key-not-found", $"This tenant has no API key '{keyId}'.");
    }

    private static string RequireAdmin(HttpContext http)
    {
        var identity = Tenant.Authenticated(http)
            ?? throw new ProblemException(404, "api-keys-disabled", "API keys are managed only when CloudMemory:Auth:Mode is apikey.");
        var tenant = Tenant.From(http);
        return identity.IsAdmin
            ? tenant
            : throw new ProblemException(403, "admin-required", "Only a tenant admin key manages API keys.");
    }

    private static ApiKeyInfo Info(ApiKeyRecord key) => new(key.Id, key.Tenant, key.Agent, key.IsAdmin, key.Name, key.CreatedAt, key.RevokedAt);
}
