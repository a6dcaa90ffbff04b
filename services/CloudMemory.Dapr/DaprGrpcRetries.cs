using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Net.Client.Configuration;

namespace CloudMemory.Dapr;

/// <summary>
/// gRPC retries of the calls to the sidecar that are safe to repeat: reads, and publish (the same
/// envelope with the same id, which subscribers deduplicate). Writes are never retried here: with an
/// ETag or first-write, a retry after a lost success would report a false conflict.
/// </summary>
public static class DaprGrpcRetries
{
    private const string Service = "dapr.proto.runtime.v1.Dapr";

    /// <summary>Channel options with the retry policy (3 attempts, exponential backoff, on Unavailable).</summary>
    public static GrpcChannelOptions ChannelOptions() => new()
    {
        ServiceConfig = new ServiceConfig
        {
            MethodConfigs =
            {
                new MethodConfig
                {
                    Names =
                    {
                        new MethodName { Service = Service, Method = "GetState" },
                        new MethodName { Service = Service, Method = "GetBulkState" },
                        new MethodName { Service = Service, Method = "PublishEvent" },
                    },
                    RetryPolicy = new RetryPolicy
                    {
                        MaxAttempts = 3,
                        InitialBackoff = TimeSpan.FromMilliseconds(100),
                        MaxBackoff = TimeSpan.FromSeconds(1),
                        BackoffMultiplier = 2,
                        RetryableStatusCodes = { StatusCode.Unavailable },
                    },
                },
            },
        },
    };
}
