using System.Text.Json;
using CloudMemory.Security.Tests.Infrastructure;

namespace CloudMemory.Security.Tests.Robustness;

/// <summary>The OpenAPI document describes errors and identity headers, not only successes.</summary>
public sealed class OpenApiDocumentTests : IDisposable
{
    private readonly SecureHost _host = new(StoreKind.InMemory);

    public void Dispose() => _host.Dispose();

    [Fact]
    public async Task EveryOperation_HasOperationId_IdentityHeaders_AndProblemErrors()
    {
        using var http = _host.CreateClient();
        using var doc = JsonDocument.Parse(await http.GetStringAsync("/openapi/v1.json"));
        var root = doc.RootElement;
        root.GetProperty("components").GetProperty("schemas").TryGetProperty("ProblemDetails", out _).Should().BeTrue();
        var operationIds = new List<string>();
        var count = 0;
        foreach (var path in root.GetProperty("paths").EnumerateObject().Where(p => p.Name.StartsWith("/v1", StringComparison.Ordinal)))
        {
            foreach (var method in path.Value.EnumerateObject())
            {
                count++;
                var what = $"{method.Name} {path.Name}";
                var operation = method.Value;
                operation.TryGetProperty("operationId", out var id).Should().BeTrue(what);
                operationIds.Add(id.GetString()!);
                var headers = operation.GetProperty("parameters").EnumerateArray()
                    .Where(p => p.GetProperty("in").GetString() == "header")
                    .ToDictionary(p => p.GetProperty("name").GetString()!, p => p.TryGetProperty("required", out var r) && r.GetBoolean());
                headers.Keys.Should().Contain(["X-Tenant-Id", "X-Agent-Id", "Authorization"], what);
                var responses = operation.GetProperty("responses");
                foreach (var status in new[] { "400", "401", "403", "429", "500" })
                {
                    responses.TryGetProperty(status, out var response).Should().BeTrue($"{what} documents {status}");
                    response.GetProperty("content").GetProperty("application/problem+json").GetProperty("schema").GetProperty("$ref").GetString()
                        .Should().EndWith("/ProblemDetails", what);
                }
                if (what == "put /v1/sessions/{conversationId}")
                {
                    headers.Should().Contain("If-Match", true);
                    responses.TryGetProperty("428", out _).Should().BeTrue();
                }
            }
        }
        count.Should().BeGreaterThan(10);
        operationIds.Should().OnlyHaveUniqueItems();
    }
}
