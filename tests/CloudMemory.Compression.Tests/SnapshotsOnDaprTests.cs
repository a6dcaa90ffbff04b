using System.Net.Http.Json;
using System.Text.Json;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Context;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Dapr;
using CloudMemory.Dapr.Tests;
using CloudMemory.Dapr.Tests.FakeSidecar;
using CloudMemory.Session;
using CloudMemory.Session.Tests.Infrastructure;

namespace CloudMemory.Compression.Tests;

/// <summary>
/// Snapshots and context compression on the Dapr runtime: the session and context services composed
/// as their Program.cs compose them, over the fake sidecar (actor calls, state and events on the wire).
/// </summary>
public sealed class SnapshotsOnDaprTests : IAsyncLifetime
{
    private DaprTestApp _app = null!;
    private HttpClient _client = null!;

    public async Task InitializeAsync()
    {
        _app = await DaprTestApp.StartServiceAsync(new ManualTimeProvider(), SessionServiceCollectionExtensions.AppId, builder =>
        {
            builder.AddSessionServices();
            builder.AddContextServices();
        }, app =>
        {
            app.MapSessionEndpoints();
            app.MapContextEndpoints();
        }, new Dictionary<string, string?>
        {
            ["CloudMemory:Llm:Endpoint"] = "",
            ["CloudMemory:Session:MaxSnapshots"] = "1",
            ["CloudMemory:Memory:AutoCheckpoint"] = "false",
        });
        _client = new HttpClient { BaseAddress = _app.AppBase, Timeout = Wait.Timeout };
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _app.DisposeAsync();
    }

    private static async Task<T> ReadAsync<T>(HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStringAsync();
        response.IsSuccessStatusCode.Should().BeTrue($"{(int)response.StatusCode} {body}");
        return JsonSerializer.Deserialize<T>(body, ContractsJson.Options)!;
    }

    private async Task TurnAsync(string id, string query, string answer) =>
        (await _client.PostAsJsonAsync($"v1/sessions/{id}/turns", new WriteTurnRequest(null, "triage", query, answer), ContractsJson.Options)).EnsureSuccessStatusCode();

    [Fact]
    public async Task SnapshotAndRestore_OnDaprRuntime_ReturnTheExactEarlierSession_CompressedOrNot()
    {
        var id = "dapr-snap-" + Guid.NewGuid().ToString("N")[..8];
        (await _client.PostAsJsonAsync("v1/sessions", new CreateSessionRequest(id, "u-1"), ContractsJson.Options)).EnsureSuccessStatusCode();
        await TurnAsync(id, "Turn 1: my back hurts.", "Rest.");
        var before = await ReadAsync<SessionValue>(await _client.GetAsync($"v1/sessions/{id}"));
        var first = await ReadAsync<SnapshotHandle>(await _client.PostAsJsonAsync($"v1/sessions/{id}/snapshots", new CreateSnapshotRequest("first"), ContractsJson.Options));
        var firstRead = await ReadAsync<SessionSnapshot>(await _client.GetAsync($"v1/sessions/{id}/snapshots/{first.SnapshotId}"));
        await TurnAsync(id, "Turn 2: now my leg too.", "See a doctor.");
        await ReadAsync<SnapshotHandle>(await _client.PostAsJsonAsync($"v1/sessions/{id}/snapshots", new CreateSnapshotRequest("second"), ContractsJson.Options));

        var list = await ReadAsync<SnapshotList>(await _client.GetAsync($"v1/sessions/{id}/snapshots"));
        var compressedRead = await ReadAsync<SessionSnapshot>(await _client.GetAsync($"v1/sessions/{id}/snapshots/{first.SnapshotId}"));
        var restored = await ReadAsync<RestoreResult>(await _client.PostAsJsonAsync($"v1/sessions/{id}/snapshots/{first.SnapshotId}/restore", new RestoreSnapshotRequest(), ContractsJson.Options));
        var after = await ReadAsync<SessionValue>(await _client.GetAsync($"v1/sessions/{id}"));

        list.Snapshots.Select(s => (s.Label, s.Compressed)).Should().Equal(("second", false), ("first", true));
        JsonSerializer.Serialize(compressedRead with { Compressed = false }, ContractsJson.Options).Should().Be(JsonSerializer.Serialize(firstRead, ContractsJson.Options));
        after.Meta.Version.Should().Be(restored.Version);
        after.Meta.Version = before.Meta.Version;
        after.Meta.UpdatedAt = before.Meta.UpdatedAt;
        JsonSerializer.Serialize(after, ContractsJson.Options).Should().Be(JsonSerializer.Serialize(before, ContractsJson.Options));
        _app.Sidecar.ActorCalls.Should().Contain(c => c.Method == "RestoreSnapshot" && c.Status == 200);
        _app.Sidecar.AssertNoViolations();
    }

    [Fact]
    public async Task ContextQuery_OnDaprRuntime_CompressesAndKeepsTheSafetyFact()
    {
        var id = "dapr-cmp-" + Guid.NewGuid().ToString("N")[..8];
        (await _client.PostAsJsonAsync("v1/sessions", new CreateSessionRequest(id, "u-2"), ContractsJson.Options)).EnsureSuccessStatusCode();
        await TurnAsync(id, "I am allergic to penicillin.", "Noted.");
        for (var i = 0; i < 20; i++)
        {
            await TurnAsync(id, $"Okay thanks, sounds good, round {i}.", "Great, glad to hear it, anything else?");
        }

        var whole = await ReadAsync<MemoryContext>(await _client.PostAsJsonAsync("v1/context/query",
            new MemoryQueryRequest(id, Query: "what now?", MaxTokens: 100_000, Compression: "none"), ContractsJson.Options));
        var context = await ReadAsync<MemoryContext>(await _client.PostAsJsonAsync("v1/context/query",
            new MemoryQueryRequest(id, Query: "what now?", MaxTokens: 200, Compression: "importance"), ContractsJson.Options));

        context.Compression!.Applied.Should().BeTrue();
        context.History.Should().Contain("allergic to penicillin");
        context.Compression.OriginalTokens.Should().Be(ContextTokens.O200kTokens(whole.Messages!), "the context service counts the ratio with the configured tokenizer here too");
        context.Compression.KeptTokens.Should().Be(ContextTokens.O200kTokens(context.Messages!));
        _app.Sidecar.AssertNoViolations();
    }
}
