namespace CloudMemory.BuildingBlocks.Invocation;

/// <summary>
/// Calls another CloudMemory app by app id (Dapr service invocation). The request path is the
/// callee's own route, e.g. <c>v1/sessions/c1</c>.
/// </summary>
public interface IServiceInvoker
{
    /// <summary>Sends <paramref name="request"/> (its RequestUri relative to the callee) to <paramref name="appId"/>.</summary>
    Task<HttpResponseMessage> InvokeAsync(string appId, HttpRequestMessage request, CancellationToken cancellationToken = default);
}
