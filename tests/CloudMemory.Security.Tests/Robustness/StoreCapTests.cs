using System.Net;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Security.Tests.Infrastructure;

namespace CloudMemory.Security.Tests.Robustness;

/// <summary>The embedded in-memory message log is bounded: past its cap a write is a clear 507 and changes nothing.</summary>
public sealed class StoreCapTests
{
    [Fact]
    public async Task InMemoryLog_PastItsCap_Answers507StoreFull_AndKeepsTheSession()
    {
        using var host = new SecureHost(StoreKind.InMemory, new Dictionary<string, string?>
        {
            ["CloudMemory:Embedded:MaxLogMegabytes"] = "1",
            ["CloudMemory:Memory:AutoCheckpoint"] = "false",
        });
        using var http = host.CreateClient();
        var id = SecureHost.NewId("c");
        (await http.SendAsync(Http.Request(HttpMethod.Post, "/v1/sessions", new CreateSessionRequest(id, "u")))).StatusCode.Should().Be(HttpStatusCode.Created);
        var text = new string('x', 100_000); // ~200 KB held per turn (UTF-16)

        HttpResponseMessage? refused = null;
        var accepted = 0;
        for (var i = 0; i < 20 && refused is null; i++)
        {
            var response = await http.SendAsync(Http.Request(HttpMethod.Post, $"/v1/sessions/{id}/turns", new WriteTurnRequest(null, "triage", text, "ok")));
            if (response.StatusCode == HttpStatusCode.OK)
            {
                accepted++;
            }
            else
            {
                refused = response;
            }
        }
        refused.Should().NotBeNull();
        accepted.Should().BeInRange(3, 6);
        (await refused!.ProblemCodeAsync(507)).Should().Be("store-full");
        var session = await (await http.GetAsync($"/v1/sessions/{id}")).ReadAsync<SessionValue>();
        session.FlowContext.TurnCount.Should().Be(accepted);
    }
}
