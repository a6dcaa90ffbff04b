using System.Text.Json;
using System.Threading.Channels;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.Contracts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.BuildingBlocks.Embedded;

/// <summary>
/// <c>GET /v1/events</c>: the embedded host's events as a server-sent event stream, so agents can
/// follow a conversation without a Dapr broker. Only the caller's tenant's events are sent;
/// <c>topics</c> and <c>conversationId</c> narrow the stream. A slow reader loses the oldest
/// events (bounded buffer), never slows the writers.
/// </summary>
public static class EventStreamEndpoint
{
    /// <summary>Events buffered per reader.</summary>
    public const int BufferSize = 1024;

    /// <summary>Maps the stream when the Embedded runtime's bus is in use (a Dapr deployment has a real broker).</summary>
    public static IEndpointRouteBuilder MapEmbeddedEventStream(this IEndpointRouteBuilder endpoints)
    {
        if (endpoints.ServiceProvider.GetService<InMemoryEventBus>() is not null)
        {
            endpoints.MapGet("/v1/events", StreamAsync).WithTags("Events").WithName("StreamEvents").ExcludeFromDescription();
        }
        return endpoints;
    }

    private static async Task StreamAsync(HttpContext http, InMemoryEventBus bus, string? topics, string? conversationId, CancellationToken cancellationToken)
    {
        var tenant = Tenant.From(http);
        if (conversationId is not null)
        {
            Ids.Require(conversationId, "conversationId");
        }
        var wanted = string.IsNullOrEmpty(topics) ? null : topics.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal);
        var channel = Channel.CreateBounded<CloudEvent>(new BoundedChannelOptions(BufferSize) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
        using var tap = bus.Tap(e =>
        {
            if ((e.TenantId ?? Tenant.Default) == tenant
                && (wanted is null || (e.Topic is not null && wanted.Contains(e.Topic)))
                && (conversationId is null || ConversationOf(e) == conversationId))
            {
                channel.Writer.TryWrite(e);
            }
        });

        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        await http.Response.WriteAsync(": connected\n\n", cancellationToken);
        await http.Response.Body.FlushAsync(cancellationToken);
        try
        {
            await foreach (var cloudEvent in channel.Reader.ReadAllAsync(cancellationToken))
            {
                var json = System.Text.Encoding.UTF8.GetString(CloudEventFormat.Encode(cloudEvent).Span);
                await http.Response.WriteAsync($"id: {cloudEvent.Id}\nevent: {cloudEvent.Type}\ndata: {json}\n\n", cancellationToken);
                await http.Response.Body.FlushAsync(cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // the follower disconnected
        }
    }

    private static string? ConversationOf(CloudEvent e) =>
        e.Data.ValueKind == JsonValueKind.Object && e.Data.TryGetProperty("conversationId", out var id) ? id.GetString() : null;
}
