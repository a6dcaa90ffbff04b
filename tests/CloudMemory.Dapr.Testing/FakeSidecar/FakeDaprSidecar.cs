using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using System.Xml;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CloudMemory.Dapr.Tests.FakeSidecar;

/// <summary>
/// A stand-in for daprd on loopback. Its gRPC API (state, bulk state, transactions, publish) is
/// served by base classes generated at build time from the proto descriptors in Dapr.Protos
/// (<c>FakeDaprSidecar.Grpc.cs</c>); a small HTTP slice, written from shared/dapr-contract.md, serves
/// health, service invocation and the actor API. Every call is checked for token and shape; any RPC
/// or route it does not implement is recorded in <see cref="Violations"/>, which each test asserts empty.
/// It drives the app as daprd does: reads /dapr/subscribe and /dapr/config, delivers CloudEvents
/// with retry and dead-lettering, forwards actor calls one at a time per id, fires reminders on the
/// test's clock.
/// </summary>
public sealed partial class FakeDaprSidecar : IAsyncDisposable
{
    public const string StoreName = "statestore";
    public const string PubSubName = "pubsub";

    private WebApplication _host = null!;
    private readonly TimeProvider _clock;
    private readonly HttpClient _toApp = new() { Timeout = Wait.Timeout };
    private readonly Lock _stateGate = new();
    private readonly Dictionary<string, Stored> _state = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _actorState = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _actorLocks = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _activeActors = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Reminder> _reminders = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private List<AppSubscription> _subscriptions = [];
    // Placement: which connected app hosts each actor type (daprd learns it from /dapr/config).
    private readonly ConcurrentDictionary<string, Uri> _actorHosts = new(StringComparer.Ordinal);
    private Uri? _app;
    private long _etag;
    private int _pendingDeliveries;

    private FakeDaprSidecar(TimeProvider clock, string? apiToken, string? appApiToken)
    {
        _clock = clock;
        ApiToken = apiToken;
        AppApiToken = appApiToken;
    }

    public string? ApiToken { get; }
    public string? AppApiToken { get; }
    /// <summary>The HTTP API (DAPR_HTTP_ENDPOINT): health, invocation, actors.</summary>
    public Uri BaseAddress { get; private set; } = null!;
    public ConcurrentQueue<RecordedRequest> Requests { get; } = new();
    public ConcurrentQueue<string> Violations { get; } = new();
    public ConcurrentQueue<DeliveryRecord> Deliveries { get; } = new();
    public ConcurrentQueue<ActorCallRecord> ActorCalls { get; } = new();
    public Dictionary<string, Uri> Apps { get; } = new(StringComparer.Ordinal);
    public IReadOnlyList<AppSubscription> Subscriptions => _subscriptions;
    public JsonObject? ActorConfig { get; private set; }

    /// <summary>Deliveries of one event to one subscription before it is dead-lettered (the resiliency policy's job in daprd).</summary>
    public int MaxDeliveryAttempts { get; set; } = 3;

    /// <summary>What <c>/v1.0/healthz/outbound</c> reports.</summary>
    public bool OutboundReady { get; set; } = true;

    public int PendingDeliveries => Volatile.Read(ref _pendingDeliveries);
    public IReadOnlyCollection<Reminder> Reminders => _reminders.Values.ToList();

    public static async Task<FakeDaprSidecar> StartAsync(TimeProvider clock, string? apiToken = null, string? appApiToken = null)
    {
        var fake = new FakeDaprSidecar(clock, apiToken, appApiToken);
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        fake._host = builder.Build();
        fake._host.Run(fake.HandleAsync);
        await fake._host.StartAsync();
        fake.BaseAddress = AddressOf(fake._host);
        await fake.StartGrpcAsync();
        return fake;
    }

    public void AssertNoViolations() =>
        Violations.Should().BeEmpty("the fake sidecar accepts only what the Dapr contract allows");

    /// <summary>
    /// What daprd does once the app port answers: read /dapr/subscribe and /dapr/config. Several apps
    /// may connect: the fake then plays their sidecars together (deliveries go to the subscribing
    /// app, actor calls to the app hosting the type, as placement would route them).
    /// </summary>
    public async Task ConnectAppAsync(Uri app, string appId)
    {
        _app = app;
        if (Apps.TryGetValue(appId, out var previous) && previous != app)
        {
            // The app restarted on a new port: its sidecar forgets the old address's subscriptions.
            _subscriptions = [.. _subscriptions.Where(s => s.App != previous)];
        }
        Apps[appId] = app;
        using (var response = await _toApp.SendAsync(ToApp(HttpMethod.Get, "dapr/subscribe", app)))
        {
            var subscriptions = new List<AppSubscription>();
            if (response.StatusCode != HttpStatusCode.NotFound)
            {
                Expect(response.StatusCode == HttpStatusCode.OK, $"GET /dapr/subscribe answered {(int)response.StatusCode}");
                // daprd decodes with Go's encoding/json, which matches property names case-insensitively
                // (the SDK writes "pubsubName").
                var array = JsonNode.Parse(await response.Content.ReadAsStringAsync(), new JsonNodeOptions { PropertyNameCaseInsensitive = true }) as JsonArray;
                Expect(array is not null, "/dapr/subscribe must return a JSON array");
                foreach (var item in array ?? [])
                {
                    var obj = item as JsonObject;
                    if (!Expect(obj is not null, "/dapr/subscribe items must be objects"))
                    {
                        continue;
                    }
                    CheckPropertiesIgnoringCase(obj!, "/dapr/subscribe item", "pubsubname", "topic", "route", "routes", "deadLetterTopic", "metadata", "bulkSubscribe");
                    var pubsub = Str(obj!, "pubsubname", "/dapr/subscribe item");
                    var topic = Str(obj!, "topic", "/dapr/subscribe item");
                    // The SDK writes "route" for a plain subscription and "routes" when it has rules.
                    var route = obj!["route"] is not null ? Str(obj, "route", "/dapr/subscribe item")
                        : obj["routes"]?["default"]?.GetValue<string>();
                    // daprd joins the route to the app address with or without a leading slash.
                    Expect(!string.IsNullOrEmpty(route), "a subscription needs a route");
                    route = "/" + route?.TrimStart('/');
                    var deadLetter = obj!["deadLetterTopic"] is { } d ? d.GetValue<string>() : null;
                    subscriptions.Add(new AppSubscription(pubsub ?? "", topic ?? "", route ?? "", deadLetter, app));
                }
            }
            _subscriptions = [.. _subscriptions.Where(s => s.App != app), .. subscriptions];
        }
        using (var response = await _toApp.SendAsync(ToApp(HttpMethod.Get, "dapr/config", app)))
        {
            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                return; // no actors hosted
            }
            Expect(response.StatusCode == HttpStatusCode.OK, $"GET /dapr/config answered {(int)response.StatusCode}");
            var config = JsonNode.Parse(await response.Content.ReadAsStringAsync()) as JsonObject;
            if (!Expect(config is not null, "/dapr/config must be an object"))
            {
                return;
            }
            CheckProperties(config!, "/dapr/config", "entities", "actorIdleTimeout", "actorScanInterval", "drainOngoingCallTimeout",
                "drainRebalancedActors", "reentrancy", "entitiesConfig", "remindersStoragePartitions");
            ActorConfig = config;
            var entities = config!["entities"] as JsonArray;
            Expect(entities is not null, "/dapr/config needs entities");
            foreach (var type in (entities ?? []).Select(e => e!.GetValue<string>()))
            {
                _actorHosts[type] = app;
            }
            foreach (var key in new[] { "actorIdleTimeout", "actorScanInterval", "drainOngoingCallTimeout" })
            {
                if (config[key] is { } value)
                {
                    Expect(TryParseDuration(value.GetValue<string>(), out _), $"/dapr/config {key} '{value}' is not a Dapr duration");
                }
            }
            if (config["drainRebalancedActors"] is { } drain)
            {
                Expect(drain.GetValueKind() is JsonValueKind.True or JsonValueKind.False, "drainRebalancedActors must be a boolean");
            }
        }
    }

    /// <summary>The live value stored under <paramref name="key"/> in the state store (what the app saved), or null.</summary>
    public JsonNode? StoredState(string key)
    {
        lock (_stateGate)
        {
            return TryGetLive(key, out var item) ? JsonNode.Parse(item.Json) : null;
        }
    }

    public Task WhenDeliveriesSettledAsync() => Wait.UntilAsync(() => PendingDeliveries == 0, "fake sidecar deliveries to settle");

    /// <summary>daprd's idle-timeout or rebalancing deactivation: DELETE /actors/{type}/{id}, one turn like any call.</summary>
    public async Task DeactivateActorAsync(string type, string id)
    {
        var gate = _actorLocks.GetOrAdd(ActorKey(type, id), _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync();
        try
        {
            using var response = await _toApp.SendAsync(ToApp(HttpMethod.Delete, $"actors/{type}/{id}", HostOf(type)));
            Expect(response.StatusCode == HttpStatusCode.OK, $"DELETE /actors/{type}/{id} answered {(int)response.StatusCode}; contract says 200");
            _activeActors.TryRemove(ActorKey(type, id), out _);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>Fires every reminder due on the fake clock: PUT /actors/{type}/{id}/method/remind/{name}.</summary>
    public async Task<int> FireDueRemindersAsync()
    {
        var fired = 0;
        foreach (var reminder in _reminders.Values.Where(r => r.DueAt <= _clock.GetUtcNow()).ToList())
        {
            var gate = _actorLocks.GetOrAdd(ActorKey(reminder.Type, reminder.Id), _ => new SemaphoreSlim(1, 1));
            await gate.WaitAsync();
            try
            {
                _activeActors[ActorKey(reminder.Type, reminder.Id)] = true;
                var body = new JsonObject { ["dueTime"] = reminder.DueTime, ["period"] = reminder.Period ?? "", ["data"] = reminder.Data?.DeepClone() };
                var request = ToApp(HttpMethod.Put, $"actors/{reminder.Type}/{reminder.Id}/method/remind/{reminder.Name}", HostOf(reminder.Type));
                request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
                using var response = await _toApp.SendAsync(request);
                Expect(response.IsSuccessStatusCode, $"remind callback answered {(int)response.StatusCode}");
                fired++;
                var cancel = response.Headers.TryGetValues("X-DaprReminderCancel", out var v) && v.Contains("true", StringComparer.OrdinalIgnoreCase);
                if (reminder.PeriodValue > TimeSpan.Zero && !cancel)
                {
                    _reminders[reminder.Key] = reminder with { DueAt = reminder.DueAt + reminder.PeriodValue };
                }
                else
                {
                    _reminders.TryRemove(reminder.Key, out _);
                }
            }
            finally
            {
                gate.Release();
            }
        }
        return fired;
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        await _host.StopAsync();
        await _host.DisposeAsync();
        await StopGrpcAsync();
        _toApp.Dispose();
        _stopping.Dispose();
    }

    // ---------------------------------------------------------------- request dispatch

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer);
        var body = buffer.ToArray();
        var path = request.Path.Value ?? "/";
        var recorded = new RecordedRequest(request.Method, path, request.QueryString.Value ?? "",
            request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase), body);
        Requests.Enqueue(recorded);
        var s = path.Trim('/').Split('/');

        if (request.Method == "GET" && (path == "/v1.0/healthz" || path == "/v1.0/healthz/outbound"))
        {
            // Token-exempt per the contract.
            await (OutboundReady ? NoContent(context) : Error(context, 500, "ERR_HEALTH_NOT_READY", "dapr is not ready"));
            return;
        }
        if (ApiToken is not null && recorded.Header("dapr-api-token") != ApiToken)
        {
            Violation($"{request.Method} {path} without the right dapr-api-token");
            context.Response.StatusCode = 401;
            await context.Response.WriteAsync("invalid api token");
            return;
        }
        var handled = s switch
        {
            ["v1.0", "invoke", var appId, "method", ..] => InvokeAsync(context, appId, string.Join('/', s.Skip(4)), recorded),
            ["v1.0", "actors", var type, var id, "method", var method] when request.Method is "GET" or "POST" or "PUT" or "DELETE" => ActorInvokeAsync(context, type, id, method, recorded),
            ["v1.0", "actors", var type, var id, "state", var key] when request.Method == "GET" => ActorStateGetAsync(context, type, id, Uri.UnescapeDataString(key), recorded),
            ["v1.0", "actors", var type, var id, "state"] when request.Method is "POST" or "PUT" => ActorStateSaveAsync(context, type, id, recorded),
            ["v1.0", "actors", var type, var id, "reminders", var name] when request.Method is "POST" or "PUT" or "GET" or "DELETE" => ReminderAsync(context, type, id, name, recorded),
            _ => null,
        };
        if (handled is null)
        {
            Violation($"unrecognised request {request.Method} {path}{request.QueryString}");
            await Error(context, 400, "FAKE_SIDECAR_UNRECOGNISED", $"the contract has no {request.Method} {path}");
            return;
        }
        await handled;
    }

    // ---------------------------------------------------------------- state (§1; the gRPC handlers are in FakeDaprSidecar.Grpc.cs)

    // Conflict rules (Redis-like): a given ETag must equal the stored one (a missing key never matches);
    // first-write without an ETag requires the key to be absent (store-dependent per the contract).
    private string? Conflict(WriteRequest write)
    {
        var exists = TryGetLive(write.Key, out var current);
        if (write.ETag is not null)
        {
            return !exists ? $"possible etag mismatch: key {write.Key} does not exist"
                : current.ETag.ToString(CultureInfo.InvariantCulture) != write.ETag ? $"possible etag mismatch for key {write.Key}"
                : null;
        }
        return write.FirstWrite && exists && !write.Delete ? $"possible etag mismatch: first-write and key {write.Key} exists" : null;
    }

    private void Apply(WriteRequest write)
    {
        if (write.Delete)
        {
            _state.Remove(write.Key);
            return;
        }
        _state[write.Key] = new Stored(write.Json!, ++_etag, write.Ttl is { } ttl ? _clock.GetUtcNow() + ttl : null);
    }

    private bool TryGetLive(string key, out Stored item)
    {
        if (_state.TryGetValue(key, out item!) && (item.ExpiresAt is null || item.ExpiresAt > _clock.GetUtcNow()))
        {
            return true;
        }
        _state.Remove(key);
        return false;
    }

    // ---------------------------------------------------------------- pub/sub (§2)

    private void StartDelivery(string topic, JsonObject envelope)
    {
        foreach (var subscription in _subscriptions.Where(s => s.PubSubName == PubSubName && s.Topic == topic))
        {
            Interlocked.Increment(ref _pendingDeliveries);
            var copy = (JsonObject)envelope.DeepClone();
            _ = Task.Run(async () =>
            {
                try
                {
                    await DeliverAsync(subscription, copy);
                }
                catch (Exception ex)
                {
                    Violation($"delivery to {subscription.Route} crashed: {ex.Message}");
                }
                finally
                {
                    Interlocked.Decrement(ref _pendingDeliveries);
                }
            });
        }
    }

    private async Task DeliverAsync(AppSubscription subscription, JsonObject envelope)
    {
        var id = envelope["id"]?.GetValue<string>() ?? "";
        for (var attempt = 1; ; attempt++)
        {
            var request = ToApp(HttpMethod.Post, subscription.Route.TrimStart('/'), subscription.App);
            request.Content = new StringContent(envelope.ToJsonString(), Encoding.UTF8);
            request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/cloudevents+json");
            using var response = await _toApp.SendAsync(request, _stopping.Token);
            var outcome = await ReadOutcomeAsync(response, subscription.Route);
            Deliveries.Enqueue(new DeliveryRecord(subscription.Topic, subscription.Route, id, attempt, outcome));
            if (outcome == "SUCCESS")
            {
                return;
            }
            if (outcome == "RETRY" && attempt < MaxDeliveryAttempts)
            {
                continue;
            }
            if (subscription.DeadLetterTopic is { } deadLetter)
            {
                var dead = (JsonObject)envelope.DeepClone();
                dead["topic"] = deadLetter;
                StartDelivery(deadLetter, dead);
            }
            return;
        }
    }

    // The contract's reading of the app's answer (§2.3).
    private async Task<string> ReadOutcomeAsync(HttpResponseMessage response, string route)
    {
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return "DROP";
        }
        if (!response.IsSuccessStatusCode)
        {
            return "RETRY";
        }
        var text = await response.Content.ReadAsStringAsync();
        string? status = null;
        try
        {
            status = (JsonNode.Parse(text) as JsonObject)?["status"]?.GetValue<string>();
        }
        catch (JsonException)
        {
        }
        // CloudMemory always answers 200 with an explicit status; daprd would read its absence as SUCCESS.
        Expect(response.StatusCode == HttpStatusCode.OK && status is "SUCCESS" or "RETRY" or "DROP",
            $"delivery answer from {route} was {(int)response.StatusCode} '{text}', expected 200 {{\"status\":\"SUCCESS|RETRY|DROP\"}}");
        return status switch
        {
            null or "SUCCESS" => "SUCCESS",
            "DROP" => "DROP",
            _ => "RETRY",
        };
    }

    // ---------------------------------------------------------------- service invocation (§3)

    private async Task InvokeAsync(HttpContext context, string appId, string path, RecordedRequest r)
    {
        if (!Apps.TryGetValue(appId, out var app))
        {
            await Error(context, 404, "ERR_DIRECT_INVOKE", $"app id {appId} not found");
            return;
        }
        var request = new HttpRequestMessage(new HttpMethod(r.Method), new Uri(app, path + r.Query));
        if (r.Body.Length > 0)
        {
            request.Content = new ByteArrayContent(r.Body);
            if (r.Header("Content-Type") is { } type)
            {
                request.Content.Headers.TryAddWithoutValidation("Content-Type", type);
            }
        }
        // daprd proxies HTTP invocation: the caller's headers reach the callee (the caller's own
        // sidecar token does not; the app token replaces it).
        foreach (var (name, value) in r.Headers)
        {
            if (!HopHeaders.Contains(name))
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }
        }
        if (AppApiToken is not null)
        {
            request.Headers.TryAddWithoutValidation("dapr-api-token", AppApiToken);
        }
        using var response = await _toApp.SendAsync(request);
        await CopyAsync(context, response);
    }

    private static readonly HashSet<string> HopHeaders = new(StringComparer.OrdinalIgnoreCase)
    {
        "Host", "Content-Type", "Content-Length", "Connection", "Transfer-Encoding", "Keep-Alive", "dapr-api-token",
    };

    // ---------------------------------------------------------------- actors (§4)

    private static readonly string[] ActorPassThroughHeaders = ["X-DaprRequestHeader", "Dapr-Reentrancy-Id"];

    private async Task ActorInvokeAsync(HttpContext context, string type, string id, string method, RecordedRequest r)
    {
        if (!_actorHosts.ContainsKey(type))
        {
            await Error(context, 500, "ERR_ACTOR_INVOKE_METHOD", $"did not find address for actor {type}/{id}");
            return;
        }
        // Turn-based concurrency: daprd forwards one call at a time per actor id.
        var gate = _actorLocks.GetOrAdd(ActorKey(type, id), _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync();
        try
        {
            _activeActors[ActorKey(type, id)] = true;
            var request = ToApp(HttpMethod.Put, $"actors/{type}/{id}/method/{method}", HostOf(type));
            request.Content = new ByteArrayContent(r.Body);
            if (r.Header("Content-Type") is { } contentType)
            {
                request.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
            }
            // daprd passes the SDK's remoting header (the serialized request header of a typed proxy
            // call) and the reentrancy id through to the app unchanged.
            foreach (var header in ActorPassThroughHeaders)
            {
                if (r.Header(header) is { } value)
                {
                    request.Headers.TryAddWithoutValidation(header, value);
                }
            }
            using var response = await _toApp.SendAsync(request);
            ActorCalls.Enqueue(new ActorCallRecord(type, id, method, (int)response.StatusCode));
            await CopyAsync(context, response);
        }
        finally
        {
            gate.Release();
        }
    }

    private async Task ActorStateGetAsync(HttpContext context, string type, string id, string key, RecordedRequest r)
    {
        if (!await CheckActiveAsync(context, type, id))
        {
            return;
        }
        CheckQuery(r, context);
        string? json;
        lock (_stateGate)
        {
            _actorState.TryGetValue(ActorKey(type, id) + "||" + key, out json);
        }
        if (json is null)
        {
            await NoContent(context);
            return;
        }
        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(json);
    }

    private async Task ActorStateSaveAsync(HttpContext context, string type, string id, RecordedRequest r)
    {
        if (!await CheckActiveAsync(context, type, id))
        {
            return;
        }
        if (ParseNode(r, "actor state") is not JsonArray ops)
        {
            Violation("actor state body must be an array of operations");
            await MalformedAsync(context);
            return;
        }
        var changes = new List<(string Key, string? Json)>();
        foreach (var op in ops)
        {
            if (op is not JsonObject o || o["request"] is not JsonObject request)
            {
                Violation("actor state operation must be {operation, request}");
                await MalformedAsync(context);
                return;
            }
            CheckProperties(o, "actor state operation", "operation", "request");
            CheckProperties(request, "actor state request", "key", "value", "metadata");
            var kind = o["operation"]?.GetValue<string>();
            var key = request["key"]?.GetValue<string>();
            if (kind is not ("upsert" or "delete") || string.IsNullOrEmpty(key))
            {
                Violation($"actor state operation '{kind}' / key '{key}' is not valid");
                await Error(context, 400, "ERR_MALFORMED_REQUEST", "bad operation");
                return;
            }
            if (request["metadata"] is { } metadata)
            {
                Expect(metadata is JsonObject m && m.All(p => p.Value?.GetValueKind() == JsonValueKind.String), "actor state metadata must be a map of strings");
            }
            Expect(kind == "delete" || request.ContainsKey("value"), $"actor state upsert of '{key}' has no value");
            changes.Add((key, kind == "upsert" ? request["value"]?.ToJsonString() ?? "null" : null));
        }
        lock (_stateGate)
        {
            foreach (var (key, json) in changes)
            {
                var full = ActorKey(type, id) + "||" + key;
                if (json is null)
                {
                    _actorState.Remove(full);
                }
                else
                {
                    _actorState[full] = json;
                }
            }
        }
        await NoContent(context);
    }

    private async Task ReminderAsync(HttpContext context, string type, string id, string name, RecordedRequest r)
    {
        var key = $"{ActorKey(type, id)}||{name}";
        switch (r.Method)
        {
            case "GET":
                if (_reminders.TryGetValue(key, out var existing))
                {
                    await Json(context, 200, new JsonObject { ["dueTime"] = existing.DueTime, ["period"] = existing.Period, ["data"] = existing.Data?.DeepClone() });
                }
                else
                {
                    await Error(context, 404, "ERR_ACTOR_REMINDER_GET", "reminder not found");
                }
                return;
            case "DELETE":
                _reminders.TryRemove(key, out _);
                await NoContent(context);
                return;
        }
        if (!_actorHosts.ContainsKey(type))
        {
            await Error(context, 403, "ERR_ACTOR_REMINDER_NON_HOSTED", "actor type not hosted");
            return;
        }
        if (ParseObject(r, "reminder") is not { } body)
        {
            await MalformedAsync(context);
            return;
        }
        CheckProperties(body, "reminder", "dueTime", "period", "ttl", "data");
        var dueText = body["dueTime"]?.GetValue<string>() ?? "";
        var periodText = body["period"]?.GetValue<string>();
        if (!TryParseDuration(dueText, out var due) || (!string.IsNullOrEmpty(periodText) && !TryParseDuration(periodText, out _)))
        {
            Violation($"reminder dueTime '{dueText}' / period '{periodText}' are not Go or ISO 8601 durations");
            await Error(context, 400, "ERR_MALFORMED_REQUEST", "bad duration");
            return;
        }
        _ = TryParseDuration(periodText ?? "", out var period);
        _reminders[key] = new Reminder(key, type, id, name, dueText, periodText, period, body["data"]?.DeepClone(), _clock.GetUtcNow() + due);
        await NoContent(context);
    }

    private async Task<bool> CheckActiveAsync(HttpContext context, string type, string id)
    {
        if (_activeActors.ContainsKey(ActorKey(type, id)))
        {
            return true;
        }
        Violation($"actor state of {type}/{id} used while the actor is not active on this host");
        await Error(context, 400, "ERR_ACTOR_INSTANCE_MISSING", "actor instance is missing");
        return false;
    }

    // ---------------------------------------------------------------- helpers

    private static Uri AddressOf(WebApplication host) =>
        new(host.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/') + "/");

    private Uri? HostOf(string actorType) => _actorHosts.TryGetValue(actorType, out var app) ? app : null;

    private HttpRequestMessage ToApp(HttpMethod method, string relative, Uri? app = null)
    {
        var request = new HttpRequestMessage(method, new Uri(app ?? _app ?? throw new InvalidOperationException("ConnectAppAsync first"), relative));
        if (AppApiToken is not null)
        {
            request.Headers.TryAddWithoutValidation("dapr-api-token", AppApiToken);
        }
        return request;
    }

    private static string ActorKey(string type, string id) => $"{type}||{id}";

    private void CheckQuery(RecordedRequest r, HttpContext context, params string[] allowed)
    {
        foreach (var (name, value) in context.Request.Query)
        {
            if (name.StartsWith("metadata.", StringComparison.Ordinal))
            {
                continue;
            }
            if (!allowed.Contains(name))
            {
                Violation($"{r.Method} {r.Path}: query parameter '{name}' is not in the contract");
                continue;
            }
            var v = value.ToString();
            Expect(name switch
            {
                "consistency" => v is "strong" or "eventual",
                "concurrency" => v is "first-write" or "last-write",
                _ => true,
            }, $"{r.Method} {r.Path}: {name}={v} is not an allowed value");
        }
    }

    private void CheckProperties(JsonObject obj, string where, params string[] allowed)
    {
        foreach (var (name, _) in obj)
        {
            Expect(allowed.Contains(name), $"{where}: property '{name}' is not in the contract");
        }
    }

    private void CheckPropertiesIgnoringCase(JsonObject obj, string where, params string[] allowed)
    {
        foreach (var (name, _) in obj)
        {
            Expect(allowed.Contains(name, StringComparer.OrdinalIgnoreCase), $"{where}: property '{name}' is not in the contract");
        }
    }

    private string? Str(JsonObject obj, string name, string where)
    {
        var node = obj[name];
        Expect(node?.GetValueKind() == JsonValueKind.String, $"{where}: '{name}' must be a string");
        return node?.GetValueKind() == JsonValueKind.String ? node.GetValue<string>() : null;
    }

    private JsonNode? ParseNode(RecordedRequest r, string where)
    {
        try
        {
            return JsonNode.Parse(r.Body);
        }
        catch (JsonException ex)
        {
            Violation($"{where}: body is not JSON ({ex.Message})");
            return null;
        }
    }

    private JsonObject? ParseObject(RecordedRequest r, string where)
    {
        var node = ParseNode(r, where);
        Expect(node is JsonObject, $"{where}: body must be a JSON object");
        return node as JsonObject;
    }

    private bool Expect(bool condition, string violation)
    {
        if (!condition)
        {
            Violation(violation);
        }
        return condition;
    }

    private void Violation(string message) => Violations.Enqueue(message);

    private static Task NoContent(HttpContext context)
    {
        context.Response.StatusCode = 204;
        return Task.CompletedTask;
    }

    private static Task MalformedAsync(HttpContext context) => Error(context, 400, "ERR_MALFORMED_REQUEST", "malformed request");

    private static Task Error(HttpContext context, int status, string code, string message) =>
        Json(context, status, new JsonObject { ["errorCode"] = code, ["message"] = message });

    private static async Task Json(HttpContext context, int status, JsonNode body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body.ToJsonString());
    }

    private static async Task CopyAsync(HttpContext context, HttpResponseMessage response)
    {
        context.Response.StatusCode = (int)response.StatusCode;
        // The callee's headers come back as they are (ETag, Location, ...), hop-by-hop ones aside.
        foreach (var (name, values) in response.Headers)
        {
            if (!HopHeaders.Contains(name))
            {
                context.Response.Headers[name] = values.ToArray();
            }
        }
        if (response.Content.Headers.ContentType is { } type)
        {
            context.Response.ContentType = type.ToString();
        }
        await context.Response.Body.WriteAsync(await response.Content.ReadAsByteArrayAsync());
    }

    /// <summary>The contract's duration forms: Go (<c>1h2m3.5s</c>), ISO 8601 (<c>PT1M</c>, <c>R5/PT1M</c>).</summary>
    public static bool TryParseDuration(string text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        if (text.Length == 0)
        {
            return true;
        }
        var iso = RepeatPrefix().Replace(text, "");
        if (iso.StartsWith('P'))
        {
            try
            {
                value = XmlConvert.ToTimeSpan(iso);
                return true;
            }
            catch (FormatException)
            {
                return false;
            }
        }
        if (!GoDurationRegex().IsMatch(text))
        {
            return false;
        }
        foreach (Match part in GoPartRegex().Matches(text))
        {
            var n = double.Parse(part.Groups[1].Value, CultureInfo.InvariantCulture);
            value += part.Groups[2].Value switch
            {
                "h" => TimeSpan.FromHours(n),
                "m" => TimeSpan.FromMinutes(n),
                "s" => TimeSpan.FromSeconds(n),
                "ms" => TimeSpan.FromMilliseconds(n),
                _ => TimeSpan.FromTicks((long)(n / 100)),
            };
        }
        return true;
    }

    [GeneratedRegex(@"^R\d*/")]
    private static partial Regex RepeatPrefix();

    [GeneratedRegex(@"^(\d+(\.\d+)?(h|m|s|ms|us|µs|ns))+$")]
    private static partial Regex GoDurationRegex();

    [GeneratedRegex(@"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")]
    private static partial Regex GoPartRegex();

    private sealed record Stored(string Json, long ETag, DateTimeOffset? ExpiresAt);

    private sealed record WriteRequest(string Key, string? Json, string? ETag, TimeSpan? Ttl, bool FirstWrite, bool Delete);
}

public sealed record AppSubscription(string PubSubName, string Topic, string Route, string? DeadLetterTopic, Uri? App = null);

public sealed record DeliveryRecord(string Topic, string Route, string EventId, int Attempt, string Outcome);

/// <summary>An actor call the fake forwarded to the app's <c>/actors/{type}/{id}/method/{method}</c> callback, and the app's status.</summary>
public sealed record ActorCallRecord(string Type, string Id, string Method, int Status);

public sealed record Reminder(string Key, string Type, string Id, string Name, string DueTime, string? Period, TimeSpan PeriodValue, JsonNode? Data, DateTimeOffset DueAt);

public sealed class RecordedRequest(string method, string path, string query, IReadOnlyDictionary<string, string> headers, byte[] body)
{
    public string Method { get; } = method;
    public string Path { get; } = path;
    public string Query { get; } = query;
    public IReadOnlyDictionary<string, string> Headers { get; } = headers;
    public byte[] Body { get; } = body;
    public string? Response { get; set; }

    public string? Header(string name) => Headers.TryGetValue(name, out var value) && value.Length > 0 ? value : null;

    public JsonNode? Json() => Body.Length == 0 ? null : JsonNode.Parse(Body);
}
