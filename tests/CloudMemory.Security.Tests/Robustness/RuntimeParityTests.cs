using System.Text.Json;
using CloudMemory.Security.Tests.Infrastructure;

namespace CloudMemory.Security.Tests.Robustness;

/// <summary>
/// The two runtimes serve the same public API: the four Dapr apps' OpenAPI documents together list
/// exactly the embedded host's operations (the event stream included: the session app serves it from
/// its deliveries), each operation once and with the same operationId.
/// </summary>
public sealed class RuntimeParityTests
{
    [Fact]
    public async Task DaprApps_TogetherServe_TheEmbeddedHostsOperations_EachOnce()
    {
        await using var embedded = await SuiteHosts.StartAsync(RuntimeKind.Embedded, StoreKind.InMemory, new Dictionary<string, string?>());
        await using var dapr = await SuiteHosts.StartAsync(RuntimeKind.Dapr, StoreKind.InMemory, new Dictionary<string, string?>());

        var embeddedOperations = Operations(await embedded.OpenApiDocumentsAsync());
        var daprOperations = Operations(await dapr.OpenApiDocumentsAsync());

        embeddedOperations.Should().Contain(("get /v1/events", "StreamEvents"));
        // The API key operations are served by every app (each one checks credentials), the rest by exactly one.
        daprOperations.Where(o => !o.Operation.Contains("/v1/auth/keys", StringComparison.Ordinal))
            .Should().OnlyHaveUniqueItems(o => o.Operation, "an operation is owned by one app");
        daprOperations.Distinct().Should().BeEquivalentTo(embeddedOperations);
    }

    [Fact]
    public async Task EveryOperation_IsRoutedToTheAppWhoseDocumentListsIt()
    {
        await using var dapr = await DaprAppsHost.StartAsync(StoreKind.InMemory, new Dictionary<string, string?>());
        var checkedOperations = 0;
        foreach (var (appId, appBase) in dapr.Apps)
        {
            using var http = new HttpClient { BaseAddress = appBase };
            using var doc = JsonDocument.Parse(await http.GetStringAsync("openapi/v1.json"));
            foreach (var path in doc.RootElement.GetProperty("paths").EnumerateObject().Where(p => p.Name.StartsWith("/v1", StringComparison.Ordinal) && !p.Name.StartsWith("/v1/auth/keys", StringComparison.Ordinal)))
            {
                var concrete = System.Text.RegularExpressions.Regex.Replace(path.Name, "\\{[^}]+\\}", "some-id");
                foreach (var method in path.Value.EnumerateObject())
                {
                    dapr.AppFor(method.Name.ToUpperInvariant(), concrete).Should().Be(appBase, $"{method.Name} {path.Name} is served by {appId}");
                    checkedOperations++;
                }
            }
        }
        checkedOperations.Should().BeGreaterThan(50);
    }

    private static List<(string Operation, string? OperationId)> Operations(IReadOnlyList<JsonDocument> documents)
    {
        var operations = new List<(string, string?)>();
        foreach (var doc in documents)
        {
            using (doc)
            {
                foreach (var path in doc.RootElement.GetProperty("paths").EnumerateObject().Where(p => p.Name.StartsWith("/v1", StringComparison.Ordinal)))
                {
                    foreach (var method in path.Value.EnumerateObject())
                    {
                        operations.Add(($"{method.Name} {path.Name}", method.Value.TryGetProperty("operationId", out var id) ? id.GetString() : null));
                    }
                }
            }
        }
        return operations;
    }
}
