using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.BuildingBlocks.State;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace CloudMemory.Dapr.Tests.E2E;

/// <summary>
/// Against a real daprd with components/in-memory (no placement: actors are not covered here).
/// Compiled only with <c>dotnet test tests/CloudMemory.Dapr.Tests -p:DaprE2E=true</c>; it fails,
/// rather than passing silently, when daprd is not on PATH.
/// </summary>
public sealed class DaprdE2ETests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly List<string> _daprdLog = [];
    private Process? _daprd;
    private WebApplication? _app;
    private readonly TaskCompletionSource<CloudEvent> _received = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public async Task InitializeAsync()
    {
        var daprd = FindOnPath("daprd") ?? throw new InvalidOperationException("DaprE2E=true but 'daprd' is not on PATH: install the Dapr CLI and run 'dapr init'.");
        int appPort = FreePort(), httpPort = FreePort(), grpcPort = FreePort(), metricsPort = FreePort();
        _daprd = Process.Start(new ProcessStartInfo(daprd)
        {
            ArgumentList =
            {
                "--app-id", "session", "--app-port", appPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--dapr-http-port", httpPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--dapr-grpc-port", grpcPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--metrics-port", metricsPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--resources-path", Path.Combine(RepoPaths.Root, "components", "in-memory"),
            },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        _daprd.OutputDataReceived += (_, e) => Log(e.Data);
        _daprd.ErrorDataReceived += (_, e) => Log(e.Data);
        _daprd.BeginOutputReadLine();
        _daprd.BeginErrorReadLine();

        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{appPort}");
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["CloudMemory:Runtime"] = "Dapr",
            ["DAPR_HTTP_PORT"] = httpPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["DAPR_GRPC_PORT"] = grpcPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["APP_ID"] = "session",
        });
        builder.AddCloudMemoryRuntime();
        builder.Services.AddSingleton(new Subscription("e2e", "/events/e2e", (e, _) =>
        {
            _received.TrySetResult(e);
            return Task.FromResult(DeliveryStatus.Success);
        }));
        _app = builder.Build();
        _app.MapCloudMemoryRuntime();
        await _app.StartAsync();
    }

    public async Task DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
        if (_daprd is { HasExited: false })
        {
            _daprd.Kill(entireProcessTree: true);
            await _daprd.WaitForExitAsync();
        }
        _daprd?.Dispose();
        lock (_daprdLog)
        {
            foreach (var line in _daprdLog.TakeLast(40))
            {
                output.WriteLine(line);
            }
        }
    }

    [Fact]
    public async Task StateAndPubSub_ThroughRealDaprd()
    {
        var store = _app!.Services.GetRequiredService<IStateStore>();
        await store.SaveAsync("e2e-key", Encoding.UTF8.GetBytes("""{"v":1}"""));
        var entry = await store.GetAsync("e2e-key");
        Encoding.UTF8.GetString(entry!.Value.Span).Should().Be("""{"v":1}""");
        await store.Invoking(s => s.SaveAsync("e2e-key", Encoding.UTF8.GetBytes("2"), "999999")).Should().ThrowAsync<StateConcurrencyException>();

        // daprd reads /dapr/subscribe once the app port answers; publish until the subscription is live.
        using var cts = new CancellationTokenSource(Wait.Timeout);
        var publisher = _app.Services.GetRequiredService<IEventPublisher>();
        string id;
        do
        {
            id = await publisher.PublishAsync("e2e", "test.e2e.v1", new { n = 1 }, cancellationToken: cts.Token);
        }
        while (await Task.WhenAny(_received.Task, Task.Delay(500, cts.Token)) != _received.Task);
        (await _received.Task).Type.Should().Be("test.e2e.v1");
    }

    private void Log(string? line)
    {
        if (line is not null)
        {
            lock (_daprdLog)
            {
                _daprdLog.Add(line);
            }
        }
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Select(dir => Path.Combine(dir, name)).FirstOrDefault(File.Exists);

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
