using System.Net;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Security.Tests.Infrastructure;

namespace CloudMemory.Security.Tests.Robustness;

/// <summary>
/// Dapr mode: when the sidecar goes away, reads and writes that need it answer 503
/// <c>sidecar-unavailable</c> problem details with Retry-After (a dependency outage), not 500.
/// </summary>
public sealed class SidecarOutageTests
{
    [Fact]
    public async Task SidecarGone_RequestsThatNeedIt_Answer503ProblemWithRetryAfter()
    {
        await using var host = await DaprAppsHost.StartAsync(StoreKind.InMemory, new Dictionary<string, string?>());
        using var http = host.CreateClient();
        var tenant = SecureHost.NewId("t");
        var conversation = SecureHost.NewId("c");
        (await http.SendAsync(Http.Request(HttpMethod.Post, "/v1/sessions", new CreateSessionRequest(conversation, "user-1"), tenant))).StatusCode.Should().Be(HttpStatusCode.Created);
        await host.WhenQuietAsync();

        await host.StopSidecarAsync();

        // session (actor call over the sidecar's HTTP API), context (state-store log over gRPC), session write.
        foreach (var request in new[]
        {
            Http.Request(HttpMethod.Get, $"/v1/sessions/{conversation}", tenant: tenant),
            Http.Request(HttpMethod.Get, $"/v1/conversations/{conversation}/messages", tenant: tenant),
            Http.Request(HttpMethod.Post, $"/v1/sessions/{conversation}/turns", new WriteTurnRequest(null, "triage", "Still there?", "Yes."), tenant),
        })
        {
            var what = $"{request.Method} {request.RequestUri}";
            using var response = await http.SendAsync(request);
            (await response.ProblemCodeAsync(503)).Should().Be("sidecar-unavailable", what);
            response.Headers.RetryAfter.Should().NotBeNull(what);
        }
    }
}
