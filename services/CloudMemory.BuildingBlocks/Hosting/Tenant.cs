using Microsoft.AspNetCore.Http;

namespace CloudMemory.BuildingBlocks.Hosting;

/// <summary>The tenant of a request: header <c>X-Tenant-Id</c>, default <c>default</c>.</summary>
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
        var value = context.Request.Headers[HeaderName].ToString();
        return string.IsNullOrEmpty(value) ? Default : Ids.Require(value, "tenant");
    }
}
