using System.Text;
using System.Text.Json;
using CloudMemory.BuildingBlocks.Actors;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CloudMemory.Dapr.Actors;

/// <summary>
/// The app side of Dapr actors: daprd places an actor on this host and calls back; this class keeps
/// one instance per id, runs one call at a time per id (methods, reminders, timers alike),
/// activates lazily and deactivates when daprd says so. State goes through the sidecar's actor
/// state API, buffered per call and saved in one transaction after it.
/// </summary>
public sealed class DaprActorHost
{
    private readonly ActorMailboxes<ActorSlot> _mailboxes = new(() => new ActorSlot());
    private readonly Dictionary<string, ActorRegistration> _types;
    private readonly IServiceProvider _services;
    private readonly DaprSidecarClient _sidecar;
    private readonly ILogger<DaprActorHost> _logger;

    /// <summary>Creates the host for the registered actor types.</summary>
    public DaprActorHost(IEnumerable<ActorRegistration> registrations, IServiceProvider services, DaprSidecarClient sidecar, ILogger<DaprActorHost> logger)
    {
        _types = registrations.ToDictionary(r => r.TypeName, StringComparer.Ordinal);
        _services = services;
        _sidecar = sidecar;
        _logger = logger;
    }

    /// <summary>The actor types hosted here (served as <c>entities</c> in /dapr/config).</summary>
    public IReadOnlyCollection<ActorRegistration> Registrations => _types.Values;

    /// <summary>Actors active on this host.</summary>
    public int ActiveCount => _mailboxes.Active.Count;

    /// <summary>True if <paramref name="actorType"/> is hosted here.</summary>
    public bool Hosts(string actorType) => _types.ContainsKey(actorType);

    /// <summary>True if the type has a method of that name.</summary>
    public bool HasMethod(string actorType, string method) => _types.TryGetValue(actorType, out var r) && r.Methods.Contains(method);

    /// <summary>Runs a method call; returns the JSON result.</summary>
    public Task<byte[]> InvokeAsync(string actorType, string actorId, string method, ReadOnlyMemory<byte> argument, CancellationToken cancellationToken) =>
        RunTurnAsync(actorType, actorId, (r, actor, ct) => r.Methods.InvokeAsync(actor, method, argument, ct), cancellationToken);

    /// <summary>Delivers a reminder (a turn like any call).</summary>
    public Task ReceiveReminderAsync(string actorType, string actorId, string name, byte[] state, TimeSpan dueTime, TimeSpan period, CancellationToken cancellationToken) =>
        RunTurnAsync(actorType, actorId, async (_, actor, _) =>
        {
            await actor.ReceiveReminderAsync(name, state, dueTime, period);
            return Array.Empty<byte>();
        }, cancellationToken);

    /// <summary>Deactivates an actor when daprd asks (idle timeout, rebalancing); unknown ids are a no-op.</summary>
    public async Task DeactivateAsync(string actorType, string actorId, CancellationToken cancellationToken)
    {
        if (!_mailboxes.Active.TryGetValue((actorType, actorId), out var slot))
        {
            return;
        }
        await slot.Gate.WaitAsync(cancellationToken); // let a running call finish first
        try
        {
            if (!slot.Deactivated && await _mailboxes.RemoveHeldAsync(actorType, actorId, slot) is { } failure)
            {
                _logger.LogWarning(failure, "Deactivation of {ActorType}/{ActorId} failed", actorType, actorId);
            }
        }
        finally
        {
            slot.Gate.Release();
        }
    }

    private Task<T> RunTurnAsync<T>(string actorType, string actorId, Func<ActorRegistration, Actor, CancellationToken, Task<T>> call, CancellationToken cancellationToken)
    {
        if (!_types.TryGetValue(actorType, out var registration))
        {
            throw new InvalidOperationException($"actor type '{actorType}' is not hosted by this app");
        }
        return _mailboxes.RunTurnAsync(actorType, actorId,
            slot =>
            {
                var actor = (Actor)_services.GetRequiredService(registration.ImplementationType);
                slot.StateManager = new DaprActorStateManager(_sidecar, actorType, actorId);
                actor.Attach(actorType, actorId, slot.StateManager, new DaprActorReminders(_sidecar, actorType, actorId));
                return actor;
            },
            (actor, ct) => call(registration, actor, ct),
            afterTurn: null,
            cancellationToken);
    }
}

/// <summary>Actor state over <c>/v1.0/actors/{type}/{id}/state</c>, committed as one transaction.</summary>
public sealed class DaprActorStateManager(DaprSidecarClient sidecar, string actorType, string actorId) : BufferedActorStateManager(DaprSidecarClient.Json)
{
    private readonly string _root = $"v1.0/actors/{Uri.EscapeDataString(actorType)}/{Uri.EscapeDataString(actorId)}/state";

    /// <inheritdoc />
    protected override async Task<byte[]?> ReadAsync(string name, CancellationToken cancellationToken)
    {
        using var response = await sidecar.SendAsync(() => new HttpRequestMessage(HttpMethod.Get, sidecar.Uri($"{_root}/{Uri.EscapeDataString(name)}")),
            idempotent: true, cancellationToken);
        if (response.StatusCode == System.Net.HttpStatusCode.NoContent)
        {
            return null;
        }
        await DaprSidecarClient.EnsureSuccessAsync(response, $"actor state get {actorType}/{actorId}/{name}", cancellationToken);
        return await response.Content.ReadAsByteArrayAsync(cancellationToken);
    }

    /// <inheritdoc />
    protected override async Task CommitAsync(IReadOnlyDictionary<string, ActorStateChange> changes, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartArray();
            foreach (var (key, change) in changes)
            {
                w.WriteStartObject();
                w.WriteString("operation", change.Delete ? "delete" : "upsert");
                w.WriteStartObject("request");
                w.WriteString("key", key);
                if (!change.Delete)
                {
                    w.WritePropertyName("value");
                    w.WriteRawValue(change.Value);
                }
                w.WriteEndObject();
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        var body = buffer.ToArray();
        // Upserts and deletes without ETags: repeating the whole set leaves the same state.
        using var response = await sidecar.SendAsync(() =>
        {
            var content = new ByteArrayContent(body);
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
            return new HttpRequestMessage(HttpMethod.Post, sidecar.Uri(_root)) { Content = content };
        }, idempotent: true, cancellationToken);
        await DaprSidecarClient.EnsureSuccessAsync(response, $"actor state save {actorType}/{actorId}", cancellationToken);
    }
}

/// <summary>Reminders over <c>/v1.0/actors/{type}/{id}/reminders/{name}</c>.</summary>
public sealed class DaprActorReminders(DaprSidecarClient sidecar, string actorType, string actorId) : IActorReminders
{
    /// <inheritdoc />
    public async Task RegisterReminderAsync(string name, byte[] state, TimeSpan dueTime, TimeSpan period, CancellationToken cancellationToken = default)
    {
        // data is a JSON string holding base64 (System.Text.Json's byte[] form, as the .NET SDK sends);
        // daprd hands it back unchanged in the remind callback. An empty period means "fire once".
        var body = JsonSerializer.SerializeToUtf8Bytes(new ReminderRequest(
            DaprDuration.Format(dueTime), period > TimeSpan.Zero ? DaprDuration.Format(period) : null, state), DaprSidecarClient.Json);
        var uri = sidecar.Uri(Path(name));
        using var response = await sidecar.SendAsync(() => new HttpRequestMessage(HttpMethod.Put, uri)
        {
            Content = new ByteArrayContent(body) { Headers = { ContentType = new("application/json") } },
        }, idempotent: true, cancellationToken); // registering the same reminder again replaces it
        await DaprSidecarClient.EnsureSuccessAsync(response, $"reminder register {actorType}/{actorId}/{name}", cancellationToken);
    }

    /// <inheritdoc />
    public async Task UnregisterReminderAsync(string name, CancellationToken cancellationToken = default)
    {
        var uri = sidecar.Uri(Path(name));
        using var response = await sidecar.SendAsync(() => new HttpRequestMessage(HttpMethod.Delete, uri), idempotent: true, cancellationToken);
        await DaprSidecarClient.EnsureSuccessAsync(response, $"reminder delete {actorType}/{actorId}/{name}", cancellationToken);
    }

    private string Path(string name) =>
        $"v1.0/actors/{Uri.EscapeDataString(actorType)}/{Uri.EscapeDataString(actorId)}/reminders/{Uri.EscapeDataString(name)}";

    private sealed record ReminderRequest(string DueTime, string? Period, byte[] Data);
}

/// <summary>Body of daprd's <c>PUT /actors/{type}/{id}/method/remind/{name}</c>.</summary>
internal static class ReminderPayload
{
    /// <summary>Reads <c>{"dueTime","period","data"}</c>; data is base64 text when registered by us, other JSON as UTF-8.</summary>
    public static (TimeSpan Due, TimeSpan Period, byte[] Data) Read(ReadOnlySpan<byte> body)
    {
        if (body.IsEmpty)
        {
            return (TimeSpan.Zero, TimeSpan.Zero, []);
        }
        var reader = new Utf8JsonReader(body);
        using var doc = JsonDocument.ParseValue(ref reader);
        var root = doc.RootElement;
        var due = root.TryGetProperty("dueTime", out var d) && d.ValueKind == JsonValueKind.String ? DaprDuration.Parse(d.GetString()) : TimeSpan.Zero;
        var period = root.TryGetProperty("period", out var p) && p.ValueKind == JsonValueKind.String ? DaprDuration.Parse(p.GetString()) : TimeSpan.Zero;
        byte[] data = [];
        if (root.TryGetProperty("data", out var payload))
        {
            data = payload.ValueKind switch
            {
                JsonValueKind.String when payload.TryGetBytesFromBase64(out var bytes) => bytes,
                JsonValueKind.String => Encoding.UTF8.GetBytes(payload.GetString()!),
                JsonValueKind.Null or JsonValueKind.Undefined => [],
                _ => Encoding.UTF8.GetBytes(payload.GetRawText()),
            };
        }
        return (due, period, data);
    }
}
