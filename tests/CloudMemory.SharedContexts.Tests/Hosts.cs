using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dapr.Client.Autogen.Grpc.v1;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.Contracts;
using CloudMemory.Dapr;
using CloudMemory.Dapr.Tests;
using CloudMemory.Dapr.Tests.FakeSidecar;
using CloudMemory.Session;
using CloudMemory.Session.Features.SharedContexts;
using CloudMemory.Session.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.SharedContexts.Tests;

/// <summary>A CloudMemory host serving shared contexts, with a subscriber of <c>shared-context-changed</c>.</summary>
public interface ISharedContextHost : IAsyncDisposable
{
    HttpClient Client { get; }

    MutableTimeProvider Time { get; }

    IServiceProvider Services { get; }

    /// <summary>The shared-context-changed events published so far.</summary>
    IReadOnlyList<SharedContextChanged> Changes();
}

/// <summary>The embedded host (all four services in process), as <c>services/CloudMemory.Host</c> composes it.</summary>
public sealed class EmbeddedHost : ISharedContextHost
{
    private readonly CloudMemoryFactory _factory = new(LogKind.InMemory);

    public EmbeddedHost()
    {
        Client = _factory.CreateRecordingClient();
    }

    public HttpClient Client { get; }

    public MutableTimeProvider Time => _factory.Time;

    public IServiceProvider Services => _factory.Services;

    public IReadOnlyList<SharedContextChanged> Changes() =>
        _factory.EventsOfType(SharedContextTopics.ChangedType).Select(e => e.Data.Deserialize<SharedContextChanged>(ContractsJson.Options)!).ToList();

    public ValueTask DisposeAsync()
    {
        Client.Dispose();
        return _factory.DisposeAsync();
    }
}

/// <summary>The session app on the Dapr runtime against the fake sidecar: every actor call, state write and event goes over the wire.</summary>
public sealed class DaprHost : ISharedContextHost
{
    private DaprHost(DaprTestApp app, MutableTimeProvider time, ManualTimeProvider sidecarClock)
    {
        App = app;
        Time = time;
        SidecarClock = sidecarClock;
        Client = new HttpClient { BaseAddress = app.AppBase, Timeout = Wait.Timeout };
    }

    public DaprTestApp App { get; }

    /// <summary>The fake sidecar's clock (it decides when reminders are due).</summary>
    public ManualTimeProvider SidecarClock { get; }

    public HttpClient Client { get; }

    public MutableTimeProvider Time { get; }

    public IServiceProvider Services => App.Services;

    public static async Task<DaprHost> StartAsync()
    {
        var time = new MutableTimeProvider();
        var sidecarClock = new ManualTimeProvider();
        DaprHost? host = null;
        var app = await DaprTestApp.StartAsync(sidecarClock, builder =>
        {
            builder.AddServiceDefaults();
            builder.AddCloudMemoryRuntime();
            builder.AddSessionServices();
            builder.Services.AddSingleton<TimeProvider>(time); // last, so that it wins over the runtime's system clock
        }, app =>
        {
            app.UseServiceDefaults();
            app.MapDefaultEndpoints();
            app.MapCloudMemoryRuntime();
            app.MapSessionEndpoints();
        }, CloudMemory.Session.SessionServiceCollectionExtensions.AppId, new Dictionary<string, string?> { ["CloudMemory:Llm:Endpoint"] = "" });
        host = new DaprHost(app, time, sidecarClock);
        return host;
    }

    /// <summary>
    /// The changes the sidecar received from the app (gRPC publish) and delivered back to the app's own
    /// <c>shared-context-changed</c> subscription with SUCCESS (Dapr allows one subscription per topic and app).
    /// </summary>
    public IReadOnlyList<SharedContextChanged> Changes()
    {
        var delivered = App.Sidecar.Deliveries.Where(d => d.Topic == SharedContextTopics.Changed && d.Outcome == "SUCCESS")
            .Select(d => d.EventId).ToHashSet(StringComparer.Ordinal);
        return App.Sidecar.GrpcRequests<PublishEventRequest>("PublishEvent")
            .Where(r => r.Topic == SharedContextTopics.Changed)
            .Select(r => JsonNode.Parse(r.Data.ToStringUtf8())!)
            .Where(e => delivered.Contains(e["id"]!.GetValue<string>()))
            .Select(e => e["data"].Deserialize<SharedContextChanged>(ContractsJson.Options)!)
            .ToList();
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await App.DisposeAsync();
    }
}

/// <summary>Requests as an agent of a tenant.</summary>
public static class Agents
{
    public static Task<HttpResponseMessage> SendAsync(this HttpClient client, HttpMethod method, string url, string? agent, object? body = null, string? tenant = null,
        IDictionary<string, string>? headers = null)
    {
        var request = new HttpRequestMessage(method, url) { Content = body is null ? null : JsonContent.Create(body, options: ContractsJson.Options) };
        if (agent is not null)
        {
            request.Headers.Add(Tenant.AgentHeaderName, agent);
        }
        if (tenant is not null)
        {
            request.Headers.Add(Tenant.HeaderName, tenant);
        }
        foreach (var (name, value) in headers ?? new Dictionary<string, string>())
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }
        return client.SendAsync(request);
    }

    public static async Task<T> ReadAsync<T>(this HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStringAsync();
        response.IsSuccessStatusCode.Should().BeTrue($"{(int)response.StatusCode} {body}");
        return JsonSerializer.Deserialize<T>(body, ContractsJson.Options)!;
    }

    public static async Task<JsonElement> ProblemAsync(this HttpResponseMessage response, int status, string code)
    {
        var body = await response.Content.ReadAsStringAsync();
        ((int)response.StatusCode).Should().Be(status, body);
        response.Content.Headers.ContentType?.MediaType.Should().Be("application/problem+json");
        var problem = JsonDocument.Parse(body).RootElement;
        problem.GetProperty("code").GetString().Should().Be(code, body);
        return problem;
    }
}
