using CloudMemory.BuildingBlocks.Hosting;
using Dapr;
using Grpc.Core;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace CloudMemory.Dapr.AppSide;

/// <summary>
/// A sidecar that cannot be reached (gRPC Unavailable or DeadlineExceeded after the channel's
/// retries, or a refused connection on the actor and invocation HTTP API) is a dependency outage,
/// not a failure of the request: 503 <c>sidecar-unavailable</c> with <c>Retry-After</c>, instead of
/// 500. Runs after the shared problem handler (which does not know Dapr's exceptions).
/// </summary>
internal sealed class SidecarUnavailableHandler(ILogger<SidecarUnavailableHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        if (!IsUnavailable(exception, depth: 0))
        {
            return false;
        }
        logger.LogWarning(exception, "The Dapr sidecar is unavailable ({Path})", httpContext.Request.Path);
        httpContext.Response.Headers.RetryAfter = "1";
        await Problems.Create(StatusCodes.Status503ServiceUnavailable, "sidecar-unavailable", "A dependency is unavailable.",
            "The Dapr sidecar cannot be reached, so the request may not have completed; retry it later.").ExecuteAsync(httpContext);
        return true;
    }

    internal static bool IsUnavailable(Exception? exception, int depth) => depth < 8 && exception switch
    {
        null => false,
        RpcException rpc => rpc.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded,
        HttpRequestException http => http.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError,
        DaprException or AggregateException => IsUnavailable(exception.InnerException, depth + 1),
        _ => false,
    };
}
