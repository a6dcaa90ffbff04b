using Dapr.Client;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CloudMemory.Dapr;

/// <summary>
/// Holds start-up until the sidecar can serve this app's calls (the SDK's outbound health check), so
/// the first state read does not race daprd's component loading, and fails with a message that says
/// what to do when it never becomes ready. The outbound probe does not wait for the app, so it cannot deadlock.
/// </summary>
public sealed class DaprSidecarWaiter(DaprClient dapr, DaprOptions options, ILogger<DaprSidecarWaiter> logger) : IHostedService
{
    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken) =>
        options.WaitForSidecar ? WaitAsync(cancellationToken) : Task.CompletedTask;

    /// <summary>Waits up to <see cref="DaprOptions.SidecarWaitTimeout"/>; throws a clear error on timeout.</summary>
    public async Task WaitAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.SidecarWaitTimeout);
        try
        {
            await dapr.WaitForSidecarAsync(timeout.Token);
            logger.LogInformation("Dapr sidecar at {Endpoint} is ready", options.HttpEndpoint);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new InvalidOperationException(
                $"The Dapr sidecar at {options.HttpEndpoint} was not ready within {options.SidecarWaitTimeout}. " +
                "Start the app with 'dapr run' (or 'dapr run -f dapr.yaml'), check DAPR_HTTP_PORT and DAPR_GRPC_PORT, " +
                "or set CloudMemory:Runtime=Embedded to run without Dapr.");
        }
    }

    /// <inheritdoc />
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
