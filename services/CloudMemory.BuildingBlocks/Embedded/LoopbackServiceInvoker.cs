using CloudMemory.BuildingBlocks.Invocation;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace CloudMemory.BuildingBlocks.Embedded;

/// <summary>
/// Embedded service invocation: all apps live in this process, so a call to any app id goes to this
/// process's own HTTP endpoint (the same routes a Dapr sidecar would forward to).
/// </summary>
public sealed class LoopbackServiceInvoker(IServer server, IHttpClientFactory httpClientFactory) : IServiceInvoker
{
    /// <inheritdoc />
    public Task<HttpResponseMessage> InvokeAsync(string appId, HttpRequestMessage request, CancellationToken cancellationToken = default)
    {
        var address = server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
            ?? throw new InvalidOperationException("the embedded host has no HTTP address to invoke");
        address = address.Replace("://+", "://127.0.0.1", StringComparison.Ordinal).Replace("://*", "://127.0.0.1", StringComparison.Ordinal)
            .Replace("://[::]", "://127.0.0.1", StringComparison.Ordinal).Replace("://0.0.0.0", "://127.0.0.1", StringComparison.Ordinal);
        request.RequestUri = new Uri(new Uri(address.TrimEnd('/') + "/"), request.RequestUri!.ToString().TrimStart('/'));
        return httpClientFactory.CreateClient(nameof(LoopbackServiceInvoker)).SendAsync(request, cancellationToken);
    }
}
