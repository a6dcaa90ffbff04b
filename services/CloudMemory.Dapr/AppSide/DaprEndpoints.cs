using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using CloudMemory.BuildingBlocks.Actors;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.Dapr.Actors;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CloudMemory.Dapr.AppSide;

/// <summary>
/// What daprd calls on the app: <c>GET /dapr/subscribe</c>, CloudEvent deliveries, <c>GET /dapr/config</c>
/// and the <c>/actors/...</c> callbacks. All of them require <c>dapr-api-token</c> when APP_API_TOKEN is set.
/// </summary>
public static class DaprEndpoints
{
    /// <summary>Maps the sidecar callbacks.</summary>
    public static IEndpointRouteBuilder MapDaprEndpoints(this IEndpointRouteBuilder endpoints)
    {
        var options = endpoints.ServiceProvider.GetRequiredService<DaprOptions>();
        var group = endpoints.MapGroup("").AddEndpointFilter(new AppTokenFilter(options.AppApiToken));
        group.MapGet("/dapr/subscribe", Subscribe).ExcludeFromDescription();
        group.MapGet("/dapr/config", Config).ExcludeFromDescription();

        var subscriptions = endpoints.ServiceProvider.GetServices<Subscription>().ToList();
        foreach (var route in subscriptions.GroupBy(s => NormalizeRoute(s.Route), StringComparer.Ordinal))
        {
            var delivery = new SubscriptionDelivery(route.Key, route.ToList(),
                endpoints.ServiceProvider.GetRequiredService<DeliveryDeduplicator>(),
                endpoints.ServiceProvider.GetRequiredService<ILogger<SubscriptionDelivery>>());
            group.MapPost(route.Key, (Func<HttpContext, Task<IResult>>)delivery.HandleAsync).ExcludeFromDescription();
        }

        group.MapPut("/actors/{actorType}/{actorId}/method/remind/{reminderName}", Remind).ExcludeFromDescription();
        group.MapPut("/actors/{actorType}/{actorId}/method/timer/{timerName}", Timer).ExcludeFromDescription();
        group.MapPut("/actors/{actorType}/{actorId}/method/{method}", Invoke).ExcludeFromDescription();
        group.MapDelete("/actors/{actorType}/{actorId}", Deactivate).ExcludeFromDescription();
        return endpoints;
    }

    internal static string NormalizeRoute(string route) => "/" + route.TrimStart('/');

    private static IResult Subscribe(IEnumerable<Subscription> subscriptions)
    {
        var body = subscriptions.Select(s => new SubscriptionDto(s.PubSubName, s.Topic, NormalizeRoute(s.Route), s.DeadLetterTopic)).ToList();
        return Results.Json(body, DaprSidecarClient.Json);
    }

    private static IResult Config(DaprActorHost host)
    {
        var defaults = new ActorTypeOptions();
        var registrations = host.Registrations.ToList();
        var scan = registrations.Count == 0 ? defaults.ScanInterval : registrations.Min(r => r.Options.ScanInterval);
        var body = new ActorConfigDto(
            registrations.Select(r => r.TypeName).ToList(),
            DaprDuration.Format(defaults.IdleTimeout),
            DaprDuration.Format(scan),
            DaprDuration.Format(defaults.DrainOngoingCallTimeout),
            true,
            new ReentrancyDto(false, 32),
            // Each type's own timeouts; daprd applies entitiesConfig over the top-level defaults.
            registrations.Select(r => new EntityConfigDto([r.TypeName], DaprDuration.Format(r.Options.IdleTimeout), DaprDuration.Format(r.Options.DrainOngoingCallTimeout))).ToList());
        return Results.Json(body, DaprSidecarClient.Json);
    }

    private static async Task<IResult> Invoke(string actorType, string actorId, string method, HttpContext context, DaprActorHost host)
    {
        if (!host.Hosts(actorType) || !host.HasMethod(actorType, method))
        {
            return Results.NotFound(new { message = $"actor {actorType} has no method '{method}' on this host" });
        }
        var argument = await ReadBodyAsync(context);
        try
        {
            var result = await host.InvokeAsync(actorType, actorId, method, argument, context.RequestAborted);
            return Results.Bytes(result, "application/json");
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !context.RequestAborted.IsCancellationRequested)
        {
            var inner = ex is System.Reflection.TargetInvocationException { InnerException: { } i } ? i : ex;
            // Status and body go back to the caller through daprd unchanged; the message is what the caller's exception shows.
            return Results.Json(new { errorCode = "ERR_ACTOR_METHOD", message = $"{inner.GetType().Name}: {inner.Message}" }, statusCode: StatusCodes.Status500InternalServerError);
        }
    }

    private static async Task<IResult> Remind(string actorType, string actorId, string reminderName, HttpContext context, DaprActorHost host)
    {
        if (!host.Hosts(actorType))
        {
            return Results.NotFound();
        }
        var (due, period, data) = ReminderPayload.Read(await ReadBodyAsync(context));
        await host.ReceiveReminderAsync(actorType, actorId, reminderName, data, due, period, context.RequestAborted);
        return Results.Ok();
    }

    private static async Task<IResult> Timer(string actorType, string actorId, string timerName, HttpContext context, DaprActorHost host)
    {
        if (!host.Hosts(actorType))
        {
            return Results.NotFound();
        }
        using var doc = JsonDocument.Parse(await ReadBodyAsync(context));
        var callback = doc.RootElement.TryGetProperty("callback", out var c) ? c.GetString() : null;
        if (string.IsNullOrEmpty(callback) || !host.HasMethod(actorType, callback))
        {
            return Results.NotFound(new { message = $"timer '{timerName}' names no method of {actorType}" });
        }
        var data = doc.RootElement.TryGetProperty("data", out var d) && d.ValueKind is not JsonValueKind.Null ? Encoding.UTF8.GetBytes(d.GetRawText()) : [];
        await host.InvokeAsync(actorType, actorId, callback, data, context.RequestAborted);
        return Results.Ok();
    }

    private static async Task<IResult> Deactivate(string actorType, string actorId, HttpContext context, DaprActorHost host)
    {
        await host.DeactivateAsync(actorType, actorId, context.RequestAborted);
        return Results.Ok();
    }

    private static async Task<byte[]> ReadBodyAsync(HttpContext context)
    {
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
        return buffer.ToArray();
    }

    // daprd reads "pubsubname" all lower case; the camelCase policy would write "pubSubName".
    private sealed record SubscriptionDto(
        [property: JsonPropertyName("pubsubname")] string PubSubName, string Topic, string Route, string? DeadLetterTopic);

    private sealed record ActorConfigDto(
        IReadOnlyList<string> Entities, string ActorIdleTimeout, string ActorScanInterval, string DrainOngoingCallTimeout,
        bool DrainRebalancedActors, ReentrancyDto Reentrancy, IReadOnlyList<EntityConfigDto> EntitiesConfig);

    private sealed record ReentrancyDto(bool Enabled, int MaxStackDepth);

    private sealed record EntityConfigDto(IReadOnlyList<string> Entities, string ActorIdleTimeout, string DrainOngoingCallTimeout);

    /// <summary>401 unless <c>dapr-api-token</c> equals APP_API_TOKEN (when one is configured).</summary>
    private sealed class AppTokenFilter(string? token) : IEndpointFilter
    {
        private readonly byte[]? _expected = token is null ? null : Encoding.UTF8.GetBytes(token);

        public ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
        {
            if (_expected is null)
            {
                return next(context);
            }
            var given = context.HttpContext.Request.Headers[DaprSidecarClient.ApiTokenHeader].ToString();
            return CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(given), _expected)
                ? next(context)
                : ValueTask.FromResult<object?>(Results.Json(new { message = "invalid api token" }, statusCode: StatusCodes.Status401Unauthorized));
        }
    }
}

/// <summary>
/// One delivery route: parses the CloudEvent, acknowledges a redelivered id without running the
/// handler again, and answers daprd with 200 and SUCCESS / RETRY / DROP.
/// </summary>
public sealed class SubscriptionDelivery(string route, IReadOnlyList<Subscription> subscriptions, DeliveryDeduplicator deduplicator, ILogger<SubscriptionDelivery> logger)
{
    private readonly ConcurrentDictionary<string, byte> _inFlight = new(StringComparer.Ordinal);

    /// <summary>Handles one POST from daprd.</summary>
    public async Task<IResult> HandleAsync(HttpContext context)
    {
        CloudEvent? cloudEvent;
        try
        {
            cloudEvent = await JsonSerializer.DeserializeAsync<CloudEvent>(context.Request.Body, DaprSidecarClient.Json, context.RequestAborted);
        }
        catch (JsonException ex)
        {
            logger.LogWarning(ex, "Unparsable CloudEvent on {Route}: dropped", route);
            return Status("DROP"); // it will never parse: retrying would only delay the dead-letter topic
        }
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
        return Status(status switch
        {
            DeliveryStatus.Success => "SUCCESS",
            DeliveryStatus.Drop => "DROP",
            _ => "RETRY",
        });
    }

    private static IResult Status(string status) => Results.Json(new { status }, statusCode: StatusCodes.Status200OK);
}
