using Microsoft.AspNetCore.Http;

namespace CloudMemory.Dashboard;

/// <summary>
/// Who the browser is, as the dashboard forwards it to the API: a credential (API key or JWT) when
/// the API authenticates, or a tenant and agent for an API in mode none. Held in HttpOnly,
/// SameSite=Strict cookies scoped to the dashboard's path; the API, not the dashboard, decides what
/// the caller may see.
/// </summary>
public sealed record DashboardCaller(string? Credential, string? Tenant, string? Agent)
{
    /// <summary>Cookie holding the API key or JWT.</summary>
    public const string CredentialCookie = "cm-credential";

    /// <summary>Cookie holding the tenant (API in mode none).</summary>
    public const string TenantCookie = "cm-tenant";

    /// <summary>Cookie holding the agent (API in mode none; shared contexts need one).</summary>
    public const string AgentCookie = "cm-agent";

    /// <summary>Reads the caller from the request's cookies.</summary>
    public static DashboardCaller From(HttpContext http) => new(
        NullIfEmpty(http.Request.Cookies[CredentialCookie]),
        NullIfEmpty(http.Request.Cookies[TenantCookie]),
        NullIfEmpty(http.Request.Cookies[AgentCookie]));

    /// <summary>What the header shows: the tenant, or that a credential is in use.</summary>
    public string Describe() => Credential is not null
        ? "signed in with a credential"
        : $"tenant {Tenant ?? "default"}" + (Agent is null ? "" : $", agent {Agent}");

    /// <summary>Stores the caller in the response's cookies (an empty value removes its cookie).</summary>
    public void Store(HttpContext http)
    {
        Set(http, CredentialCookie, Credential);
        Set(http, TenantCookie, Credential is null ? Tenant : null);
        Set(http, AgentCookie, Credential is null ? Agent : null);
    }

    /// <summary>Removes every cookie of the caller.</summary>
    public static void Clear(HttpContext http)
    {
        foreach (var name in new[] { CredentialCookie, TenantCookie, AgentCookie })
        {
            http.Response.Cookies.Delete(name, Options(http));
        }
    }

    private static void Set(HttpContext http, string name, string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            http.Response.Cookies.Delete(name, Options(http));
        }
        else
        {
            http.Response.Cookies.Append(name, value, Options(http));
        }
    }

    private static CookieOptions Options(HttpContext http) => new()
    {
        HttpOnly = true,
        SameSite = SameSiteMode.Strict,
        Secure = http.Request.IsHttps,
        Path = DashboardOptions.PathBase,
        IsEssential = true,
    };

    private static string? NullIfEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
