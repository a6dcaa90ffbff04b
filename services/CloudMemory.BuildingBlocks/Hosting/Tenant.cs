using CloudMemory.BuildingBlocks.Security;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.BuildingBlocks.Hosting;

/// <summary>
/// The tenant and agent of a request. Without authentication (<c>CloudMemory:Auth:Mode=none</c>)
/// they are the headers <c>X-Tenant-Id</c> (default <c>default</c>) and <c>X-Agent-Id</c>; with
/// authentication they come from the credential, and a header that disagrees is refused (403).
/// </summary>
public static class Tenant
{
    /// <summary>The header name.</summary>
    public const string HeaderName = "X-Tenant-Id";

    /// <summary>The tenant when no header is sent.</summary>
    public const string Default = "default";

    /// <summary>The agent header used for agent-scoped writes.</summary>
    public const string AgentHeaderName = "X-Agent-Id";

    /// <summary>Reads and validates the tenant of <paramref name="context"/>.</summary>
    public static string From(HttpContext context)
    {
        var header = context.Request.Headers[HeaderName].ToString();
        if (Authenticated(context) is not { } identity)
        {
            return string.IsNullOrEmpty(header) ? Default : Ids.Require(header, "tenant");
        }
        if (identity.Tenant is null || !Ids.IsValid(identity.Tenant))
        {
            throw new ProblemException(401, "credential-without-tenant", "The credential names no valid tenant.");
        }
        if (header.Length > 0 && header != identity.Tenant)
        {
            throw new ProblemException(403, "tenant-mismatch", $"{HeaderName} differs from the tenant of the credential.");
        }
        return identity.Tenant;
    }

    /// <summary>
    /// The agent of <paramref name="context"/>, or null: <c>X-Agent-Id</c> without authentication,
    /// the credential's agent with it (a credential without an agent acts as no agent).
    /// </summary>
    public static string? AgentFrom(HttpContext context)
    {
        var header = context.Request.Headers[AgentHeaderName].ToString();
        if (Authenticated(context) is not { } identity)
        {
            return string.IsNullOrEmpty(header) ? null : Ids.Require(header, "agentId");
        }
        From(context);
        if (header.Length > 0 && header != identity.Agent)
        {
            throw new ProblemException(403, "agent-mismatch", $"{AgentHeaderName} differs from the agent of the credential.");
        }
        return identity.Agent is { } agent && Ids.IsValid(agent) ? agent : null;
    }

    /// <summary>The caller's identity when authentication is on; null in mode none; 401 when on but the request carries no valid credential.</summary>
    public static CallerIdentity? Authenticated(HttpContext context)
    {
        var mode = context.RequestServices?.GetService<AuthOptions>()?.Mode ?? AuthMode.None;
        if (mode == AuthMode.None)
        {
            return null;
        }
        return CallerIdentity.From(context.User)
            ?? throw new ProblemException(401, "unauthenticated", mode == AuthMode.ApiKey
                ? "Send a valid API key (X-Api-Key or Authorization: Bearer)."
                : "Send a valid bearer token (Authorization: Bearer).");
    }
}
