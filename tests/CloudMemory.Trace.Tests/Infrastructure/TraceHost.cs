using System.Net.Http.Json;
using System.Text.Json;
using CloudMemory.BuildingBlocks.Embedded;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.Contracts;
using CloudMemory.Testing;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.Trace.Tests.Infrastructure;

/// <summary>Which trace store the embedded host runs on.</summary>
public enum StoreKind
{
    InMemory,
    Postgres,
}

/// <summary>The embedded host (all four services) on the in-memory store or a PostgreSQL server, recording every published event.</summary>
public class TraceHost(StoreKind kind, string? connectionString = null, IDictionary<string, string?>? settings = null) : WebApplicationFactory<Host.Program>
{
    private readonly List<CloudEvent> _events = [];
    private readonly Lock _gate = new();
    private IDisposable? _tap;

    public StoreKind Kind => kind;

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Development");
        if (kind == StoreKind.Postgres)
        {
            builder.UseSetting("ConnectionStrings:CloudMemory", connectionString ?? PostgresTestServer.ConnectionString);
            // The shared test database holds every test's conversations: no start-up checkpoint scan over them (CrashRecoveryTests covers it on a database of its own).
            builder.UseSetting("CloudMemory:Session:CheckpointRecoveryHours", "0");
        }
        builder.UseSetting("CloudMemory:Llm:Endpoint", "");
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            builder.UseSetting(key, value);
        }
    }

    /// <summary>A client sending <paramref name="tenant"/> as <c>X-Tenant-Id</c>.</summary>
    public HttpClient Client(string tenant)
    {
        HttpClient client;
        lock (_gate)
        {
            // Starting the host is not thread-safe: clients are created one at a time.
            client = CreateClient();
            _tap ??= Services.GetRequiredService<InMemoryEventBus>().Tap(e =>
            {
                lock (_events)
                {
                    _events.Add(e);
                }
            });
        }
        client.DefaultRequestHeaders.Add("X-Tenant-Id", tenant);
        return client;
    }

    public List<CloudEvent> Events(string type)
    {
        lock (_events)
        {
            return [.. _events.Where(e => e.Type == type)];
        }
    }

    protected override void Dispose(bool disposing)
    {
        _tap?.Dispose();
        base.Dispose(disposing);
    }
}

public sealed class InMemoryTraceHost() : TraceHost(StoreKind.InMemory);

public sealed class PostgresTraceHost() : TraceHost(StoreKind.Postgres);

public static class HttpJson
{
    public static async Task<T> ReadAsync<T>(this HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStringAsync();
        response.IsSuccessStatusCode.Should().BeTrue($"{(int)response.StatusCode} {body}");
        return JsonSerializer.Deserialize<T>(body, ContractsJson.Options)!;
    }

    public static async Task<JsonElement> JsonAsync(this HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStringAsync();
        response.IsSuccessStatusCode.Should().BeTrue($"{(int)response.StatusCode} {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    public static Task<HttpResponseMessage> PostJsonAsync<T>(this HttpClient client, string url, T body) =>
        client.PostAsJsonAsync(url, body, ContractsJson.Options);

    public static async Task<JsonElement> ProblemAsync(this HttpResponseMessage response, int status)
    {
        var body = await response.Content.ReadAsStringAsync();
        ((int)response.StatusCode).Should().Be(status, body);
        response.Content.Headers.ContentType?.MediaType.Should().Be("application/problem+json");
        return JsonDocument.Parse(body).RootElement.Clone();
    }
}
