using System.Diagnostics;
using System.Net;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Security.Tests.Infrastructure;

namespace CloudMemory.Security.Tests.Auth;

/// <summary>Mode none only on loopback; configuration errors name key, value and range, and exit non-zero without a stack trace.</summary>
public sealed class StartupGuardTests
{
    [Theory]
    [InlineData("http://0.0.0.0:0")]
    [InlineData("http://+:8080")]
    [InlineData("http://*:8080")]
    [InlineData("http://10.1.2.3:80")]
    [InlineData("http://localhost:0;http://[::]:0")]
    public void Build_NoAuthOnNonLoopbackAddress_Refuses(string urls)
    {
        var act = () => Host.Program.Build(["--urls", urls]);
        act.Should().Throw<StartupConfigurationException>().Which.Key.Should().Be("CloudMemory:Auth:Mode");
    }

    [Theory]
    [InlineData("http://localhost:0")]
    [InlineData("http://127.0.0.1:0;http://[::1]:0")]
    public async Task Build_NoAuthOnLoopback_Starts(string urls)
    {
        await using var app = Host.Program.Build(["--urls", urls]);
        app.Should().NotBeNull();
    }

    [Fact]
    public async Task Build_NoAuthOnNonLoopbackWithOverride_Starts()
    {
        await using var app = Host.Program.Build(["--urls", "http://0.0.0.0:0", "--CloudMemory:Auth:AllowAnonymousNonLoopback=true"]);
        app.Should().NotBeNull();
    }

    [Theory]
    [InlineData("--CloudMemory:Auth:Mode=open", "CloudMemory:Auth:Mode", "none, apikey or jwt")]
    [InlineData("--CloudMemory:RateLimit:PermitsPerSecond=-5", "CloudMemory:RateLimit:PermitsPerSecond", "0 to")]
    [InlineData("--urls=http://0.0.0.0:0", "CloudMemory:Auth:Mode", "apikey or jwt")]
    public async Task Process_BadConfiguration_ExitsNonZeroNamingTheKeyWithoutStackTrace(string argument, string key, string allowed)
    {
        var hostDll = Path.Combine(AppContext.BaseDirectory, "CloudMemory.Host.dll");
        using var process = Process.Start(new ProcessStartInfo("dotnet", [hostDll, "--urls=http://127.0.0.1:0", argument])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            WorkingDirectory = AppContext.BaseDirectory,
        })!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        var output = await stderr + await stdout;
        process.ExitCode.Should().Be(StartupErrors.ConfigurationExitCode, output);
        output.Should().Contain(key).And.Contain(allowed).And.NotContain("   at ");
    }

    [Fact]
    public async Task RateLimit_PerTenant_Answers429ProblemAndSparesOtherTenants()
    {
        using var host = new SecureHost(StoreKind.InMemory, new Dictionary<string, string?>
        {
            ["CloudMemory:RateLimit:PermitsPerSecond"] = "1",
            ["CloudMemory:RateLimit:Burst"] = "2",
        });
        using var http = host.CreateClient();
        var noisy = SecureHost.NewId("noisy");
        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? limited = null;
        for (var i = 0; i < 10 && limited is null; i++)
        {
            var response = await http.SendAsync(Http.Request(HttpMethod.Get, "/v1/sessions/missing", tenant: noisy));
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                limited = response;
            }
        }
        limited.Should().NotBeNull(string.Join(",", statuses));
        (await limited!.ProblemCodeAsync(429)).Should().Be("rate-limited");
        limited!.Headers.RetryAfter.Should().NotBeNull();

        var quiet = await http.SendAsync(Http.Request(HttpMethod.Get, "/v1/sessions/missing", tenant: SecureHost.NewId("quiet")));
        quiet.StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await http.GetAsync("/healthz")).StatusCode.Should().Be(HttpStatusCode.OK);
    }
}
