using CloudMemory.BuildingBlocks.Invocation;

namespace CloudMemory.Dapr;

/// <summary>
/// <see cref="IServiceInvoker"/> over <c>/v1.0/invoke/{appId}/method/{path}</c>. Not retried here:
/// the request may not be repeatable, and daprd applies the resiliency policy of the target app.
/// </summary>
public sealed class DaprServiceInvoker(DaprSidecarClient sidecar) : IServiceInvoker
{
    /// <inheritdoc />
    public Task<HttpResponseMessage> InvokeAsync(string appId, HttpRequestMessage request, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(appId);
        var relative = request.RequestUri ?? throw new ArgumentException("the request needs a RequestUri relative to the callee", nameof(request));
        var text = relative.IsAbsoluteUri ? relative.PathAndQuery : relative.OriginalString;
        request.RequestUri = sidecar.Uri($"v1.0/invoke/{Uri.EscapeDataString(appId)}/method/{text.TrimStart('/')}");
        return sidecar.SendRawAsync(request, cancellationToken);
    }
}
