using CloudMemory.BuildingBlocks.Embedded;
using CloudMemory.BuildingBlocks.Invocation;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.BuildingBlocks.State;
using CloudMemory.BuildingBlocks.Workflows;
using CloudMemory.Dapr.AppSide;
using CloudMemory.Contracts;
using Dapr.Actors.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;

namespace CloudMemory.Dapr;

/// <summary>Which implementation of the building-block ports a process uses.</summary>
public enum CloudMemoryRuntime
{
    /// <summary>Everything in process.</summary>
    Embedded,

    /// <summary>Through the Dapr sidecar.</summary>
    Dapr,
}

/// <summary>Selects and registers the runtime: <c>CloudMemory:Runtime</c>, else Dapr when DAPR_HTTP_PORT or DAPR_GRPC_PORT is set.</summary>
public static class CloudMemoryRuntimeExtensions
{
    /// <summary>Configuration key of the runtime choice.</summary>
    public const string RuntimeKey = "CloudMemory:Runtime";

    /// <summary>Reads the choice: an explicit <c>CloudMemory:Runtime</c> wins; a sidecar port means Dapr.</summary>
    public static CloudMemoryRuntime ResolveRuntime(IConfiguration configuration)
    {
        var configured = configuration[RuntimeKey];
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return Enum.TryParse<CloudMemoryRuntime>(configured, ignoreCase: true, out var runtime)
                ? runtime
                : throw new BuildingBlocks.Hosting.StartupConfigurationException(RuntimeKey, configured, "Embedded or Dapr");
        }
        return string.IsNullOrEmpty(configuration["DAPR_HTTP_PORT"]) && string.IsNullOrEmpty(configuration["DAPR_GRPC_PORT"])
            ? CloudMemoryRuntime.Embedded
            : CloudMemoryRuntime.Dapr;
    }

    /// <summary>Registers the selected runtime's implementations of every port.</summary>
    public static IHostApplicationBuilder AddCloudMemoryRuntime(this IHostApplicationBuilder builder)
    {
        var runtime = ResolveRuntime(builder.Configuration);
        builder.Services.AddSingleton(new RuntimeSelection(runtime));
        if (runtime == CloudMemoryRuntime.Dapr)
        {
            builder.Services.AddDaprRuntime(DaprOptions.FromConfiguration(builder.Configuration));
        }
        else
        {
            builder.Services.AddEmbeddedRuntime();
        }
        return builder;
    }

    /// <summary>
    /// On Dapr: the SDK's CloudEvents middleware, subscription handler and delivery routes, and the
    /// SDK's actor callbacks (nothing on Embedded). Call it before the app's own endpoints are reached.
    /// </summary>
    public static WebApplication MapCloudMemoryRuntime(this WebApplication app)
    {
        if (app.Services.GetService<RuntimeSelection>()?.Runtime == CloudMemoryRuntime.Dapr)
        {
            app.UseDaprCloudEvents();
            app.MapDaprEndpoints();
        }
        return app;
    }

    /// <summary>State, pub/sub, invocation and actors through the sidecar.</summary>
    public static IServiceCollection AddDaprRuntime(this IServiceCollection services, DaprOptions options)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton(options);
        // State, bulk state, transactions and publish over gRPC; health and invocation over HTTP.
        services.AddDaprClient(builder => builder
            .UseHttpEndpoint(options.HttpEndpoint.ToString().TrimEnd('/'))
            .UseGrpcEndpoint(options.GrpcEndpoint.ToString().TrimEnd('/'))
            .UseDaprApiToken(options.ApiToken ?? "")
            .UseJsonSerializationOptions(DaprJson.Options)
            .UseGrpcChannelOptions(DaprGrpcRetries.ChannelOptions()));
        services.AddDaprAppToken(options);
        services.TryAddSingleton<IStateStore>(sp => new DaprStateStore(sp.GetRequiredService<global::Dapr.Client.DaprClient>()));
        services.TryAddSingleton<IEventPublisher>(sp => new DaprEventPublisher(sp.GetRequiredService<global::Dapr.Client.DaprClient>(), options, sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<IServiceInvoker, DaprServiceInvoker>();
        // Actors: the SDK's runtime (types registered with AddActor) and its typed proxies, both over
        // the sidecar's actor HTTP API, with CloudMemory's JSON in both directions.
        // One pooled handler for every proxy (the factory makes a client per proxy, i.e. per call).
        services.TryAddSingleton<IActorProxyFactory>(_ => new ActorProxyFactory(new ActorProxyOptions
        {
            HttpEndpoint = options.HttpEndpoint.ToString().TrimEnd('/'),
            DaprApiToken = options.ApiToken,
            UseJsonSerialization = true,
            JsonSerializerOptions = ContractsJson.Options,
            RequestTimeout = Timeout.InfiniteTimeSpan, // callers pass cancellation; actor calls may legitimately run long
        }, new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }));
        services.AddActors(actors =>
        {
            actors.HttpEndpoint = options.HttpEndpoint.ToString().TrimEnd('/');
            actors.DaprApiToken = options.ApiToken;
            actors.UseJsonSerialization = true;
            actors.JsonSerializerOptions = ContractsJson.Options;
        });
        services.TryAddSingleton(new DeliveryDeduplicator());
        // A sidecar outage answers 503 sidecar-unavailable, not 500; every other exception passes on.
        services.AddExceptionHandler<AppSide.SidecarUnavailableHandler>();
        // Registered first so the sidecar is ready before any other hosted service touches state.
        services.Insert(0, ServiceDescriptor.Singleton<IHostedService, DaprSidecarWaiter>());
        // Workflows through the SDK's worker and the sidecar's durable workflow engine.
        services.AddDaprWorkflows(options);
        return services;
    }

    /// <summary>The runtime chosen at start.</summary>
    public sealed record RuntimeSelection(CloudMemoryRuntime Runtime);
}
