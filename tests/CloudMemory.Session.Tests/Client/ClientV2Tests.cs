using CloudMemory.Client;
using CloudMemory.Contracts.Erasure;
using CloudMemory.Session.Tests.Infrastructure;

namespace CloudMemory.Session.Tests.Client;

/// <summary>The client's long-term memory, listing, deletion, erasure and event-stream calls against the embedded host.</summary>
public sealed class ClientV2Tests : IDisposable
{
    private readonly CloudMemoryFactory _factory = new(LogKind.InMemory);

    public void Dispose() => _factory.Dispose();

    private CloudMemoryClient NewClient(string tenant)
    {
        var http = _factory.CreateClient();
        return new CloudMemoryClient(http, new CloudMemoryClientOptions { BaseAddress = http.BaseAddress, TenantId = tenant });
    }

    [Fact]
    public async Task LongTermMemory_CreateReadUpdateListSearchDelete()
    {
        var client = NewClient("mem-tenant");

        var created = await client.CreateMemoryAsync("The patient is allergic to penicillin", type: "semantic", id: "m-1", userId: "u1", tags: ["allergy"]);
        created.GetProperty("id").GetString().Should().Be("m-1");
        (await client.GetMemoryAsync("m-1"))!.Value.GetProperty("content").GetString().Should().Contain("penicillin");
        (await client.UpdateMemoryAsync("m-1", new { content = "The patient is allergic to penicillin and aspirin" })).GetProperty("content").GetString().Should().Contain("aspirin");
        (await client.ListMemoriesAsync(userId: "u1")).GetProperty("items").GetArrayLength().Should().Be(1);
        (await client.ListMemoriesAsync(userId: "u2")).GetProperty("items").GetArrayLength().Should().Be(0);
        var hits = await client.SearchMemoriesAsync(new { query = "aspirin allergy", topK = 3 });
        hits.GetRawText().Should().Contain("m-1");

        (await client.DeleteMemoryAsync("m-1")).Should().BeTrue();
        (await client.DeleteMemoryAsync("m-1")).Should().BeFalse();
        (await client.GetMemoryAsync("m-1")).Should().BeNull();
    }

    [Fact]
    public async Task Sessions_ListDeleteAndEraseThroughTheClient()
    {
        var client = NewClient("erase-tenant");
        foreach (var id in new[] { "s1", "s2", "s3" })
        {
            await client.CreateShortMemoryAsync(id, "u1");
            _factory.Time.Advance(TimeSpan.FromSeconds(1));
            await client.WriteTurnAsync(id, "hello " + id, "hi");
        }

        var page = await client.ListUserSessionsAsync("u1", limit: 2);
        page.Items.Select(s => s.ConversationId).Should().Equal("s3", "s2");
        var all = new List<string>();
        await foreach (var s in client.ListAllUserSessionsAsync("u1"))
        {
            all.Add(s.ConversationId);
        }
        all.Should().Equal("s3", "s2", "s1");

        (await client.DeleteSessionAsync("s3")).Should().BeTrue();
        (await client.DeleteSessionAsync("s3")).Should().BeFalse();
        var report = await client.EraseUserAsync("u1");
        report.Counts[ErasureCountKeys.Conversations].Should().Be(2);
        (await client.ListUserSessionsAsync("u1")).Items.Should().BeEmpty();
    }

    [Fact]
    public async Task FollowEvents_ResumesFromALastEventId()
    {
        var client = NewClient("events-tenant");
        await client.CreateShortMemoryAsync("c1", "u1");
        await client.WriteTurnAsync("c1", "q1", "a1");
        await client.WriteTurnAsync("c1", "q2", "a2");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));

        string firstId;
        await using (var first = client.FollowEventsAsync(["turn-written"], lastEventId: "unknown-id", cancellationToken: cts.Token).GetAsyncEnumerator(cts.Token))
        {
            (await first.MoveNextAsync()).Should().BeTrue();
            first.Current.Data.GetProperty("userQuery").GetString().Should().Be("q1", "an unknown id replays what is kept");
            firstId = first.Current.Id;
        }

        await using var resumed = client.FollowEventsAsync(["turn-written"], conversationId: "c1", lastEventId: firstId, cancellationToken: cts.Token).GetAsyncEnumerator(cts.Token);
        (await resumed.MoveNextAsync()).Should().BeTrue();
        resumed.Current.Data.GetProperty("userQuery").GetString().Should().Be("q2");
        resumed.Current.Type.Should().Be("cloudmemory.turn.written.v1");
        await client.WriteTurnAsync("c1", "q3", "a3");
        (await resumed.MoveNextAsync()).Should().BeTrue();
        resumed.Current.Data.GetProperty("userQuery").GetString().Should().Be("q3");
    }
}
