using System.Net.Http.Json;
using System.Text.Json;
using CloudMemory.BuildingBlocks.Embedded;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.Contracts;
using CloudMemory.Testing;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using CloudMemory.Contracts.Feedback;

namespace CloudMemory.Feedback.Tests.Infrastructure;

/// <summary>Which stores the embedded host runs on.</summary>
public enum StoreKind
{
    InMemory,
    Postgres,
}

/// <summary>The embedded host (all four services) under test, on in-memory stores or PostgreSQL; records published events.</summary>
public sealed class FeedbackHostFactory(StoreKind kind, IDictionary<string, string?>? settings = null) : WebApplicationFactory<Host.Program>
{
    private IDisposable? _tap;

    public MutableTimeProvider Time { get; } = new();

    public List<CloudEvent> Events { get; } = [];

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Development");
        if (kind == StoreKind.Postgres)
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
        // Service invocation (feedback → trace, context → feedback) through the test server: the loopback
        // invoker would call the configured port, where no server of this test listens.
        builder.ConfigureTestServices(services => services.AddSingleton<TimeProvider>(Time).AddTestServerInvoker());
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

    protected override void Dispose(bool disposing)
    {
        _tap?.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>System time plus an offset the test moves forward.</summary>
public sealed class MutableTimeProvider : TimeProvider
{
    private long _offsetTicks;

    public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + TimeSpan.FromTicks(Interlocked.Read(ref _offsetTicks));

    public void Advance(TimeSpan by) => Interlocked.Add(ref _offsetTicks, by.Ticks);
}

public static class HttpJson
{
    public static async Task<T> ReadAsync<T>(this HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStringAsync();
        response.IsSuccessStatusCode.Should().BeTrue($"{(int)response.StatusCode} {body}");
        return JsonSerializer.Deserialize<T>(body, ContractsJson.Options)!;
    }

    public static Task<HttpResponseMessage> SendJsonAsync<T>(this HttpClient client, HttpMethod method, string url, T body, string? tenant = null)
    {
        var request = new HttpRequestMessage(method, url) { Content = JsonContent.Create(body, options: ContractsJson.Options) };
        if (tenant is not null)
        {
            request.Headers.Add("X-Tenant-Id", tenant);
        }
        return client.SendAsync(request);
    }

    public static Task<HttpResponseMessage> PostJsonAsync<T>(this HttpClient client, string url, T body, string? tenant = null) =>
        client.SendJsonAsync(HttpMethod.Post, url, body, tenant);

    public static Task<HttpResponseMessage> GetAsync(this HttpClient client, string url, string? tenant)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, url);
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
