using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Events;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Session.Tests.Infrastructure;

namespace CloudMemory.Compression.Tests;

/// <summary>Session snapshots over HTTP on the embedded host; run on the in-memory and the PostgreSQL message log.</summary>
public abstract class SnapshotBehaviour(LogKind kind) : IDisposable
{
    private readonly CloudMemoryFactory _factory = new(kind, new Dictionary<string, string?>
    {
        ["CloudMemory:Session:MaxSnapshots"] = "2",
        ["CloudMemory:Memory:AutoCheckpoint"] = "false",
    });

    public void Dispose()
    {
        _factory.Dispose();
        GC.SuppressFinalize(this);
    }

    private HttpClient Client(string? tenant = null)
    {
        var client = _factory.CreateRecordingClient();
        if (tenant is not null)
        {
            client.DefaultRequestHeaders.Add("X-Tenant-Id", tenant);
        }
        return client;
    }

    private static string NewId() => "snap-" + Guid.NewGuid().ToString("N")[..10];

    private static async Task<SessionValue> StartAsync(HttpClient client, string id, int turns)
    {
        (await client.PostAsJsonAsync("v1/sessions", new CreateSessionRequest(id, "patient-1"), ContractsJson.Options)).EnsureSuccessStatusCode();
        for (var i = 1; i <= turns; i++)
        {
            await TurnAsync(client, id, i);
        }
        return await (await client.GetAsync($"v1/sessions/{id}")).ReadAsync<SessionValue>();
    }

    private static async Task TurnAsync(HttpClient client, string id, int i) =>
        (await client.PostAsJsonAsync($"v1/sessions/{id}/turns", new WriteTurnRequest(null, "triage", $"Turn {i}: my knee hurts since {i} days.", $"Answer {i}: rest it."),
            ContractsJson.Options)).EnsureSuccessStatusCode();

    private static async Task<SessionValue> SetAsync(HttpClient client, string id, Action<SessionValue> change)
    {
        var get = await client.GetAsync($"v1/sessions/{id}");
        var session = await get.ReadAsync<SessionValue>();
        change(session);
        var put = new HttpRequestMessage(HttpMethod.Put, $"v1/sessions/{id}") { Content = JsonContent.Create(session, options: ContractsJson.Options) };
        put.Headers.TryAddWithoutValidation("If-Match", get.Headers.ETag!.Tag);
        return await (await client.SendAsync(put)).ReadAsync<SessionValue>();
    }

    private static async Task<SnapshotHandle> SnapshotAsync(HttpClient client, string id, string? label = null)
    {
        var response = await client.PostAsJsonAsync($"v1/sessions/{id}/snapshots", new CreateSnapshotRequest(label), ContractsJson.Options);
        response.StatusCode.Should().Be(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return await response.ReadAsync<SnapshotHandle>();
    }

    private static string Json<T>(T value) => JsonSerializer.Serialize(value, ContractsJson.Options);

    // Everything but the bookkeeping a restore must change (a new version, the time of the change).
    private static string Comparable(SessionValue session)
    {
        var copy = session.DeepCopy();
        copy.Meta.Version = 0;
        copy.Meta.UpdatedAt = 0;
        return Json(copy);
    }

    [Fact]
    public async Task Restore_AfterLaterTurnsAndChanges_ReturnsTheExactEarlierSession()
    {
        var client = Client();
        var id = NewId();
        await StartAsync(client, id, 2);
        await SetAsync(client, id, s => s.GlobalState.CurrentIntent = "triage");
        var before = await (await client.GetAsync($"v1/sessions/{id}")).ReadAsync<SessionValue>();
        var handle = await SnapshotAsync(client, id, "before booking");

        await TurnAsync(client, id, 3);
        var changed = await SetAsync(client, id, s => s.GlobalState.CurrentIntent = "book_ticket");
        var response = await client.PostAsJsonAsync($"v1/sessions/{id}/snapshots/{handle.SnapshotId}/restore", new RestoreSnapshotRequest(), ContractsJson.Options);
        var restored = await response.ReadAsync<RestoreResult>();
        var after = await (await client.GetAsync($"v1/sessions/{id}")).ReadAsync<SessionValue>();

        handle.Version.Should().Be(before.Meta.Version);
        restored.RestoredFromVersion.Should().Be(before.Meta.Version);
        restored.Version.Should().BeGreaterThan(changed.Meta.Version, "versions never go back, so a stale If-Match stays stale");
        response.Headers.ETag!.Tag.Should().Be($"\"{restored.Version}\"");
        Comparable(after).Should().Be(Comparable(before));
        after.GlobalState.CurrentIntent.Should().Be("triage");
        after.FlowContext.TurnCount.Should().Be(2);
        after.Meta.Version.Should().Be(restored.Version);
        _factory.EventsOfType(EventTypes.SessionRestored).Should().ContainSingle().Which.Data.GetProperty("snapshotId").GetString().Should().Be(handle.SnapshotId);
        _factory.EventsOfType(EventTypes.SnapshotCreated).Should().ContainSingle();
    }

    [Fact]
    public async Task Snapshots_BeyondMaxSnapshots_AreStoredCompressedAndReadBackIdentical()
    {
        var client = Client();
        var id = NewId();
        await StartAsync(client, id, 1);
        var handles = new List<SnapshotHandle>();
        var firstReads = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            await TurnAsync(client, id, 10 + i);
            handles.Add(await SnapshotAsync(client, id, $"s{i}"));
            firstReads.Add(Json((await (await client.GetAsync($"v1/sessions/{id}/snapshots/{handles[^1].SnapshotId}")).ReadAsync<SessionSnapshot>()) with { Compressed = false }));
        }

        var list = await (await client.GetAsync($"v1/sessions/{id}/snapshots")).ReadAsync<SnapshotList>();

        list.Snapshots.Select(s => s.SnapshotId).Should().Equal(handles.Select(h => h.SnapshotId).Reverse(), "newest first");
        list.Snapshots.Select(s => s.Compressed).Should().Equal(false, false, true, true);
        list.Snapshots.Where(s => s.Compressed).Should().OnlyContain(s => s.StoredBytes < s.RawBytes);
        for (var i = 0; i < 4; i++)
        {
            var read = await (await client.GetAsync($"v1/sessions/{id}/snapshots/{handles[i].SnapshotId}")).ReadAsync<SessionSnapshot>();
            read.Compressed.Should().Be(i < 2);
            Json(read with { Compressed = false }).Should().Be(firstReads[i]);
        }
        var restored = await (await client.PostAsJsonAsync($"v1/sessions/{id}/snapshots/{handles[0].SnapshotId}/restore", new RestoreSnapshotRequest(), ContractsJson.Options))
            .ReadAsync<RestoreResult>();
        restored.Session.GlobalState.Should().NotBeNull();
        restored.Session.FlowContext.TurnCount.Should().Be(2, "the compressed snapshot restores what it captured");
    }

    [Fact]
    public async Task Diff_TwoSnapshots_ShowsChangedFieldsAndNewMessages()
    {
        var client = Client();
        var id = NewId();
        await StartAsync(client, id, 1);
        var first = await SnapshotAsync(client, id);
        await TurnAsync(client, id, 2);
        await SetAsync(client, id, s => s.GlobalState.CurrentIntent = "book_ticket");
        var second = await SnapshotAsync(client, id);

        var diff = await (await client.GetAsync($"v1/sessions/{id}/snapshots/{first.SnapshotId}/diff?to={second.SnapshotId}")).ReadAsync<SnapshotDiff>();

        diff.From.Should().Be(first.SnapshotId);
        diff.To.Should().Be(second.SnapshotId);
        diff.Changes.Select(c => c.Path).Should().Contain(["globalState.currentIntent", "flowContext.turnCount", "meta.version"]);
        diff.Changes.Single(c => c.Path == "globalState.currentIntent").After!.Value.GetString().Should().Be("book_ticket");
        diff.MessagesAdded.Select(m => m.Content).Should().Equal("Turn 2: my knee hurts since 2 days.", "Answer 2: rest it.");
        diff.MessagesRemoved.Should().BeEmpty();
    }

    [Fact]
    public async Task UnknownSnapshotOrConversation_Answers404WithAStableCode_AndChangesNothing()
    {
        var client = Client();
        var id = NewId();
        var before = await StartAsync(client, id, 1);
        var handle = await SnapshotAsync(client, id);

        (await (await client.GetAsync($"v1/sessions/{id}/snapshots/snap-999")).ProblemAsync(404)).GetProperty("code").GetString().Should().Be("snapshot-not-found");
        (await (await client.PostAsJsonAsync($"v1/sessions/{id}/snapshots/snap-999/restore", new RestoreSnapshotRequest(), ContractsJson.Options)).ProblemAsync(404))
            .GetProperty("code").GetString().Should().Be("snapshot-not-found");
        (await (await client.GetAsync($"v1/sessions/{id}/snapshots/{handle.SnapshotId}/diff?to=snap-999")).ProblemAsync(404))
            .GetProperty("code").GetString().Should().Be("snapshot-not-found");
        (await (await client.GetAsync($"v1/sessions/{id}/snapshots/{handle.SnapshotId}/diff")).ProblemAsync(400)).GetProperty("code").GetString().Should().Be("missing-to");
        (await (await client.PostAsJsonAsync("v1/sessions/nobody-here/snapshots", new CreateSnapshotRequest(), ContractsJson.Options)).ProblemAsync(404))
            .GetProperty("code").GetString().Should().Be("session-not-found");
        (await (await client.GetAsync("v1/sessions/nobody-here/snapshots")).ProblemAsync(404)).GetProperty("code").GetString().Should().Be("session-not-found");
        (await (await client.PostAsJsonAsync($"v1/sessions/{id}/snapshots", new CreateSnapshotRequest(new string('x', 201)), ContractsJson.Options)).ProblemAsync(400))
            .GetProperty("code").GetString().Should().Be("invalid-label");

        var after = await (await client.GetAsync($"v1/sessions/{id}")).ReadAsync<SessionValue>();
        Json(after).Should().Be(Json(before));
        (await (await client.GetAsync($"v1/sessions/{id}/snapshots")).ReadAsync<SnapshotList>()).Snapshots.Should().ContainSingle();
    }

    [Fact]
    public async Task OtherTenant_CannotListReadOrRestore_AndNeverSeesTheSnapshots()
    {
        var alice = Client("tenant-a");
        var bob = Client("tenant-b");
        var id = NewId();
        await StartAsync(alice, id, 1);
        var handle = await SnapshotAsync(alice, id, "alice's");
        await StartAsync(bob, id, 1); // the same conversation id in another tenant

        var bobList = await (await bob.GetAsync($"v1/sessions/{id}/snapshots")).ReadAsync<SnapshotList>();
        var read = await bob.GetAsync($"v1/sessions/{id}/snapshots/{handle.SnapshotId}");
        var restore = await bob.PostAsJsonAsync($"v1/sessions/{id}/snapshots/{handle.SnapshotId}/restore", new RestoreSnapshotRequest(), ContractsJson.Options);

        bobList.Snapshots.Should().BeEmpty();
        (await read.ProblemAsync(404)).GetProperty("code").GetString().Should().Be("snapshot-not-found");
        (await restore.ProblemAsync(404)).GetProperty("code").GetString().Should().Be("snapshot-not-found");
        (await (await alice.GetAsync($"v1/sessions/{id}/snapshots")).ReadAsync<SnapshotList>()).Snapshots.Should().ContainSingle().Which.Label.Should().Be("alice's");
    }

    [Fact]
    public async Task Restore_KeepsSafetyFactsLearntAfterTheSnapshot()
    {
        var client = Client();
        var id = NewId();
        await StartAsync(client, id, 1);
        var handle = await SnapshotAsync(client, id);
        await SetAsync(client, id, s => s.UserSnapshot.Allergies.Add("penicillin"));

        var restored = await (await client.PostAsJsonAsync($"v1/sessions/{id}/snapshots/{handle.SnapshotId}/restore", new RestoreSnapshotRequest(), ContractsJson.Options))
            .ReadAsync<RestoreResult>();

        restored.Session.UserSnapshot.Allergies.Should().Equal("penicillin");
        (await (await client.GetAsync($"v1/sessions/{id}")).ReadAsync<SessionValue>()).UserSnapshot.Allergies.Should().Equal("penicillin");
    }

    [Fact]
    public async Task Restore_WithRollbackLog_LeavesLaterTurnsOutOfTheContextButInTheLog()
    {
        var client = Client();
        var id = NewId();
        await StartAsync(client, id, 2);
        var handle = await SnapshotAsync(client, id);
        await TurnAsync(client, id, 3);

        var restored = await (await client.PostAsJsonAsync($"v1/sessions/{id}/snapshots/{handle.SnapshotId}/restore", new RestoreSnapshotRequest(RollbackLog: true), ContractsJson.Options))
            .ReadAsync<RestoreResult>();
        var context = await (await client.PostAsJsonAsync("v1/context/query", new MemoryQueryRequest(id, Query: "and now?", Compression: "none"), ContractsJson.Options))
            .ReadAsync<MemoryContext>();
        await TurnAsync(client, id, 4);
        var next = await (await client.PostAsJsonAsync("v1/context/query", new MemoryQueryRequest(id, Query: "and now?", Compression: "none"), ContractsJson.Options))
            .ReadAsync<MemoryContext>();
        var log = await (await client.GetAsync($"v1/conversations/{id}/messages")).ReadAsync<MessagePage>();

        restored.LogRolledBack.Should().BeTrue();
        context.History.Should().Contain("Turn 1: my knee").And.Contain("Turn 2: my knee").And.NotContain("Turn 3");
        next.History.Should().Contain("Turn 2: my knee").And.Contain("Turn 4: my knee").And.NotContain("Turn 3");
        log.Messages.Should().Contain(m => m.Query.StartsWith("Turn 3", StringComparison.Ordinal), "nothing is deleted from the log");
    }

    [Fact]
    public async Task Checkpoint_TakesAnAutomaticSnapshot()
    {
        var client = Client();
        var id = NewId();
        await StartAsync(client, id, 3);

        (await client.PostAsJsonAsync($"v1/sessions/{id}/checkpoints", new CheckpointRequest("Knee pain for days.", 1), ContractsJson.Options)).EnsureSuccessStatusCode();
        var list = await (await client.GetAsync($"v1/sessions/{id}/snapshots")).ReadAsync<SnapshotList>();
        var snapshot = await (await client.GetAsync($"v1/sessions/{id}/snapshots/{list.Snapshots[0].SnapshotId}")).ReadAsync<SessionSnapshot>();

        list.Snapshots.Should().ContainSingle().Which.Automatic.Should().BeTrue();
        list.Snapshots[0].Label.Should().Be("checkpoint 1");
        snapshot.Session.MessageContext.Mode.Should().Be(MemoryMode.SummaryN);
        snapshot.Session.MessageContext.Summary.Should().Contain("Knee pain");
        _factory.EventsOfType(EventTypes.SnapshotCreated).Should().ContainSingle().Which.Data.GetProperty("automatic").GetBoolean().Should().BeTrue();
    }
}

public sealed class InMemorySnapshotBehaviour() : SnapshotBehaviour(LogKind.InMemory);

public sealed class PostgresSnapshotBehaviour() : SnapshotBehaviour(LogKind.Postgres);
