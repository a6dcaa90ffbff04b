using System.Text.Json;
using System.Threading.Channels;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Events;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CloudMemory.BuildingBlocks.EventStream;

/// <summary>
/// <c>GET /v1/events</c>: the events this process sees (<see cref="IEventTap"/>: the embedded bus, or
/// on Dapr the session app's deliveries of every known topic) as a server-sent event stream, so agents
/// can follow a conversation without being a Dapr app. Only the caller's tenant's events are sent;
/// <c>topics</c> and <c>conversationId</c> narrow the stream. A slow reader loses the oldest
/// events (bounded buffer), never slows the writers. A follower that reconnects with
/// <c>Last-Event-ID</c> (header, or <c>lastEventId</c> in the query for clients that cannot set it)
/// first gets what it missed from the tenant's <see cref="EventReplayBuffer"/>; an idle stream
/// carries a heartbeat comment every <see cref="EventStreamOptions.HeartbeatSeconds"/>.
/// </summary>
public static class EventStreamEndpoint
{
    /// <summary>Events buffered per reader.</summary>
    public const int BufferSize = 1024;

    /// <summary>Maps the stream when <see cref="EventStreamServiceCollectionExtensions.AddEventStream"/> registered it.</summary>
    public static IEndpointRouteBuilder MapEventStream(this IEndpointRouteBuilder endpoints)
    {
        if (endpoints.ServiceProvider.GetService<IEventTap>() is not null)
        {
            endpoints.ServiceProvider.GetRequiredService<EventReplayBuffer>(); // records from start-up on, not from the first follower
            endpoints.MapGet("/v1/events", StreamAsync).WithTags("Events").WithName("StreamEvents")
                .WithSummary("Server-sent CloudEvents of the caller's tenant")
                .WithDescription("text/event-stream of the tenant's events (id, event = CloudEvent type, data = the CloudEvent JSON). " +
                    "topics (comma-separated; an unknown topic is 400 unknown-topic) and conversationId narrow it. " +
                    "Last-Event-ID (header) or lastEventId (query) replays the events kept since that id (bounded per tenant by " +
                    "CloudMemory:Events:ReplayBufferSize and ReplayMaxAgeSeconds); an id no longer kept replays all kept events after a ': replay-gap' comment. " +
                    "An idle stream sends ': heartbeat' every CloudMemory:Events:HeartbeatSeconds.")
                // A typed body: OpenAPI drops the content type of an untyped response, and clients (and the hostile corpus) know it is a stream from it.
                .Produces<string>(StatusCodes.Status200OK, contentType: "text/event-stream");
        }
        return endpoints;
    }

    private static async Task StreamAsync(HttpContext http, IEventTap bus, EventReplayBuffer replay, IOptions<EventStreamOptions> options,
        IEnumerable<Subscription> subscriptions, string? topics, string? conversationId, string? lastEventId, CancellationToken cancellationToken)
    {
        var tenant = Tenant.From(http);
        if (conversationId is not null)
        {
            Ids.Require(conversationId, "conversationId");
        }
        var wanted = string.IsNullOrEmpty(topics) ? null : topics.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal);
        if (wanted?.FirstOrDefault(t => !KnownTopics.All.Contains(t) && !subscriptions.Any(s => s.Topic == t || s.DeadLetterTopic == t)) is { } unknown)
        {
            throw new ProblemException(400, "unknown-topic", $"No events are published on topic '{unknown[..Math.Min(unknown.Length, 100)]}'; known: {string.Join(", ", KnownTopics.All.Order(StringComparer.Ordinal))}.");
        }
        var resumeFrom = http.Request.Headers["Last-Event-ID"].ToString() is { Length: > 0 } header ? header : lastEventId;
        if (resumeFrom is { Length: > 200 })
        {
            throw new ProblemException(400, "invalid-last-event-id", "Last-Event-ID is at most 200 characters.");
        }
        bool Wanted(CloudEvent e) =>
            (e.TenantId ?? Tenant.Default) == tenant
            && (wanted is null || (e.Topic is not null && wanted.Contains(e.Topic)))
            && (conversationId is null || ConversationOf(e) == conversationId);
        var channel = Channel.CreateBounded<CloudEvent>(new BoundedChannelOptions(BufferSize) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
        // Tap before reading the replay buffer: an event published in between is in both, and is sent once.
        using var tap = bus.Tap(e =>
        {
            if (Wanted(e))
            {
                channel.Writer.TryWrite(e);
            }
        });

        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        await http.Response.WriteAsync(": connected\n\n", cancellationToken);
        var sent = new HashSet<string>(StringComparer.Ordinal);
        if (!string.IsNullOrEmpty(resumeFrom))
        {
            var (missed, found) = replay.After(tenant, resumeFrom);
            if (!found)
            {
                await http.Response.WriteAsync(": replay-gap (Last-Event-ID is no longer kept; replaying every kept event)\n\n", cancellationToken);
            }
            foreach (var cloudEvent in missed.Where(Wanted))
            {
                sent.Add(cloudEvent.Id);
                await WriteEventAsync(http, cloudEvent, cancellationToken);
            }
        }
        await http.Response.Body.FlushAsync(cancellationToken);
        var heartbeat = TimeSpan.FromSeconds(Math.Max(0.05, options.Value.HeartbeatSeconds));
        try
        {
            while (true)
            {
                using (var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
                {
                    idle.CancelAfter(heartbeat);
                    try
                    {
                        if (!await channel.Reader.WaitToReadAsync(idle.Token))
                        {
                            return;
                        }
                    }
                    catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                    {
                        await http.Response.WriteAsync(": heartbeat\n\n", cancellationToken);
                        await http.Response.Body.FlushAsync(cancellationToken);
                        continue;
                    }
                }
                while (channel.Reader.TryRead(out var cloudEvent))
                {
                    if (sent.Count == 0 || !sent.Remove(cloudEvent.Id))
                    {
                        await WriteEventAsync(http, cloudEvent, cancellationToken);
                    }
                }
                await http.Response.Body.FlushAsync(cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // the follower disconnected
        }
    }

    private static Task WriteEventAsync(HttpContext http, CloudEvent cloudEvent, CancellationToken cancellationToken)
    {
        var json = System.Text.Encoding.UTF8.GetString(CloudEventFormat.Encode(cloudEvent).Span);
        return http.Response.WriteAsync($"id: {cloudEvent.Id}\nevent: {cloudEvent.Type}\ndata: {json}\n\n", cancellationToken);
    }

    private static string? ConversationOf(CloudEvent e) =>
        e.Data.ValueKind == JsonValueKind.Object && e.Data.TryGetProperty("conversationId", out var id) ? id.GetString() : null;
}
