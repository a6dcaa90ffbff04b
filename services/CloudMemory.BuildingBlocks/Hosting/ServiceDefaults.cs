using System.Text.Json;
using CloudMemory.BuildingBlocks.Security;
using CloudMemory.Contracts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace CloudMemory.BuildingBlocks.Hosting;

/// <summary>What every CloudMemory service calls first: JSON, problem details, health, OpenAPI, telemetry.</summary>
public static class ServiceDefaults
{
    /// <summary>Health check tag of readiness checks (dependencies).</summary>
    public const string ReadyTag = "ready";

    /// <summary>Registers the shared service plumbing.</summary>
    public static IHostApplicationBuilder AddServiceDefaults(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.ConfigureHttpJsonOptions(o => ContractsJson.Configure(o.SerializerOptions));
        services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        // Answers the framework writes itself (no route, wrong method, unsupported media type) get a
        // stable code too, so every error a client sees carries one.
        services.AddProblemDetails(o => o.CustomizeProblemDetails = context =>
        {
            if (!context.ProblemDetails.Extensions.ContainsKey("code"))
            {
                context.ProblemDetails.Extensions["code"] = context.ProblemDetails.Status switch
                {
                    400 => "bad-request",
                    401 => "unauthenticated",
                    403 => "forbidden",
                    404 => "not-found",
                    405 => "method-not-allowed",
                    406 => "not-acceptable",
                    411 => "length-required",
                    413 => "request-too-large",
                    415 => "unsupported-media-type",
                    429 => "rate-limited",
                    >= 500 => "internal-error",
                    var status => $"http-{status}",
                };
            }
        });
        services.AddExceptionHandler<ProblemExceptionHandler>();
        services.AddHealthChecks();
        services.AddOpenApi(o => o.AddDocumentTransformer<OpenApiConventions>());
        services.AddHttpClient();
        services.AddSingleton(TimeProvider.System);
        builder.AddTelemetry();
        builder.AddCloudMemorySecurity();
        return builder;
    }

    /// <summary>Maps <c>/healthz</c> (liveness), <c>/readyz</c> (dependencies) and <c>/openapi/v1.json</c>.</summary>
    public static WebApplication MapDefaultEndpoints(this WebApplication app)
    {
        app.MapHealthChecks("/healthz", new HealthCheckOptions { Predicate = _ => false });
        app.MapHealthChecks("/readyz", new HealthCheckOptions { Predicate = c => c.Tags.Contains(ReadyTag), ResponseWriter = WriteReadinessAsync });
        app.MapOpenApi();
        app.MapApiKeyEndpoints();
        return app;
    }

    // /readyz answers with each check's status, description and figures (e.g. the turn-indexing backlog), not just "Healthy".
    private static Task WriteReadinessAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsJsonAsync(new
        {
            status = report.Status.ToString(),
            checks = report.Entries.ToDictionary(e => e.Key, e => new { status = e.Value.Status.ToString(), description = e.Value.Description, data = e.Value.Data }),
        });
    }

    /// <summary>Exception handler first, so every failure becomes problem details.</summary>
    public static WebApplication UseServiceDefaults(this WebApplication app)
    {
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseCloudMemorySecurity();
        app.UseRequestTextGuard();
        return app;
    }

    /// <summary>
    /// Span sources and meters every CloudMemory process reports: the product's own
    /// (<c>CloudMemory.*</c>, one per service) and the libraries it calls through.
    /// </summary>
    public static readonly string[] TelemetrySources = ["CloudMemory.*", "Npgsql"];

    // W3C trace context flows agent -> sidecar -> service -> PostgreSQL through the instrumentation
    // libraries: ASP.NET Core continues an incoming traceparent, HttpClient and gRPC client calls
    // carry it on, Npgsql spans each command. The instrumentation is always registered (it costs
    // nothing until a provider is built); the providers and the OTLP exporter start only when
    // OTEL_EXPORTER_OTLP_ENDPOINT is set, and the other standard OTEL_* variables (protocol,
    // headers, service name, resource attributes) configure them.
    private static void AddTelemetry(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.ConfigureOpenTelemetryTracerProvider(tracing => tracing
            .AddSource(TelemetrySources)
            .AddAspNetCoreInstrumentation(o => o.Filter = context => !IsProbe(context.Request.Path))
            .AddHttpClientInstrumentation()
            .AddGrpcClientInstrumentation()
            .AddNpgsql());
        services.ConfigureOpenTelemetryMeterProvider(metrics => metrics
            .AddMeter(TelemetrySources)
            .AddAspNetCoreInstrumentation()
            .AddHttpClientInstrumentation());
        if (string.IsNullOrEmpty(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]))
        {
            return;
        }
        services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService(builder.Configuration["OTEL_SERVICE_NAME"] ?? builder.Environment.ApplicationName))
            .WithTracing(_ => { })
            .WithMetrics(_ => { })
            .UseOtlpExporter();
    }

    private static bool IsProbe(PathString path) =>
        path.StartsWithSegments("/healthz", StringComparison.Ordinal) || path.StartsWithSegments("/readyz", StringComparison.Ordinal);
}

/// <summary>Turns domain and request errors into RFC 7807 answers with stable codes.</summary>
internal sealed class ProblemExceptionHandler(ILogger<ProblemExceptionHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        var result = exception switch
        {
            ProblemException p => p.ToResult(),
            BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } =>
                Problems.TooLarge("request-too-large", "The request body exceeds the configured limit."),
            BadHttpRequestException { InnerException: JsonException json } =>
                Problems.BadRequest("malformed-json", $"The body is not valid JSON for this operation: {json.Message}"),
            BadHttpRequestException bad => Problems.BadRequest("malformed-request", bad.Message),
            JsonException json => Problems.BadRequest("malformed-json", json.Message),
            State.StateConcurrencyException conflict => Problems.Conflict("etag-mismatch", conflict.Message),
            // Safety net behind the request rules: text PostgreSQL cannot hold is bad input, not a failure.
            Npgsql.PostgresException { SqlState: "22021" or "22P05" } =>
                Problems.BadRequest("invalid-text", "The request holds text that cannot be stored (e.g. U+0000)."),
            Npgsql.PostgresException { SqlState: "54000" } =>
                Problems.BadRequest("value-too-large", "A value of the request is too large to be stored or indexed."),
            _ => null,
        };
        if (result is null)
        {
            logger.LogError(exception, "Unhandled error on {Path}", httpContext.Request.Path);
            return false;
        }
        await result.ExecuteAsync(httpContext);
        return true;
    }
}
