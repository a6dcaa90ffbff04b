using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Polly;
using Polly.Retry;

namespace CloudMemory.Dapr;

/// <summary>
/// The hand-written HTTP connection to the sidecar's actor API (<c>/v1.0/actors/...</c>): base
/// address, <c>dapr-api-token</c>, W3C trace context, error decoding, and retries for the calls that
/// are safe to repeat. State, publish, invocation and health go through the official DaprClient; the
/// actors move to Dapr.Actors in separate work, and this class goes with them.
/// </summary>
public sealed class DaprSidecarClient : IDisposable
{
    /// <summary>The header carrying API tokens in both directions.</summary>
    public const string ApiTokenHeader = "dapr-api-token";

    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly ResiliencePipeline<HttpResponseMessage> _retry;

    /// <summary>Creates a client; <paramref name="http"/> is owned by the caller when given.</summary>
    public DaprSidecarClient(DaprOptions options, TimeProvider time, HttpClient? http = null)
    {
        Options = options;
        _ownsHttp = http is null;
        _http = http ?? new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
        {
            Timeout = Timeout.InfiniteTimeSpan, // callers pass cancellation; actor calls may legitimately run long
        };
        _retry = new ResiliencePipelineBuilder<HttpResponseMessage> { TimeProvider = time }
            .AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                MaxRetryAttempts = 3,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = TimeSpan.FromMilliseconds(100),
                ShouldHandle = new PredicateBuilder<HttpResponseMessage>()
                    .Handle<HttpRequestException>()
                    .HandleResult(r => r.StatusCode is HttpStatusCode.TooManyRequests or HttpStatusCode.BadGateway
                        or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout),
                OnRetry = args =>
                {
                    args.Outcome.Result?.Dispose();
                    return default;
                },
            })
            .Build();
    }

    /// <summary>The settings in use.</summary>
    public DaprOptions Options { get; }

    /// <summary>JSON for sidecar bodies (<see cref="DaprJson.Options"/>).</summary>
    public static JsonSerializerOptions Json => DaprJson.Options;

    /// <summary>
    /// Sends a request built by <paramref name="build"/>. Only <paramref name="idempotent"/> calls are
    /// retried: repeating anything else could apply it twice or turn a lost success into a false conflict.
    /// </summary>
    public async Task<HttpResponseMessage> SendAsync(Func<HttpRequestMessage> build, bool idempotent, CancellationToken cancellationToken)
    {
        if (!idempotent)
        {
            using var request = Prepare(build());
            return await TracedSendAsync(request, cancellationToken);
        }
        return await _retry.ExecuteAsync(static async (state, ct) =>
        {
            using var request = state.Self.Prepare(state.Build());
            return await state.Self.TracedSendAsync(request, ct);
        }, (Self: this, Build: build), cancellationToken);
    }

    private async Task<HttpResponseMessage> TracedSendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        // The span name keeps the API area (state, publish, actors, invoke), not keys or ids.
        var area = request.RequestUri?.Segments.Length > 2 ? request.RequestUri.Segments[2].TrimEnd('/') : "sidecar";
        using var activity = DaprTelemetry.Source.StartActivity($"dapr {request.Method} {area}", ActivityKind.Client);
        var start = Stopwatch.GetTimestamp();
        var status = 0;
        try
        {
            var response = await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken);
            status = (int)response.StatusCode;
            activity?.SetTag("http.response.status_code", status);
            return response;
        }
        catch (Exception ex)
        {
            activity?.SetStatus(ActivityStatusCode.Error, ex.Message);
            throw;
        }
        finally
        {
            DaprTelemetry.CallDuration.Record(Stopwatch.GetElapsedTime(start).TotalMilliseconds,
                new KeyValuePair<string, object?>("dapr.api", area), new KeyValuePair<string, object?>("http.response.status_code", status));
        }
    }

    /// <summary>An absolute sidecar URI for a relative path such as <c>v1.0/state/statestore</c>.</summary>
    public Uri Uri(string relative) => new(Options.HttpEndpoint, relative);

    /// <summary>Throws <see cref="DaprApiException"/> for a non-success answer.</summary>
    public static async Task EnsureSuccessAsync(HttpResponseMessage response, string operation, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }
        throw await DaprApiException.FromResponseAsync(response, operation, cancellationToken);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsHttp)
        {
            _http.Dispose();
        }
    }

    private HttpRequestMessage Prepare(HttpRequestMessage request)
    {
        if (Options.ApiToken is { } token)
        {
            request.Headers.Remove(ApiTokenHeader);
            request.Headers.TryAddWithoutValidation(ApiTokenHeader, token);
        }
        // daprd continues the caller's trace when traceparent is present; HttpClient's own
        // propagation only runs with a listener, so set it explicitly.
        if (Activity.Current is { IdFormat: ActivityIdFormat.W3C } activity && !request.Headers.Contains("traceparent"))
        {
            request.Headers.TryAddWithoutValidation("traceparent", activity.Id);
            if (!string.IsNullOrEmpty(activity.TraceStateString))
            {
                request.Headers.TryAddWithoutValidation("tracestate", activity.TraceStateString);
            }
        }
        return request;
    }

}

/// <summary>A non-success answer of the sidecar, with daprd's <c>errorCode</c> when it sent one.</summary>
public sealed class DaprApiException(HttpStatusCode statusCode, string? errorCode, string daprMessage, string operation)
    : Exception($"{operation} failed: {(int)statusCode} {errorCode} {daprMessage}")
{
    /// <summary>HTTP status of the answer.</summary>
    public HttpStatusCode StatusCode { get; } = statusCode;

    /// <summary>daprd's error code, e.g. ERR_STATE_SAVE.</summary>
    public string? ErrorCode { get; } = errorCode;

    /// <summary>daprd's message (or the raw body when it was not daprd's error shape).</summary>
    public string DaprMessage { get; } = daprMessage;

    /// <summary>Decodes <c>{"errorCode","message"}</c> from an answer.</summary>
    public static async Task<DaprApiException> FromResponseAsync(HttpResponseMessage response, string operation, CancellationToken cancellationToken)
    {
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        string? code = null;
        var message = body;
        try
        {
            using var doc = JsonDocument.Parse(body);
            if (doc.RootElement.ValueKind == JsonValueKind.Object)
            {
                if (doc.RootElement.TryGetProperty("errorCode", out var c) && c.ValueKind == JsonValueKind.String)
                {
                    code = c.GetString();
                }
                if (doc.RootElement.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String)
                {
                    message = m.GetString() ?? body;
                }
            }
        }
        catch (JsonException)
        {
            // not daprd's error shape (e.g. an app's answer passed through): keep the raw body
        }
        return new DaprApiException(response.StatusCode, code, message, operation);
    }
}
