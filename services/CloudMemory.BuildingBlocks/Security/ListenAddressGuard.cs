using System.Net;
using CloudMemory.BuildingBlocks.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace CloudMemory.BuildingBlocks.Security;

/// <summary>
/// Refuses to start without authentication on an address other than loopback (unless
/// <c>CloudMemory:Auth:AllowAnonymousNonLoopback</c>), and says at start which mode is in force.
/// </summary>
internal static class ListenAddressGuard
{
    /// <summary>Runs before the host starts, so a refusal is one configuration error, not a failed start.</summary>
    public static void Check(AuthOptions auth, IConfiguration configuration, IServer? server, ILogger logger)
    {
        if (auth.Mode != AuthMode.None)
        {
            logger.LogInformation("Authentication: {Mode}; the tenant and agent come from the credential.", auth.Mode);
            return;
        }
        var exposed = ListenAddresses(configuration, server).Where(a => !IsLoopback(a)).ToList();
        if (exposed.Count == 0)
        {
            logger.LogWarning("Authentication: none (loopback only): the tenant and agent are whatever X-Tenant-Id and X-Agent-Id say. Set CloudMemory:Auth:Mode to apikey or jwt before exposing this host.");
            return;
        }
        if (auth.AllowAnonymousNonLoopback)
        {
            logger.LogWarning("Authentication: none on {Addresses} (CloudMemory:Auth:AllowAnonymousNonLoopback=true): anyone who reaches these addresses can act as any tenant.", string.Join(", ", exposed));
            return;
        }
        throw new StartupConfigurationException($"{AuthOptions.SectionName}:Mode", "none",
            $"apikey or jwt when listening on a non-loopback address ({string.Join(", ", exposed)}); set {AuthOptions.SectionName}:AllowAnonymousNonLoopback=true only behind a gateway that authenticates");
    }

    /// <summary>Every address the server will bind: urls, http(s)_ports, Kestrel endpoints and addresses added in code.</summary>
    internal static IEnumerable<string> ListenAddresses(IConfiguration configuration, IServer? server)
    {
        foreach (var url in (configuration["urls"] ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            yield return url;
        }
        foreach (var key in new[] { "http_ports", "https_ports" })
        {
            foreach (var port in (configuration[key] ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                yield return $"http://*:{port}";
            }
        }
        foreach (var endpoint in configuration.GetSection("Kestrel:Endpoints").GetChildren())
        {
            if (endpoint["Url"] is { Length: > 0 } url)
            {
                yield return url;
            }
        }
        if (server?.Features.Get<IServerAddressesFeature>() is { } feature)
        {
            foreach (var address in feature.Addresses)
            {
                yield return address;
            }
        }
    }

    internal static bool IsLoopback(string url)
    {
        var rest = url.Contains("://", StringComparison.Ordinal) ? url[(url.IndexOf("://", StringComparison.Ordinal) + 3)..] : url;
        string host;
        if (rest.StartsWith('['))
        {
            var close = rest.IndexOf(']', StringComparison.Ordinal);
            host = close > 0 ? rest[1..close] : rest;
        }
        else
        {
            var end = rest.IndexOfAny([':', '/']);
            host = end >= 0 ? rest[..end] : rest;
        }
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }
        return IPAddress.TryParse(host, out var ip) && IPAddress.IsLoopback(ip);
    }
}
