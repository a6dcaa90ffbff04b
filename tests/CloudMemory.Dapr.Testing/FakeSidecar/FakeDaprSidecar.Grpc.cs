using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dapr.Client.Autogen.Grpc.v1;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using GrpcDapr = Dapr.Client.Autogen.Grpc.v1.Dapr;

namespace CloudMemory.Dapr.Tests.FakeSidecar;

/// <summary>
/// The gRPC half of the fake daprd: <see cref="GrpcDapr.DaprBase"/> is generated at build time by
/// protoc from the descriptors embedded in Dapr.Protos (see the test project file), so the wire
/// shapes are Dapr's own. Only state, bulk state, transactions and publish are implemented here (the
/// workflow engine is in <c>FakeDaprSidecar.Workflows.cs</c>); every other RPC answers Unimplemented
/// and is recorded as a violation of the test that caused it.
/// </summary>
public sealed partial class FakeDaprSidecar
{
    private readonly List<WebApplication> _grpcHosts = [];
    private readonly ConcurrentDictionary<string, Lazy<Task<Uri>>> _appGrpcAddresses = new(StringComparer.Ordinal);

    /// <summary>The gRPC API (DAPR_GRPC_ENDPOINT): state and publish.</summary>
    public Uri GrpcAddress { get; private set; } = null!;

    /// <summary>
    /// The gRPC API of the sidecar of app <paramref name="appId"/>. Each app has its own daprd: apps on
    /// one fake share state and pub/sub, but a workflow's work items go only to workers connected
    /// through the endpoint of the app that started it (a restarted app gets the same endpoint back).
    /// </summary>
    public Task<Uri> GrpcAddressForAsync(string appId) =>
        _appGrpcAddresses.GetOrAdd(appId, id => new Lazy<Task<Uri>>(() => StartGrpcEndpointAsync(id))).Value;

    /// <summary>Every gRPC call the fake received, in order, with the request message as decoded.</summary>
    public ConcurrentQueue<GrpcCall> GrpcCalls { get; } = new();

    /// <summary>Every request of <paramref name="method"/> (e.g. "GetState") received so far, in order.</summary>
    public IReadOnlyList<TRequest> GrpcRequests<TRequest>(string method) where TRequest : IMessage =>
        GrpcCalls.Where(c => c.Method == method).Select(c => (TRequest)c.Request).ToList();

    /// <summary>The last call of <paramref name="method"/> (e.g. "SaveState") and its request.</summary>
    public TRequest LastGrpc<TRequest>(string method) where TRequest : IMessage =>
        (TRequest)GrpcCalls.Last(c => c.Method == method).Request;

    /// <summary>An SDK client wired to this fake (HTTP and gRPC, with the API token), as the apps build theirs.</summary>
    public global::Dapr.Client.DaprClient CreateClient() =>
        new global::Dapr.Client.DaprClientBuilder()
            .UseHttpEndpoint(BaseAddress.ToString().TrimEnd('/'))
            .UseGrpcEndpoint(GrpcAddress.ToString().TrimEnd('/'))
            .UseDaprApiToken(ApiToken ?? "")
            .Build();

    private async Task StartGrpcAsync() => GrpcAddress = await StartGrpcEndpointAsync(appId: null);

    private async Task<Uri> StartGrpcEndpointAsync(string? appId)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http2));
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(this);
        builder.Services.AddSingleton(new SidecarOfApp(appId));
        builder.Services.AddGrpc(o => o.Interceptors.Add<StrictInterceptor>());
        var host = builder.Build();
        host.Use(async (context, next) =>
        {
            // Unknown services and methods are answered by Grpc.AspNetCore's catch-all endpoints.
            if (context.GetEndpoint()?.DisplayName is not { } name || name.Contains("Unimplemented", StringComparison.Ordinal))
            {
                Violation($"gRPC call {context.Request.Path} is not a service the fake sidecar implements");
            }
            await next(context);
        });
        host.MapGrpcService<DaprService>();
        host.MapGrpcService<TaskHubService>();
        await host.StartAsync();
        lock (_grpcHosts)
        {
            _grpcHosts.Add(host);
        }
        return AddressOf(host);
    }

    private async Task StopGrpcAsync()
    {
        List<WebApplication> hosts;
        lock (_grpcHosts)
        {
            hosts = [.. _grpcHosts];
        }
        foreach (var host in hosts)
        {
            await host.StopAsync();
            await host.DisposeAsync();
        }
    }

    /// <summary>Which app's sidecar a gRPC endpoint plays (null: the shared default endpoint).</summary>
    private sealed record SidecarOfApp(string? AppId);

    // ---------------------------------------------------------------- state

    private GetStateResponse GetState(GetStateRequest request)
    {
        CheckStore(request.StoreName);
        CheckKey(request.Key, "GetState");
        var response = new GetStateResponse();
        lock (_stateGate)
        {
            if (TryGetLive(request.Key, out var item))
            {
                // A missing key is an empty answer (no data, no ETag), not an error.
                response.Data = ByteString.CopyFromUtf8(item.Json);
                response.Etag = item.ETag.ToString(CultureInfo.InvariantCulture);
                if (item.ExpiresAt is { } expires)
                {
                    response.Metadata["ttlExpireTime"] = expires.ToString("O", CultureInfo.InvariantCulture);
                }
            }
        }
        return response;
    }

    private GetBulkStateResponse GetBulkState(GetBulkStateRequest request)
    {
        CheckStore(request.StoreName);
        Expect(request.Parallelism >= 0, "GetBulkState parallelism must not be negative");
        var response = new GetBulkStateResponse();
        lock (_stateGate)
        {
            // daprd fetches keys in parallel: the answer order is not the request order. Reverse it
            // so a client that relies on order fails here.
            foreach (var key in request.Keys.Reverse())
            {
                CheckKey(key, "GetBulkState");
                var entry = new BulkStateItem { Key = key };
                if (TryGetLive(key, out var item))
                {
                    entry.Data = ByteString.CopyFromUtf8(item.Json);
                    entry.Etag = item.ETag.ToString(CultureInfo.InvariantCulture);
                }
                response.Items.Add(entry);
            }
        }
        return response;
    }

    private Empty SaveState(SaveStateRequest request)
    {
        CheckStore(request.StoreName);
        var writes = request.States.Select(s => ParseWrite(s, "SaveState", upsert: true)).ToList();
        lock (_stateGate)
        {
            if (writes.Select(Conflict).FirstOrDefault(c => c is not null) is { } conflict)
            {
                // daprd: ERR_STATE_SAVE, and gRPC Aborted when the store reports an ETag mismatch.
                throw new RpcException(new Status(StatusCode.Aborted, $"failed saving state in state store {request.StoreName}: {conflict}"));
            }
            writes.ForEach(Apply);
        }
        return new Empty();
    }

    private Empty DeleteState(DeleteStateRequest request)
    {
        CheckStore(request.StoreName);
        var write = ParseWrite(new StateItem { Key = request.Key, Etag = request.Etag, Options = request.Options }, "DeleteState", upsert: false);
        lock (_stateGate)
        {
            if (Conflict(write) is { } conflict)
            {
                throw new RpcException(new Status(StatusCode.Aborted, $"failed deleting state with key {request.Key}: {conflict}"));
            }
            Apply(write);
        }
        return new Empty();
    }

    private Empty ExecuteStateTransaction(ExecuteStateTransactionRequest request)
    {
        CheckStore(request.StoreName);
        var writes = new List<WriteRequest>();
        foreach (var operation in request.Operations)
        {
            if (operation.OperationType is not ("upsert" or "delete"))
            {
                Violation($"transaction operation type '{operation.OperationType}' is not upsert|delete");
                throw new RpcException(new Status(StatusCode.InvalidArgument, $"operation type {operation.OperationType} not supported"));
            }
            if (operation.OperationType == "delete")
            {
                Expect(operation.Request.Value.IsEmpty, "a transaction delete carries no value");
            }
            writes.Add(ParseWrite(operation.Request, $"transaction {operation.OperationType}", upsert: operation.OperationType == "upsert"));
        }
        lock (_stateGate)
        {
            // The contract: any transaction failure, ETag conflicts included, is ERR_STATE_TRANSACTION (gRPC Internal).
            if (writes.Select(Conflict).FirstOrDefault(c => c is not null) is { } conflict)
            {
                throw new RpcException(new Status(StatusCode.Internal,
                    $"error while executing state transaction: possible etag mismatch. error from state store: {conflict}"));
            }
            writes.ForEach(Apply);
        }
        return new Empty();
    }

    private WriteRequest ParseWrite(StateItem item, string where, bool upsert)
    {
        CheckKey(item.Key, where);
        string? etag = null;
        if (item.Etag is { } e)
        {
            if (!long.TryParse(e.Value, NumberStyles.None, CultureInfo.InvariantCulture, out _))
            {
                Violation($"{where} '{item.Key}': etag '{e.Value}' is not one this store issued");
                throw new RpcException(new Status(StatusCode.InvalidArgument, "invalid etag value"));
            }
            etag = e.Value;
        }
        TimeSpan? ttl = null;
        foreach (var (name, value) in item.Metadata)
        {
            if (name != "ttlInSeconds")
            {
                Violation($"{where} '{item.Key}': metadata '{name}' is not one CloudMemory uses");
                continue;
            }
            if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
            {
                Violation($"{where} '{item.Key}': ttlInSeconds '{value}' must be an integer string");
                throw new RpcException(new Status(StatusCode.InvalidArgument, "invalid ttlInSeconds"));
            }
            ttl = TimeSpan.FromSeconds(seconds);
        }
        string? json = null;
        if (upsert)
        {
            try
            {
                json = JsonNode.Parse(item.Value.Span)?.ToJsonString() ?? "null";
            }
            catch (JsonException ex)
            {
                Violation($"{where} '{item.Key}': the value is not JSON ({ex.Message}); CloudMemory stores JSON");
                throw new RpcException(new Status(StatusCode.InvalidArgument, "value is not JSON"));
            }
        }
        var firstWrite = item.Options?.Concurrency == StateOptions.Types.StateConcurrency.ConcurrencyFirstWrite;
        return new WriteRequest(item.Key, json, etag, ttl, firstWrite, Delete: !upsert);
    }

    private void CheckStore(string store)
    {
        if (store != StoreName)
        {
            Violation($"state store '{store}' is not a component (components/ defines '{StoreName}')");
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"state store {store} is not found"));
        }
    }

    private void CheckKey(string key, string where)
    {
        if (string.IsNullOrEmpty(key) || key.Contains("||", StringComparison.Ordinal))
        {
            Violation($"{where} needs a key without '||' (got '{key}')");
            throw new RpcException(new Status(StatusCode.InvalidArgument, "bad key"));
        }
    }

    // ---------------------------------------------------------------- publish (§2.1)

    private Empty PublishEvent(PublishEventRequest request, ServerCallContext context)
    {
        if (request.PubsubName != PubSubName)
        {
            Violation($"pubsub '{request.PubsubName}' is not a component");
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"pubsub {request.PubsubName} is not found"));
        }
        foreach (var (name, _) in request.Metadata)
        {
            Violation($"publish metadata '{name}' is not one CloudMemory uses");
        }
        // CloudMemory sends its own envelope so the id is its own: the content type must say so.
        Expect(request.DataContentType.StartsWith("application/cloudevents+json", StringComparison.Ordinal),
            $"publish data content type was '{request.DataContentType}', expected application/cloudevents+json");
        JsonObject? envelope;
        try
        {
            envelope = JsonNode.Parse(request.Data.Span) as JsonObject;
        }
        catch (JsonException)
        {
            envelope = null;
        }
        if (!Expect(envelope is not null, "published CloudEvent must be a JSON object"))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "malformed CloudEvent"));
        }
        foreach (var required in new[] { "id", "source", "type", "specversion" })
        {
            Expect(envelope![required]?.GetValueKind() == JsonValueKind.String, $"CloudEvent attribute '{required}' must be a string");
        }
        Expect(envelope!["specversion"]?.GetValue<string>() == "1.0", "specversion must be 1.0");
        Expect(envelope.ContainsKey("data") || envelope.ContainsKey("data_base64"), "CloudEvent has no data");
        // Pass-through rules: daprd overwrites topic, pubsubname and trace context.
        envelope["topic"] = request.Topic;
        envelope["pubsubname"] = request.PubsubName;
        if (context.RequestHeaders.GetValue("traceparent") is { } traceparent)
        {
            envelope["traceparent"] = traceparent;
            envelope["traceid"] = traceparent;
        }
        StartDelivery(request.Topic, envelope);
        return new Empty();
    }

    /// <summary>The RPCs the fake implements; everything else falls through to the generated base (Unimplemented).</summary>
    private sealed class DaprService(FakeDaprSidecar fake) : GrpcDapr.DaprBase
    {
        public override Task<GetStateResponse> GetState(GetStateRequest request, ServerCallContext context) => Task.FromResult(fake.GetState(request));

        public override Task<GetBulkStateResponse> GetBulkState(GetBulkStateRequest request, ServerCallContext context) => Task.FromResult(fake.GetBulkState(request));

        public override Task<Empty> SaveState(SaveStateRequest request, ServerCallContext context) => Task.FromResult(fake.SaveState(request));

        public override Task<Empty> DeleteState(DeleteStateRequest request, ServerCallContext context) => Task.FromResult(fake.DeleteState(request));

        public override Task<Empty> ExecuteStateTransaction(ExecuteStateTransactionRequest request, ServerCallContext context) =>
            Task.FromResult(fake.ExecuteStateTransaction(request));

        public override Task<Empty> PublishEvent(PublishEventRequest request, ServerCallContext context) => Task.FromResult(fake.PublishEvent(request, context));
    }

    /// <summary>Checks the API token, records every call, and turns Unimplemented into a violation.</summary>
    private sealed class StrictInterceptor(FakeDaprSidecar fake) : Interceptor
    {
        public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
        {
            var method = context.Method[(context.Method.LastIndexOf('/') + 1)..];
            fake.GrpcCalls.Enqueue(new GrpcCall(method, (IMessage)request, context.RequestHeaders.GetValue("dapr-api-token"), context.RequestHeaders.GetValue("traceparent")));
            fake.CheckToken(context);
            try
            {
                return await continuation(request, context);
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Unimplemented)
            {
                fake.Violation($"gRPC {context.Method} is not implemented by the fake sidecar");
                throw;
            }
        }

        // The workflow work-item stream (GetWorkItems) is the one server-streaming RPC implemented.
        public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
        {
            var method = context.Method[(context.Method.LastIndexOf('/') + 1)..];
            fake.GrpcCalls.Enqueue(new GrpcCall(method, (IMessage)request, context.RequestHeaders.GetValue("dapr-api-token"), context.RequestHeaders.GetValue("traceparent")));
            fake.CheckToken(context);
            try
            {
                await continuation(request, responseStream, context);
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Unimplemented)
            {
                fake.Violation($"gRPC streaming {context.Method} is not implemented by the fake sidecar");
                throw;
            }
        }

        public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation) =>
            Refuse<TResponse>(context);

        public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation) =>
            Refuse(context);

        // No client- or bidirectional-streaming RPC is implemented (subscriptions go over HTTP deliveries).
        private Task<T> Refuse<T>(ServerCallContext context)
        {
            fake.Violation($"gRPC streaming {context.Method} is not implemented by the fake sidecar");
            throw new RpcException(new Status(StatusCode.Unimplemented, $"{context.Method} is not implemented by the fake sidecar"));
        }

        private Task Refuse(ServerCallContext context) => Refuse<object>(context);
    }

    private void CheckToken(ServerCallContext context)
    {
        if (ApiToken is not null && context.RequestHeaders.GetValue("dapr-api-token") != ApiToken)
        {
            Violation($"gRPC {context.Method} without the right dapr-api-token");
            throw new RpcException(new Status(StatusCode.Unauthenticated, "authentication error: api token mismatch"));
        }
    }
}

/// <summary>A gRPC call received by the fake sidecar.</summary>
public sealed record GrpcCall(string Method, IMessage Request, string? ApiToken, string? TraceParent);
