using System.Runtime.CompilerServices;
using System.Text.Json;

namespace CloudMemory.Client;

/// <summary>One event of <c>GET /v1/events</c>: its id, CloudEvent type and the whole CloudEvent (its <c>data</c> is <see cref="Data"/>).</summary>
public sealed record StreamedEvent(string Id, string Type, JsonElement CloudEvent)
{
    /// <summary>The event's payload (the CloudEvent's <c>data</c>).</summary>
    public JsonElement Data => CloudEvent.TryGetProperty("data", out var data) ? data : default;
}

/// <summary>The embedded host's event stream.</summary>
public sealed partial class CloudMemoryClient
{
    /// <summary>
    /// Follows the tenant's events (server-sent events of the embedded host) until cancelled. A dropped
    /// connection is reopened with <c>Last-Event-ID</c>, so the events published meanwhile are replayed
    /// from the server's bounded buffer; pass <paramref name="lastEventId"/> to resume a previous follow.
    /// </summary>
    public async IAsyncEnumerable<StreamedEvent> FollowEventsAsync(IReadOnlyCollection<string>? topics = null, string? conversationId = null, string? lastEventId = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var query = new List<string>();
        if (topics is { Count: > 0 })
        {
            query.Add("topics=" + Uri.EscapeDataString(string.Join(',', topics)));
        }
        if (conversationId is not null)
        {
            query.Add("conversationId=" + Uri.EscapeDataString(conversationId));
        }
        var path = "v1/events" + (query.Count > 0 ? "?" + string.Join('&', query) : "");
        var last = lastEventId;
        var failures = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            HttpResponseMessage? response = null;
            StreamReader? reader = null;
            try
            {
                using (var request = CreateRequest(HttpMethod.Get, options.SessionAppId, path, null, null))
                {
                    request.Headers.Add("Accept", "text/event-stream");
                    if (last is not null)
                    {
                        request.Headers.Add("Last-Event-ID", last);
                    }
                    response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
                }
                if (!response.IsSuccessStatusCode)
                {
                    await ReadAsync<object>(response, cancellationToken); // a refusal (400, 401, 403) is final: thrown
                }
                reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken));
                failures = 0;
            }
            catch (HttpRequestException) when (++failures < 5 && !cancellationToken.IsCancellationRequested)
            {
                response?.Dispose();
                await Task.Delay(TimeSpan.FromMilliseconds(200 * failures), cancellationToken);
                continue;
            }
            using (response)
            using (reader)
            {
                string? id = null, type = null;
                while (true)
                {
                    string? line;
                    try
                    {
                        line = await reader.ReadLineAsync(cancellationToken);
                    }
                    catch (IOException)
                    {
                        break; // the connection dropped: reopen with Last-Event-ID
                    }
                    if (line is null)
                    {
                        break;
                    }
                    if (line.StartsWith("id: ", StringComparison.Ordinal))
                    {
                        id = line[4..];
                    }
                    else if (line.StartsWith("event: ", StringComparison.Ordinal))
                    {
                        type = line[7..];
                    }
                    else if (line.StartsWith("data: ", StringComparison.Ordinal) && id is not null)
                    {
                        var cloudEvent = JsonDocument.Parse(line[6..]).RootElement.Clone();
                        last = id;
                        yield return new StreamedEvent(id, type ?? "", cloudEvent);
                        id = type = null;
                    }
                }
            }
        }
    }
}
