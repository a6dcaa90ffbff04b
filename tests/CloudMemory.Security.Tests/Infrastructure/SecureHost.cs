using System.Net.Http.Json;
using System.Text.Json;
using CloudMemory.Contracts;
using CloudMemory.BuildingBlocks.Embedded;
using CloudMemory.Context.Features.Memories;
using CloudMemory.Testing;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.Security.Tests.Infrastructure;

/// <summary>Which stores the embedded host runs on.</summary>
public enum StoreKind
{
    InMemory,
    Postgres,
}

/// <summary>The embedded host (all four services) with the given settings, on in-memory or PostgreSQL stores.</summary>
public sealed class SecureHost(StoreKind kind, IDictionary<string, string?>? settings = null) : WebApplicationFactory<Host.Program>
{
    public StoreKind Kind => kind;

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
        builder.ConfigureTestServices(services => services.AddTestServerInvoker());
    }


    /// <summary>Waits until events are delivered, workflows have finished and embeddings are written.</summary>
    public Task WhenQuietAsync() => EmbeddedQuiet.WhenQuietAsync(Services, TimeSpan.FromSeconds(60));

    /// <summary>JSON text without the fields a read itself changes (access statistics, trace ids).</summary>
    public static string WithoutVolatileFields(string text)
    {
        try
        {
            var node = System.Text.Json.Nodes.JsonNode.Parse(text);
            Strip(node);
            return node?.ToJsonString() ?? text;
        }
        catch (JsonException)
        {
            return text;
        }

        static void Strip(System.Text.Json.Nodes.JsonNode? node)
        {
            if (node is System.Text.Json.Nodes.JsonObject obj)
            {
                foreach (var name in new[] { "lastAccessedAt", "accessCount", "traceId", "score", "semanticScore", "lexicalScore", "why", "elapsedMs" })
                {
                    obj.Remove(name);
                }
                foreach (var (_, child) in obj.ToList())
                {
                    Strip(child);
                }
            }
            else if (node is System.Text.Json.Nodes.JsonArray array)
            {
                foreach (var child in array)
                {
                    Strip(child);
                }
            }
        }
    }

    public static string NewId(string prefix) => prefix + "-" + Guid.NewGuid().ToString("N")[..12];
}

/// <summary>Request helpers: JSON bodies, tenant and credential headers, problem assertions.</summary>
public static class Http
{
    public static HttpRequestMessage Request(HttpMethod method, string url, object? body = null, string? tenant = null, string? agent = null, string? apiKey = null, string? bearer = null)
    {
        var request = new HttpRequestMessage(method, url);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body, body.GetType(), options: ContractsJson.Options);
        }
        if (tenant is not null)
        {
            request.Headers.Add("X-Tenant-Id", tenant);
        }
        if (agent is not null)
        {
            request.Headers.Add("X-Agent-Id", agent);
        }
        if (apiKey is not null)
        {
            request.Headers.Add("X-Api-Key", apiKey);
        }
        if (bearer is not null)
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", bearer);
        }
        return request;
    }

    public static async Task<T> ReadAsync<T>(this HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStringAsync();
        response.IsSuccessStatusCode.Should().BeTrue($"{(int)response.StatusCode} {body}");
        return JsonSerializer.Deserialize<T>(body, ContractsJson.Options)!;
    }

    /// <summary>Asserts an RFC 7807 answer with this status and returns its <c>code</c>.</summary>
    public static async Task<string> ProblemCodeAsync(this HttpResponseMessage response, int status)
    {
        var body = await response.Content.ReadAsStringAsync();
        ((int)response.StatusCode).Should().Be(status, body);
        response.Content.Headers.ContentType?.MediaType.Should().Be("application/problem+json", body);
        using var json = JsonDocument.Parse(body);
        return json.RootElement.GetProperty("code").GetString()!;
    }
}
