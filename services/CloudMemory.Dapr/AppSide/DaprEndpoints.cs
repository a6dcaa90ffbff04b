using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using CloudMemory.BuildingBlocks.EventStream;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.Contracts.Events;
using Dapr;
using CloudEvent = CloudMemory.BuildingBlocks.PubSub.CloudEvent;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CloudMemory.Dapr.AppSide;

/// <summary>
/// What daprd calls on the app. Pub/sub is the SDK's: <c>UseCloudEvents</c> unwraps deliveries,
/// <c>MapSubscribeHandler</c> serves <c>GET /dapr/subscribe</c> from the <c>WithTopic</c> routes, and
/// the SDK's App API token authentication guards them; the actor callbacks (<c>GET /dapr/config</c>,
/// <c>/actors/...</c>) are Dapr.Actors.AspNetCore's <c>MapActorsHandlers</c>.
/// </summary>
public static class DaprEndpoints
{
    /// <summary>Name of the SDK's authorization policy that requires the App API token.</summary>
    public const string AppTokenPolicy = "Dapr";

    /// <summary>Delivery route of the known topics the app follows only for its event stream (<c>GET /v1/events</c>).</summary>
    public const string EventStreamRoute = "/events/stream";

    /// <summary>Registers the SDK's App API token check (only when APP_API_TOKEN is set).</summary>
    public static IServiceCollection AddDaprAppToken(this IServiceCollection services, DaprOptions options)
    {
        if (options.AppApiToken is { } token)
        {
            services.AddAuthentication().AddDapr(o => o.Token = token);
            services.AddAuthorization(o => o.AddDapr(AppTokenPolicy));
        }
        return services;
    }

    /// <summary>Unwraps CloudEvent deliveries; the envelope's attributes arrive as <c>Cloudevent.*</c> headers.</summary>
    public static IApplicationBuilder UseDaprCloudEvents(this IApplicationBuilder app) =>
        app.UseCloudEvents(new CloudEventsMiddlewareOptions { ForwardCloudEventPropertiesAsHeaders = true });

    /// <summary>Maps the subscription handler, one delivery route per subscription, and the SDK's actor callbacks.</summary>
    public static IEndpointRouteBuilder MapDaprEndpoints(this IEndpointRouteBuilder endpoints)
    {
        var options = endpoints.ServiceProvider.GetRequiredService<DaprOptions>();
        var guarded = options.AppApiToken is not null;

        var subscribe = endpoints.MapSubscribeHandler();
        if (guarded)
        {
            subscribe.RequireAuthorization(AppTokenPolicy);
        }
        var subscriptions = endpoints.ServiceProvider.GetServices<Subscription>().ToList();
        var stream = endpoints.ServiceProvider.GetService<EventFanOut>();
        if (stream is not null)
        {
            // The event stream follows every known topic: those no handler of this app subscribes to get a route that only hands them on.
            subscriptions.AddRange(KnownTopics.All.Where(topic => !subscriptions.Any(s => s.Topic == topic)).Order(StringComparer.Ordinal)
                .Select(topic => new Subscription(topic, EventStreamRoute, static (_, _) => Task.FromResult(DeliveryStatus.Success))));
        }
        foreach (var route in subscriptions.GroupBy(s => NormalizeRoute(s.Route), StringComparer.Ordinal))
        {
            var delivery = new SubscriptionDelivery(route.Key, route.ToList(),
                endpoints.ServiceProvider.GetRequiredService<DeliveryDeduplicator>(),
                endpoints.ServiceProvider.GetRequiredService<ILogger<SubscriptionDelivery>>(), stream);
            var handler = endpoints.MapPost(route.Key, (Func<HttpContext, Task<IResult>>)delivery.HandleAsync).ExcludeFromDescription();
            foreach (var subscription in route)
            {
                handler.WithTopic(new TopicOptions
                {
                    PubsubName = subscription.PubSubName,
                    Name = subscription.Topic,
                    DeadLetterTopic = subscription.DeadLetterTopic,
                });
            }
            if (guarded)
            {
                handler.RequireAuthorization(AppTokenPolicy);
            }
        }

        // The actor callbacks (/dapr/config, /actors/..., /healthz) are the SDK's own.
        var actors = endpoints.MapActorsHandlers();
        if (guarded)
        {
            actors.RequireAuthorization(AppTokenPolicy);
        }
        return endpoints;
    }

    internal static string NormalizeRoute(string route) => "/" + route.TrimStart('/');
}

/// <summary>
/// One delivery route: takes the CloudEvent the SDK's middleware unwrapped (data as the body, the
/// other attributes as <c>Cloudevent.*</c> headers), acknowledges a redelivered id without running the
/// handler again, and answers daprd with 200 and SUCCESS / RETRY / DROP. An event its handler took
/// is handed on to the app's event stream, when the app serves one.
/// </summary>
public sealed class SubscriptionDelivery(string route, IReadOnlyList<Subscription> subscriptions, DeliveryDeduplicator deduplicator, ILogger<SubscriptionDelivery> logger,
    EventFanOut? stream = null)
{
    private readonly ConcurrentDictionary<string, byte> _inFlight = new(StringComparer.Ordinal);

    /// <summary>Handles one POST from daprd.</summary>
    public async Task<IResult> HandleAsync(HttpContext context)
    {
        var cloudEvent = await ReadAsync(context);
        if (cloudEvent is null || string.IsNullOrEmpty(cloudEvent.Id))
        {
            return Status("DROP");
        }
        var subscription = subscriptions.Count == 1
            ? subscriptions[0]
            : subscriptions.FirstOrDefault(s => string.Equals(s.Topic, cloudEvent.Topic, StringComparison.Ordinal));
        if (subscription is null)
        {
            logger.LogWarning("Event {EventId} on topic {Topic} matches no subscription of {Route}: dropped", cloudEvent.Id, cloudEvent.Topic, route);
            return Status("DROP");
        }
        // The SDK's middleware does not forward every Dapr extension attribute: fill them from the subscription.
        cloudEvent = cloudEvent with { Topic = cloudEvent.Topic ?? subscription.Topic, PubSubName = cloudEvent.PubSubName ?? subscription.PubSubName };

        var dedupKey = route + "|" + subscription.Topic;
        if (deduplicator.SeenBefore(dedupKey, cloudEvent.Id))
        {
            // A copy still being processed may yet fail; only a finished one may be acknowledged.
            return Status(_inFlight.ContainsKey(cloudEvent.Id) ? "RETRY" : "SUCCESS");
        }
        _inFlight[cloudEvent.Id] = 0;
        DeliveryStatus status;
        try
        {
            status = await subscription.Handler(cloudEvent, context.RequestAborted);
        }
        catch (Exception ex)
        {
            logger.LogWarning(ex, "Handler of {Route} failed for {EventId}", route, cloudEvent.Id);
            status = DeliveryStatus.Retry;
        }
        finally
        {
            _inFlight.TryRemove(cloudEvent.Id, out _);
        }
        if (status == DeliveryStatus.Retry)
        {
            deduplicator.Forget(dedupKey, cloudEvent.Id); // the redelivery must run the handler again
        }
        else if (status == DeliveryStatus.Success)
        {
            stream?.Publish(cloudEvent);
        }
        return Status(status switch
        {
            DeliveryStatus.Success => "SUCCESS",
            DeliveryStatus.Drop => "DROP",
            _ => "RETRY",
        });
    }

    // An envelope without an id, or whose data is not JSON, will never be processable: DROP (to the dead-letter topic).
    private async Task<CloudEvent?> ReadAsync(HttpContext context)
    {
        string? Attribute(string name) =>
            context.Request.Headers.TryGetValue("Cloudevent." + name, out var value) && value.Count > 0 && !string.IsNullOrEmpty(value[0]) ? value[0] : null;

        if (Attribute("id") is not { } id)
        {
            logger.LogWarning("Delivery on {Route} is not a CloudEvent with an id: dropped", route);
            return null;
        }
        JsonElement data = default;
        try
        {
            using var buffer = new MemoryStream();
            await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
            if (buffer.Length > 0)
            {
                data = JsonSerializer.Deserialize<JsonElement>(buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
            }
        }
        catch (JsonException ex)
        {
            logger.LogWarning(ex, "Event {EventId} on {Route} has data that is not JSON: dropped", id, route);
            return null;
        }
        return new CloudEvent
        {
            Id = id,
            Source = Attribute("source") ?? "",
            Type = Attribute("type") ?? "",
            SpecVersion = Attribute("specversion") ?? "1.0",
            DataContentType = context.Request.ContentType ?? "application/json",
            Time = DateTimeOffset.TryParse(Attribute("time"), CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var time) ? time : null,
            Subject = Attribute("subject"),
            Topic = Attribute("topic"),
            PubSubName = Attribute("pubsubname"),
            // daprd also sends the trace context as HTTP headers of the delivery.
            TraceParent = Attribute("traceparent") ?? NullIfEmpty(context.Request.Headers.TraceParent.ToString()),
            TenantId = Attribute("tenantid"),
            Data = data,
        };
    }

    private static string? NullIfEmpty(string value) => value.Length == 0 ? null : value;

    private static IResult Status(string status) => Results.Json(new { status }, statusCode: StatusCodes.Status200OK);
}
