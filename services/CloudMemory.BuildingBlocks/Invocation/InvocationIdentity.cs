using CloudMemory.BuildingBlocks.Hosting;
using Microsoft.AspNetCore.Http;

namespace CloudMemory.BuildingBlocks.Invocation;

/// <summary>Calls between the apps on behalf of a caller carry the caller's credential, so the callee checks the same identity.</summary>
public static class InvocationIdentity
{
    // The headers that carry identity in the auth modes none, apikey and jwt.
    private static readonly string[] Headers = ["Authorization", "X-Api-Key", Tenant.HeaderName, Tenant.AgentHeaderName];

    /// <summary>Copies the caller's identity headers from <paramref name="caller"/> onto <paramref name="request"/>.</summary>
    public static HttpRequestMessage WithIdentityOf(this HttpRequestMessage request, HttpContext caller)
    {
        foreach (var header in Headers)
        {
            if (caller.Request.Headers.TryGetValue(header, out var value) && value.Count > 0)
            {
                request.Headers.TryAddWithoutValidation(header, value.ToString());
            }
        }
        return request;
    }
}
