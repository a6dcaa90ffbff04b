using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Trace.Features.Analysis;
using CloudMemory.Trace.Features.Audit;
using CloudMemory.Trace.Features.Diff;
using CloudMemory.Trace.Features.Otlp;
using CloudMemory.Trace.Features.Read;
using CloudMemory.Trace.Features.Replay;
using CloudMemory.Trace.Features.Steps;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace CloudMemory.Trace;

/// <summary>Registers the `trace` service.</summary>
public static class TraceServiceCollectionExtensions
{
    /// <summary>App id of this service.</summary>
    public const string AppId = "trace";

    /// <summary>Name of the connection string of the durable store (shared with the other services).</summary>
    public const string ConnectionStringName = "CloudMemory";

    /// <summary>
    /// Adds the trace store (PostgreSQL when <c>ConnectionStrings:CloudMemory</c> is set, schema
    /// created at start; in memory otherwise), the ingestor and the readers.
    /// </summary>
    public static IHostApplicationBuilder AddTraceServices(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<TraceOptions>().Bind(builder.Configuration.GetSection(TraceOptions.SectionName))
            .Validate(o => o.MaxBatchSteps > 0 && o.MaxStepBytes > 0 && o.MaxWriteSteps > 0 && o.Writers is > 0 and <= 16 && o.AckTimeout > TimeSpan.Zero,
                "CloudMemory:Trace values out of range")
            .ValidateOnStart();
        services.TryAddSingleton<TraceIngestor>();
        services.AddHostedService<RetentionSweeper>();
        services.AddProducedMemoryLinks();

        var connectionString = builder.Configuration.GetConnectionString(ConnectionStringName);
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            services.TryAddSingleton<ITraceStore, InMemoryTraceStore>();
            return builder;
        }
        services.AddPostgresDataSource(connectionString);
        services.TryAddSingleton<PostgresTraceStore>();
        services.TryAddSingleton<ITraceStore>(sp => sp.GetRequiredService<PostgresTraceStore>());
        services.AddStartupTask((sp, ct) => sp.GetRequiredService<PostgresTraceStore>().MigrateAsync(ct));
        services.AddHealthChecks().AddCheck<TraceStoreHealthCheck>("trace-postgresql", tags: [ServiceDefaults.ReadyTag]);
        return builder;
    }

    /// <summary>Maps the service's endpoints.</summary>
    public static IEndpointRouteBuilder MapTraceEndpoints(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapStepEndpoints();
        endpoints.MapTraceReadEndpoints();
        endpoints.MapTraceDiff();
        endpoints.MapTraceReplay();
        endpoints.MapAuditEndpoints();
        endpoints.MapAnalysisEndpoints();
        endpoints.MapOtlpEndpoints();
        endpoints.MapProvenanceEndpoints();
        endpoints.MapConversationErasure<ITraceStore>(AppId, Contracts.Erasure.ErasureCountKeys.Traces, (store, tenant, ids, ct) => store.DeleteContextsAsync(tenant, ids, ct));
        return endpoints;
    }

    private sealed class TraceStoreHealthCheck(NpgsqlDataSource dataSource) : IHealthCheck
    {
        public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            try
            {
                await using var command = dataSource.CreateCommand("SELECT 1 FROM cm_trace_steps LIMIT 1");
                await command.ExecuteScalarAsync(cancellationToken);
                return HealthCheckResult.Healthy();
            }
            catch (Exception ex)
            {
                return HealthCheckResult.Unhealthy("The trace store is unreachable", ex);
            }
        }
    }
}
