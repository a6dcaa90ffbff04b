using CloudMemory.BuildingBlocks.State;
using CloudMemory.Conversations.Log;
using CloudMemory.Conversations.Text;
using CloudMemory.Dapr.Tests.FakeSidecar;
using CloudMemory.Session.Tests.Log;
using Dapr.Client.Autogen.Grpc.v1;

namespace CloudMemory.Dapr.Tests.Log;

/// <summary>
/// The message log over the Dapr state store (Dapr mode without PostgreSQL), through the official
/// DaprClient and the fake sidecar's generated gRPC surface: the same behavioural suite as the
/// in-memory and PostgreSQL logs, plus many writers on one conversation.
/// </summary>
public sealed class DaprStateStoreConversationLogTests : ConversationLogBehaviour, IAsyncLifetime
{
    private readonly List<(FakeDaprSidecar Sidecar, global::Dapr.Client.DaprClient Client)> _started = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var (sidecar, client) in _started)
        {
            client.Dispose();
            await sidecar.DisposeAsync();
            sidecar.AssertNoViolations();
        }
    }

    protected override async Task<IConversationLog> CreateAsync() => (await StartAsync()).Log;

    private async Task<(IConversationLog Log, FakeDaprSidecar Sidecar)> StartAsync()
    {
        var sidecar = await FakeDaprSidecar.StartAsync(new ManualTimeProvider(), DaprTestApp.SidecarToken);
        var client = sidecar.CreateClient();
        _started.Add((sidecar, client));
        return (new StateStoreConversationLog(new DaprStateStore(client), TimeProvider.System), sidecar);
    }

    [Fact]
    public async Task AppendTurn_64ConcurrentWritersOnOneConversation_EachTurnOnceInOneSequence()
    {
        var (log, sidecar) = await StartAsync();

        var results = await Task.WhenAll(Enumerable.Range(1, 64).Select(i => Task.Run(() =>
            log.AppendTurnAsync("t1", new TurnAppend("busy", $"turn-{i}", "u1", "agent", $"question {i} 头痛", $"answer {i}")))));

        results.Select(r => r.Message.Sequence).Should().BeEquivalentTo(Enumerable.Range(1, 64).Select(i => (long)i), "the header's ETag serializes the writers");
        results.Should().OnlyContain(r => !r.Duplicate);
        var stats = (await log.GetStatsAsync("t1", "busy"))!;
        stats.TurnCount.Should().Be(64);
        stats.LastSequence.Should().Be(64);
        var segment = await log.ReadSinceCheckpointAsync("t1", "busy");
        segment.Messages.Select(m => m.TurnId).Should().BeEquivalentTo(Enumerable.Range(1, 64).Select(i => $"turn-{i}"));
        segment.CountsMatchRows.Should().BeTrue();
        stats.HistoryUnits.Should().Be(TokenCounters.Create(TokenCounters.O200kBase).JoinedUnits(segment.Messages.Select(ConversationText.Render)));
        // Every append was one transaction: header (ETag or first-write), message and turn-id key together,
        // plus the tenant's and the user's conversation indexes when the append is the conversation's first.
        sidecar.GrpcRequests<ExecuteStateTransactionRequest>("ExecuteStateTransaction")
            .Should().OnlyContain(t => (t.Operations.Count == 3
                    || (t.Operations.Count == 5 && t.Operations[3].Request.Key == "cmtenant:t1" && t.Operations[4].Request.Key == "cmuser:t1:u1"))
                && t.Operations[0].Request.Key == "cmlog:t1:busy"
                && (t.Operations[0].Request.Etag != null || t.Operations[0].Request.Options.Concurrency == StateOptions.Types.StateConcurrency.ConcurrencyFirstWrite));
    }

    [Fact]
    public async Task Reads_AreBulkGetsOfTheKnownSequenceRange()
    {
        var (log, sidecar) = await StartAsync();
        for (var i = 1; i <= 5; i++)
        {
            await log.AppendTurnAsync("t1", new TurnAppend("c", null, "u1", "agent", $"q{i}", $"a{i}"));
        }

        var page = await log.ReadAsync("t1", "c", 1, 3);

        page.Select(m => m.Sequence).Should().Equal(2, 3, 4);
        sidecar.LastGrpc<GetBulkStateRequest>("GetBulkState").Keys.Should().Equal("cmlog:t1:c:m:2", "cmlog:t1:c:m:3", "cmlog:t1:c:m:4");
    }

    [Fact]
    public async Task Keys_EncodeIds_SoNoIdReachesAnotherTenantsKeysOrDaprsSeparator()
    {
        var (log, sidecar) = await StartAsync();
        await log.AppendTurnAsync("a:b", new TurnAppend("c||d", null, "u1", "agent", "q", "a"));

        (await log.GetStatsAsync("a", "b:c||d")).Should().BeNull();
        sidecar.StoredState("cmlog:a%3Ab:c%7C%7Cd").Should().NotBeNull();
    }
}
