using CloudMemory.Testing;
using System.Net.Http.Json;
using System.Text.Json;
using CloudMemory.BuildingBlocks.Embedded;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.Contracts;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.Session.Tests.Infrastructure;

/// <summary>Which message log the embedded host runs on.</summary>
public enum LogKind
{
    InMemory,
    Postgres,
}

/// <summary>The embedded host (all four services) under test, on the in-memory or PostgreSQL log.</summary>
public sealed class CloudMemoryFactory(LogKind kind, IDictionary<string, string?>? settings = null) : WebApplicationFactory<Host.Program>
{
    public MutableTimeProvider Time { get; } = new();

    public List<CloudEvent> Events { get; } = [];

    private IDisposable? _tap;

    /// <summary>Extra host configuration of a test (e.g. a failing dependency).</summary>
    public Action<IWebHostBuilder>? Configure { get; set; }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Development");
        if (kind == LogKind.Postgres)
        {
            builder.UseSetting("ConnectionStrings:CloudMemory", PostgresTestServer.ConnectionString);
            // The shared test database holds every test's conversations: no start-up checkpoint scan over them (CrashRecoveryTests covers it on a database of its own).
            builder.UseSetting("CloudMemory:Session:CheckpointRecoveryHours", "0");
        }
        builder.UseSetting("CloudMemory:Llm:Endpoint", "");
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            builder.UseSetting(key, value);
        }
        builder.ConfigureTestServices(services =>
        {
            services.AddSingleton<TimeProvider>(Time);
            // Service invocation (erasure across services) goes to this test server, as loopback would to a real one.
            services.AddTestServerInvoker();
        });
        Configure?.Invoke(builder);
    }

    /// <summary>Starts the host and records every published event.</summary>
    public HttpClient CreateRecordingClient()
    {
        var client = CreateClient();
        _tap ??= Services.GetRequiredService<InMemoryEventBus>().Tap(e =>
        {
            lock (Events)
            {
                Events.Add(e);
            }
        });
        return client;
    }

    public List<CloudEvent> EventsOfType(string type)
    {
        lock (Events)
        {
            return Events.Where(e => e.Type == type).ToList();
        }
    }

    /// <summary>Waits until published events are delivered and the workflows they started have finished.</summary>
    public Task WhenQuietAsync() => EmbeddedQuiet.WhenQuietAsync(Services, TimeSpan.FromSeconds(30));

    /// <summary>Waits until background checkpoint workflows have finished.</summary>
    public Task WhenWorkflowsIdleAsync() => Services.GetRequiredService<EmbeddedWorkflowRunner>().WhenIdleAsync().WaitAsync(TimeSpan.FromSeconds(30));

    protected override void Dispose(bool disposing)
    {
        _tap?.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>Sends invocations to the factory's in-memory server (the embedded host has no socket under test).</summary>
public static class HttpJson
{
    public static async Task<T> ReadAsync<T>(this HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStringAsync();
        response.IsSuccessStatusCode.Should().BeTrue($"{(int)response.StatusCode} {body}");
        return JsonSerializer.Deserialize<T>(body, ContractsJson.Options)!;
    }

    public static Task<HttpResponseMessage> PostJsonAsync<T>(this HttpClient client, string url, T body, string? tenant = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = JsonContent.Create(body, options: ContractsJson.Options) };
        if (tenant is not null)
        {
            request.Headers.Add("X-Tenant-Id", tenant);
        }
        return client.SendAsync(request);
    }

    public static async Task<JsonElement> ProblemAsync(this HttpResponseMessage response, int status)
    {
        var body = await response.Content.ReadAsStringAsync();
        ((int)response.StatusCode).Should().Be(status, body);
        response.Content.Headers.ContentType?.MediaType.Should().Be("application/problem+json");
        return JsonDocument.Parse(body).RootElement;
    }
}
