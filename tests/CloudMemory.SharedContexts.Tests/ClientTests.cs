using System.Net;
using CloudMemory.Client;

namespace CloudMemory.SharedContexts.Tests;

/// <summary>The .NET client against the embedded host: the worked example of docs/shared-contexts.md in short.</summary>
public sealed class ClientTests : IAsyncLifetime
{
    private EmbeddedHost _host = null!;

    public Task InitializeAsync()
    {
        _host = new EmbeddedHost();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private SharedContextsClient As(string agent) => new(_host.Client, new CloudMemoryClientOptions { AgentId = agent });

    [Fact]
    public async Task TriageReportAndDrugAgents_ShareOneContext_ThroughTheClient()
    {
        var triage = As("triage");
        var report = As("report");
        var drug = As("drug");
        var ack = await triage.CreateAsync(new
        {
            members = new object[] { new { agentId = "report", role = "write", fields = new[] { "diagnosis", "notes" } }, new { agentId = "drug", role = "write" } },
            fields = new
            {
                diagnosis = new { value = "", conflict = "reject", schema = new { type = "string", maxLength = 200 } },
                allergies = new { value = new[] { "penicillin" }, conflict = "set-union", appendOnly = true },
                notes = new { value = Array.Empty<string>(), conflict = "append" },
            },
        });
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var followed = new List<SharedContextChangeEntry>();
        var following = Task.Run(async () =>
        {
            await foreach (var change in drug.FollowAsync(ack.Id, afterSeq: 1, cancel.Token))
            {
                followed.Add(change);
                if (followed.Count == 3)
                {
                    return;
                }
            }
        });

        var diagnosed = await report.UpdateAsync(ack.Id, 1, new { diagnosis = new { set = "influenza A" }, notes = new { add = "fever 39C for 2 days" } }, stepId: "report-1");
        var stale = await drug.TryUpdateAsync(ack.Id, 1, new { diagnosis = new { set = "common cold" } });
        await drug.UpdateAsync(ack.Id, diagnosed.Version, new { allergies = new { add = "sulfa" } });
        var refused = () => report.UpdateAsync(ack.Id, diagnosed.Version, new { allergies = new { add = "x" } });
        await triage.UpdateAsync(ack.Id, 3, new { notes = new { add = "oseltamivir advised; no penicillin, no sulfa" } });
        await following.WaitAsync(cancel.Token);

        stale.Accepted.Should().BeFalse();
        stale.Status.Should().Be(HttpStatusCode.Conflict);
        stale.Code.Should().Be("version-conflict");
        stale.Problem!.Value.GetProperty("currentValue").GetString().Should().Be("influenza A");
        (await refused.Should().ThrowAsync<CloudMemoryException>()).Which.Code.Should().Be("field-forbidden");
        followed.Select(c => c.Seq).Should().Equal(2, 3, 4);
        followed.Select(c => c.Author).Should().Equal("report", "drug", "triage");
        var view = await drug.GetAsync(ack.Id);
        view.Fields["allergies"].Value.EnumerateArray().Select(e => e.GetString()).Should().Equal("penicillin", "sulfa");
        view.Version.Should().Be(4);
        (await drug.GetAsync(ack.Id, version: 2)).Fields["allergies"].Value.GetArrayLength().Should().Be(1);
        (await drug.GetChangesAsync(ack.Id)).Changes.Select(c => c.Kind).Should().Equal("created", "updated", "updated", "updated");
    }
}
