using CloudMemory.BuildingBlocks.Invocation;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.Testing;

/// <summary>
/// The service invoker of a test host (linked into each test project that needs it): a test server has
/// no network address, so calls between the apps (erasure, experiences, provenance) go through it.
/// </summary>
public sealed class TestServerInvoker(IServiceProvider services) : IServiceInvoker
{
    public async Task<HttpResponseMessage> InvokeAsync(string appId, HttpRequestMessage request, CancellationToken cancellationToken = default)
    {
        var server = (TestServer)services.GetRequiredService<IServer>();
        using var client = new HttpClient(server.CreateHandler()) { BaseAddress = new Uri("http://localhost/") };
        request.RequestUri = new Uri(client.BaseAddress, request.RequestUri!.ToString().TrimStart('/'));
        return await client.SendAsync(request, cancellationToken); // the body is buffered: it outlives the client
    }
}

public static class TestServerInvokerExtensions
{
    /// <summary>Replaces the host's service invoker with <see cref="TestServerInvoker"/>.</summary>
    public static IServiceCollection AddTestServerInvoker(this IServiceCollection services) =>
        services.AddSingleton<IServiceInvoker>(sp => new TestServerInvoker(sp));
}
