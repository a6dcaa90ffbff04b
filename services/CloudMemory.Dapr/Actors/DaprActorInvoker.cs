using System.Net.Http.Headers;
using System.Text.Json;
using CloudMemory.BuildingBlocks.Actors;
using CloudMemory.Contracts;

namespace CloudMemory.Dapr.Actors;

/// <summary>
/// <see cref="IActorInvoker"/> over <c>PUT /v1.0/actors/{type}/{id}/method/{method}</c>. Never
/// retried: an actor method is not known to be idempotent.
/// </summary>
public sealed class DaprActorInvoker(DaprSidecarClient sidecar) : IActorInvoker
{
    private static readonly MediaTypeHeaderValue JsonMediaType = new("application/json");

    /// <inheritdoc />
    public async Task<TResponse> InvokeMethodAsync<TRequest, TResponse>(string actorType, string actorId, string method, TRequest request, CancellationToken cancellationToken = default)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(request, ContractsJson.Options);
        var uri = sidecar.Uri($"v1.0/actors/{Uri.EscapeDataString(actorType)}/{Uri.EscapeDataString(actorId)}/method/{Uri.EscapeDataString(method)}");
        using var response = await sidecar.SendAsync(() =>
        {
            var content = new ByteArrayContent(body);
            content.Headers.ContentType = JsonMediaType;
            return new HttpRequestMessage(HttpMethod.Put, uri) { Content = content };
        }, idempotent: false, cancellationToken);
        var result = await response.Content.ReadAsByteArrayAsync(cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            // The hosting app's status and body come back as they are; the host writes the actor's error message.
            var error = await DaprApiException.FromResponseAsync(new HttpResponseMessage(response.StatusCode) { Content = new ByteArrayContent(result) },
                $"actor call {actorType}/{actorId}.{method}", cancellationToken);
            throw new ActorMethodException(error.Message, error);
        }
        return result.Length == 0 ? default! : JsonSerializer.Deserialize<TResponse>(result, ContractsJson.Options)!;
    }
}
