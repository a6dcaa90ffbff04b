using System.Net;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CloudMemory.Dapr;

/// <summary>
/// Holds start-up until the sidecar can serve this app's calls (<c>GET /v1.0/healthz/outbound</c>
/// answers 204), so the first state read does not race daprd's component loading. The outbound
/// probe does not depend on the app being up, unlike <c>/v1.0/healthz</c>, so it cannot deadlock.
/// </summary>
public sealed class DaprSidecarWaiter(DaprSidecarClient sidecar, TimeProvider time, ILogger<DaprSidecarWaiter> logger) : IHostedService
{
    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken) =>
        sidecar.Options.WaitForSidecar ? WaitAsync(cancellationToken) : Task.CompletedTask;

    /// <summary>Polls until 204 or <see cref="DaprOptions.SidecarWaitTimeout"/>; throws a clear error on timeout.</summary>
    public async Task WaitAsync(CancellationToken cancellationToken)
    {
        var timeout = sidecar.Options.SidecarWaitTimeout;
        var started = time.GetTimestamp();
        string lastProblem = "no answer yet";
        while (true)
        {
            try
            {
                using var response = await sidecar.SendAsync(() => new HttpRequestMessage(HttpMethod.Get, sidecar.Uri("v1.0/healthz/outbound")),
                    idempotent: false, cancellationToken);
                if (response.StatusCode == HttpStatusCode.NoContent)
                {
                    logger.LogInformation("Dapr sidecar at {Endpoint} is ready", sidecar.Options.HttpEndpoint);
                    return;
                }
                lastProblem = $"answered {(int)response.StatusCode}";
            }
            catch (HttpRequestException ex)
            {
                lastProblem = ex.Message;
            }
            if (time.GetElapsedTime(started) >= timeout)
            {
                throw new InvalidOperationException(
                    $"The Dapr sidecar at {sidecar.Options.HttpEndpoint} was not ready within {timeout} ({lastProblem}). " +
                    "Start the app with 'dapr run' (or 'dapr run -f dapr.yaml'), check DAPR_HTTP_PORT, " +
                    "or set CloudMemory:Runtime=Embedded to run without Dapr.");
            }
            await Task.Delay(TimeSpan.FromMilliseconds(250), time, cancellationToken);
        }
    }

    /// <inheritdoc />
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
