using System.Net;
using System.Text.Json;
using CloudMemory.Contracts;
using CloudMemory.Dapr.Tests;
using CloudMemory.Session.Features.SharedContexts;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.SharedContexts.Tests;

/// <summary>The change stream (SSE, resume, gaps) and the democratic deadline reminder on the embedded host.</summary>
public sealed class EmbeddedStreamTests : IAsyncLifetime
{
    private EmbeddedHost _host = null!;

    public Task InitializeAsync()
    {
        _host = new EmbeddedHost();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private HttpClient Client => _host.Client;

    private async Task<string> CreateAsync(object body)
    {
        var response = await Client.SendAsync(HttpMethod.Post, "v1/shared-contexts", "triage", body);
        return (await response.ReadAsync<SharedContextAck>()).Id;
    }

    private Task<HttpResponseMessage> IncrementAsync(string id, string agent = "report") =>
        Client.SendAsync(HttpMethod.Patch, $"v1/shared-contexts/{id}", agent, new { baseVersion = 1, changes = new { n = new { increment = 1 } } });

    private static readonly object Counter = new
    {
        members = new object[] { new { agentId = "report", role = "write" }, new { agentId = "drug", role = "read" } },
        fields = new { n = new { value = 0, conflict = "counter" } },
    };

    [Fact]
    public async Task Sse_ResumesAfterLastEventId_ThenDeliversLiveChangesInOrder_ToMembersOnly()
    {
        var id = await CreateAsync(Counter);
        for (var i = 0; i < 3; i++)
        {
            (await IncrementAsync(id)).EnsureSuccessStatusCode(); // seq 2..4
        }
        await (await Client.SendAsync(HttpMethod.Get, $"v1/shared-contexts/{id}/changes", "stranger", headers: new Dictionary<string, string> { ["Accept"] = "text/event-stream" }))
            .ProblemAsync(403, "not-a-member");

        using var request = new HttpRequestMessage(HttpMethod.Get, $"v1/shared-contexts/{id}/changes");
        request.Headers.Add("X-Agent-Id", "drug");
        request.Headers.Add("Accept", "text/event-stream");
        request.Headers.Add("Last-Event-ID", "2");
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var response = await Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel.Token);
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        response.Content.Headers.ContentType!.MediaType.Should().Be("text/event-stream");
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancel.Token));

        var events = new List<(long Id, SharedContextChange Change)>();
        var writer = Task.Run(async () =>
        {
            for (var i = 0; i < 3; i++)
            {
                (await IncrementAsync(id)).EnsureSuccessStatusCode(); // seq 5..7, while the stream is open
            }
        });
        long? eventId = null;
        while (events.Count < 5)
        {
            var line = await reader.ReadLineAsync(cancel.Token) ?? throw new InvalidOperationException("the stream ended");
            if (line.StartsWith("id: ", StringComparison.Ordinal))
            {
                eventId = long.Parse(line[4..], System.Globalization.CultureInfo.InvariantCulture);
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                events.Add((eventId!.Value, JsonSerializer.Deserialize<SharedContextChange>(line[6..], ContractsJson.Options)!));
            }
        }
        await writer;

        events.Select(e => e.Id).Should().Equal(3, 4, 5, 6, 7);
        events.Select(e => e.Change.Seq).Should().Equal(3, 4, 5, 6, 7);
        events.Should().OnlyContain(e => e.Change.Kind == "updated" && e.Change.Author == "report");
    }

    [Fact]
    public async Task Follower_SeesAGapInSeq_AndFillsItFromTheStore()
    {
        var id = await CreateAsync(Counter);
        var store = _host.Services.GetRequiredService<SharedContextStore>();
        var privateFeed = new SharedContextFeed(); // hears only what this test hands it: the live notifications of seq 2 and 3 are "lost"
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var follower = SharedContextFollower.FollowAsync(store, privateFeed, "default", id, afterSeq: 1, poll: TimeSpan.FromHours(1), cancel.Token)
            .GetAsyncEnumerator(cancel.Token);
        var first = follower.MoveNextAsync(); // catches up (nothing after seq 1) and waits for live changes

        (await IncrementAsync(id)).EnsureSuccessStatusCode();
        (await IncrementAsync(id)).EnsureSuccessStatusCode();
        (await IncrementAsync(id)).EnsureSuccessStatusCode();
        var last = _host.Changes().Single(c => c.ContextId == id && c.Seq == 4);
        privateFeed.Publish(last); // seq 4 arrives after 1: 2 and 3 are missing

        var received = new List<long>();
        (await first).Should().BeTrue();
        received.Add(follower.Current.Seq);
        while (received.Count < 3 && await follower.MoveNextAsync())
        {
            received.Add(follower.Current.Seq);
        }
        received.Should().Equal(2, 3, 4);
        privateFeed.Publish(last); // a duplicate is skipped
        privateFeed.Publish(last with { Seq = 5, Kind = "updated" });
        (await follower.MoveNextAsync()).Should().BeTrue();
        follower.Current.Seq.Should().Be(5);
        await cancel.CancelAsync();
    }

    [Fact]
    public async Task Democratic_DeadlineReminder_DecidesWithoutAnyFurtherCall()
    {
        var id = await CreateAsync(new
        {
            mode = "democratic",
            members = new object[] { new { agentId = "report", role = "write" }, new { agentId = "drug", role = "write" } },
            fields = new { n = new { value = 0, conflict = "counter" } },
        });
        var proposal = await (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{id}/proposals", "report",
            new { baseVersion = 1, deadlineSeconds = 1, changes = new { n = new { increment = 5 } } })).ReadAsync<Proposal>();
        (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{id}/proposals/{proposal.ProposalId}/votes", "report", new { approve = true })).EnsureSuccessStatusCode();
        (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{id}/proposals/{proposal.ProposalId}/votes", "drug", new { approve = false })).EnsureSuccessStatusCode();
        // 2 of 3 voted (quorum 2), 1 for and 1 against: no majority when the deadline comes.

        await Wait.UntilAsync(() => _host.Changes().Any(c => c.ContextId == id && c.Kind == "proposal-decided"), "the deadline reminder to decide");

        var view = await (await Client.SendAsync(HttpMethod.Get, $"v1/shared-contexts/{id}", "drug")).ReadAsync<SharedContextView>();
        var decided = view.Proposals.Single();
        decided.Status.Should().Be("rejected");
        decided.Reason.Should().Be("no-majority");
        view.Fields["n"].Value.GetInt32().Should().Be(0);
    }
}

/// <summary>What the Dapr runtime adds: state in the sidecar's store, events through the sidecar, the deadline as a sidecar reminder.</summary>
public sealed class DaprRuntimeTests : IAsyncLifetime
{
    private DaprHost _host = null!;

    public async Task InitializeAsync() => _host = await DaprHost.StartAsync();

    public async Task DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task State_Events_AndDeadlineReminders_GoThroughTheSidecar()
    {
        var client = _host.Client;
        var sidecar = _host.App.Sidecar;
        var id = (await (await client.SendAsync(HttpMethod.Post, "v1/shared-contexts", "triage", new
        {
            mode = "democratic",
            members = new object[] { new { agentId = "report", role = "write" } },
            fields = new { n = new { value = 0, conflict = "counter" } },
        })).ReadAsync<SharedContextAck>()).Id;
        var proposal = await (await client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{id}/proposals", "report",
            new { baseVersion = 1, deadlineSeconds = 60, changes = new { n = new { increment = 2 } } })).ReadAsync<Proposal>();
        (await client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{id}/proposals/{proposal.ProposalId}/votes", "report", new { approve = true })).EnsureSuccessStatusCode();

        sidecar.StoredState(SharedContextStore.DocumentKey("default", id))!["seq"]!.GetValue<long>().Should().Be(3, "created, proposed, voted");
        sidecar.StoredState(SharedContextStore.ChangeKey("default", id, 2))!["kind"]!.GetValue<string>().Should().Be("proposed");
        sidecar.Reminders.Should().Contain(r => r.Type == nameof(SharedContextActor) && r.Name == "proposal:" + proposal.ProposalId);

        // The deadline passes: the sidecar fires the reminder; 1 of 2 voters for, quorum 1 reached, majority: applied.
        _host.Time.Advance(TimeSpan.FromSeconds(61));
        _host.SidecarClock.Advance(TimeSpan.FromSeconds(61)); // the sidecar's own clock decides when a reminder is due
        (await sidecar.FireDueRemindersAsync()).Should().BeGreaterThan(0);

        var doc = sidecar.StoredState(SharedContextStore.DocumentKey("default", id))!;
        doc["fields"]!["n"]!["value"]!.GetValue<int>().Should().Be(2);
        await Wait.UntilAsync(() => _host.Changes().Count(c => c.ContextId == id) == 5, "five shared-context-changed deliveries through the sidecar");
        _host.Changes().Where(c => c.ContextId == id).Select(c => c.Kind).Should().BeEquivalentTo(["created", "proposed", "voted", "updated", "proposal-decided"]);
        sidecar.GrpcRequests<global::Dapr.Client.Autogen.Grpc.v1.PublishEventRequest>("PublishEvent").Should().Contain(r => r.PubsubName == "pubsub" && r.Topic == SharedContextTopics.Changed);
        sidecar.AssertNoViolations();
    }
}
