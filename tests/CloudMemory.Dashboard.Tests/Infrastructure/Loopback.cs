using System.Net;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.Dashboard.Tests.Infrastructure;

/// <summary>Starts a factory's app on Kestrel, on a free loopback port, so a browser can reach it.</summary>
public static class Loopback
{
    /// <summary>Starts <paramref name="factory"/>'s host and returns its base URL, e.g. http://127.0.0.1:41234/.</summary>
    /// <remarks>
    /// The port is a Kestrel endpoint configured before the build. <c>UseKestrel(0)</c> instead
    /// rewrites the server's addresses after the build, while the app's own <c>Main</c> (which the
    /// factory lets run on) may already be starting the server: now and then that start wins and
    /// the rewrite throws "addresses cannot be modified after the server has started".
    /// </remarks>
    public static Uri StartOnFreePort<TEntryPoint>(this WebApplicationFactory<TEntryPoint> factory)
        where TEntryPoint : class
    {
        factory.UseKestrel(options => options.Listen(IPAddress.Loopback, 0));
        factory.StartServer();
        var address = factory.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new Uri(address.TrimEnd('/') + "/");
    }
}
