using System.Collections.Concurrent;
using CloudMemory.BuildingBlocks.Invocation;
using Dapr.Client;

namespace CloudMemory.Dapr;

/// <summary>
/// <see cref="IServiceInvoker"/> over the SDK's invoking <see cref="HttpClient"/> (one per app id),
/// which rewrites <c>http://{appId}/{path}</c> to the sidecar's invoke API and adds the API token.
/// Not retried here: the request may not be repeatable, and daprd applies the target's resiliency policy.
/// </summary>
public sealed class DaprServiceInvoker(DaprClient dapr) : IServiceInvoker, IDisposable
{
    private readonly ConcurrentDictionary<string, HttpClient> _clients = new(StringComparer.Ordinal);

    /// <inheritdoc />
    public Task<HttpResponseMessage> InvokeAsync(string appId, HttpRequestMessage request, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(appId);
        var relative = request.RequestUri ?? throw new ArgumentException("the request needs a RequestUri relative to the callee", nameof(request));
        var text = relative.IsAbsoluteUri ? relative.PathAndQuery : relative.OriginalString;
        var client = _clients.GetOrAdd(appId, id =>
        {
            var http = dapr.CreateInvokableHttpClient(id);
            http.Timeout = Timeout.InfiniteTimeSpan; // callers pass cancellation
            return http;
        });
        request.RequestUri = new Uri(client.BaseAddress!, text.TrimStart('/'));
        return client.SendAsync(request, cancellationToken);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var client in _clients.Values)
        {
            client.Dispose();
        }
    }
}
