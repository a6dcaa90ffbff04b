using System.Net;
using System.Text.Json;
using CloudMemory.Dapr.Tests;
using CloudMemory.Session.Features.SharedContexts;

namespace CloudMemory.SharedContexts.Tests;

/// <summary>
/// What a user of shared contexts relies on, over HTTP. Runs on the embedded host and on the
/// session app over the fake Dapr sidecar (see the two subclasses at the end).
/// </summary>
public abstract class SharedContextBehaviour : IAsyncLifetime
{
    protected ISharedContextHost Host { get; private set; } = null!;

    protected HttpClient Client => Host.Client;

    protected abstract Task<ISharedContextHost> StartAsync();

    public async Task InitializeAsync() => Host = await StartAsync();

    public async Task DisposeAsync() => await Host.DisposeAsync();

    protected static string NewId() => "sc-" + Guid.NewGuid().ToString("N")[..10];

    protected async Task<string> CreateAsync(object body, string owner = "triage")
    {
        var response = await Client.SendAsync(HttpMethod.Post, "v1/shared-contexts", owner, body);
        response.StatusCode.Should().Be(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        var ack = await response.ReadAsync<SharedContextAck>();
        ack.Version.Should().Be(1);
        ack.Seq.Should().Be(1);
        return ack.Id;
    }

    protected Task<HttpResponseMessage> PatchAsync(string id, string agent, long baseVersion, object changes, string? stepId = null, string? changeId = null, bool passTurn = false) =>
        Client.SendAsync(HttpMethod.Patch, $"v1/shared-contexts/{id}", agent, new { baseVersion, changes, stepId, changeId, passTurn });

    protected async Task<SharedContextView> GetAsync(string id, string agent = "triage", long? version = null) =>
        await (await Client.SendAsync(HttpMethod.Get, $"v1/shared-contexts/{id}" + (version is null ? "" : $"?version={version}"), agent)).ReadAsync<SharedContextView>();

    protected async Task<List<SharedContextChange>> ChangesAsync(string id, long afterSeq = 0, string agent = "triage") =>
        [.. (await (await Client.SendAsync(HttpMethod.Get, $"v1/shared-contexts/{id}/changes?afterSeq={afterSeq}&limit=1000", agent)).ReadAsync<SharedContextChangePage>()).Changes];

    protected static object Team(string mode = "open", object? fields = null, object? extra = null) => new
    {
        mode,
        members = new object[] { new { agentId = "report", role = "write" }, new { agentId = "drug", role = "write" }, new { agentId = "auditor", role = "read" } },
        fields = fields ?? new { disease = new { value = "unknown", conflict = "reject" } },
    };

    // ---- creation, reads, tenants -----------------------------------------------------------------

    [Fact]
    public async Task Create_ThenGet_ReturnsFieldsMembersVersionAndSeq_OnlyToMembersOfTheTenant()
    {
        var id = await CreateAsync(new
        {
            id = NewId(),
            members = new object[] { new { agentId = "report", role = "read" } },
            fields = new { disease = new { value = "flu", conflict = "reject" }, notes = new { value = new[] { "fever" }, conflict = "append" } },
            traceId = "trace-1",
        });

        var view = await GetAsync(id, "report");

        view.Owner.Should().Be("triage");
        view.Version.Should().Be(1);
        view.Seq.Should().Be(1);
        view.Fields["disease"].Value.GetString().Should().Be("flu");
        view.Fields["notes"].Conflict.Should().Be("append");
        view.Members.Select(m => (m.AgentId, m.Role)).Should().BeEquivalentTo([("triage", "admin"), ("report", "read")]);
        view.Links.TraceId.Should().Be("trace-1");
        await (await Client.SendAsync(HttpMethod.Get, $"v1/shared-contexts/{id}", "stranger")).ProblemAsync(403, "not-a-member");
        await (await Client.SendAsync(HttpMethod.Get, $"v1/shared-contexts/{id}", "triage", tenant: "acme")).ProblemAsync(404, "shared-context-not-found");
        await (await Client.SendAsync(HttpMethod.Get, $"v1/shared-contexts/{id}", agent: null)).ProblemAsync(403, "agent-id-required");
    }

    [Fact]
    public async Task Create_WithBadInput_IsRefusedWithAStableCode_AndCreatesNothing()
    {
        var id = NewId();
        await (await Client.SendAsync(HttpMethod.Post, "v1/shared-contexts", "triage", new { id, fields = new { x = new { value = 1, conflict = "newest" } } }))
            .ProblemAsync(400, "invalid-conflict");
        await (await Client.SendAsync(HttpMethod.Post, "v1/shared-contexts", "triage", new { id, mode = "anarchy" })).ProblemAsync(400, "invalid-mode");
        await (await Client.SendAsync(HttpMethod.Post, "v1/shared-contexts", "triage", new { id, fields = new { n = new { value = "many", conflict = "counter" } } }))
            .ProblemAsync(400, "field-invalid");
        await (await Client.SendAsync(HttpMethod.Post, "v1/shared-contexts", "triage", new { id, fields = new { d = new { value = "x", schema = new { type = "string", @enum = new[] { "flu", "cold" } } } } }))
            .ProblemAsync(400, "field-invalid");
        await (await Client.SendAsync(HttpMethod.Get, $"v1/shared-contexts/{id}", "triage")).ProblemAsync(404, "shared-context-not-found");
    }

    [Fact]
    public async Task Create_RetriedIdentically_AnswersWithTheSameContext_ButAnotherCreateOfTheIdIsAConflict()
    {
        var body = new { id = NewId(), fields = new { disease = new { value = "flu" } } };
        await CreateAsync(body);

        var retry = await Client.SendAsync(HttpMethod.Post, "v1/shared-contexts", "triage", body);
        retry.StatusCode.Should().Be(HttpStatusCode.OK);
        (await retry.ReadAsync<SharedContextAck>()).Id.Should().Be(body.id);
        await (await Client.SendAsync(HttpMethod.Post, "v1/shared-contexts", "report", body)).ProblemAsync(409, "shared-context-exists");
        (await ChangesAsync(body.id)).Should().ContainSingle("the retry created nothing");
    }

    [Fact]
    public async Task Create_FromAConversation_TakesItsSharedEntitiesAsFields_AndLinksIt()
    {
        var conversation = "conv-" + Guid.NewGuid().ToString("N")[..8];
        (await Client.SendAsync(HttpMethod.Post, "v1/sessions", "triage", new { conversationId = conversation, userId = "u1" })).StatusCode.Should().Be(HttpStatusCode.Created);
        var read = await Client.SendAsync(HttpMethod.Get, $"v1/sessions/{conversation}", "triage");
        var session = JsonDocument.Parse(await read.Content.ReadAsStringAsync()).RootElement;
        var update = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(session.GetRawText())!;
        update["globalState"] = JsonSerializer.SerializeToElement(new { entities = new { symptomSummary = "headache, fever", disease = "flu", targetDept = "internal medicine" } });
        var put = await Client.SendAsync(HttpMethod.Put, $"v1/sessions/{conversation}", "triage", update, headers: new Dictionary<string, string> { ["If-Match"] = read.Headers.ETag!.Tag });
        put.IsSuccessStatusCode.Should().BeTrue(await put.Content.ReadAsStringAsync());

        var id = await CreateAsync(new { fromConversation = conversation, fields = new { disease = new { value = "flu", conflict = "reject" } } });
        var view = await GetAsync(id);

        view.Links.ConversationId.Should().Be(conversation);
        view.Fields["symptomSummary"].Value.GetString().Should().Be("headache, fever");
        view.Fields["symptomSummary"].Conflict.Should().Be("last-writer-wins");
        view.Fields["targetDept"].Value.GetString().Should().Be("internal medicine");
        view.Fields["disease"].Conflict.Should().Be("reject", "fields given in the request override the conversation's");
        await (await Client.SendAsync(HttpMethod.Post, "v1/shared-contexts", "triage", new { fromConversation = "no-such-conversation" })).ProblemAsync(404, "session-not-found");
    }

    // ---- versioned updates and conflict policies ---------------------------------------------------

    [Fact]
    public async Task Reject_AStaleUpdate_Is409WithTheCurrentValueAndVersion_AndChangesNothing()
    {
        var id = await CreateAsync(Team());
        (await (await PatchAsync(id, "report", 1, new { disease = new { set = "influenza" } })).ReadAsync<SharedContextAck>()).Version.Should().Be(2);

        var stale = await PatchAsync(id, "drug", 1, new { disease = new { set = "cold" } });

        var problem = await stale.ProblemAsync(409, "version-conflict");
        problem.GetProperty("field").GetString().Should().Be("disease");
        problem.GetProperty("currentValue").GetString().Should().Be("influenza");
        problem.GetProperty("fieldVersion").GetInt64().Should().Be(2);
        problem.GetProperty("version").GetInt64().Should().Be(2);
        var view = await GetAsync(id);
        view.Fields["disease"].Value.GetString().Should().Be("influenza");
        view.Version.Should().Be(2);
        (await (await PatchAsync(id, "drug", 2, new { disease = new { set = "cold" } })).ReadAsync<SharedContextAck>()).Version.Should().Be(3, "a writer that read the current version succeeds");
    }

    [Fact]
    public async Task ConcurrentUpdates_ToDifferentFields_NeverConflict_EvenFromTheSameBaseVersion()
    {
        var id = await CreateAsync(Team(fields: new { disease = new { value = "flu", conflict = "reject" }, dept = new { value = "er", conflict = "reject" } }));

        var both = await Task.WhenAll(PatchAsync(id, "report", 1, new { disease = new { set = "influenza" } }), PatchAsync(id, "drug", 1, new { dept = new { set = "internal" } }));

        both.Should().OnlyContain(r => r.StatusCode == HttpStatusCode.OK);
        var view = await GetAsync(id);
        view.Fields["disease"].Value.GetString().Should().Be("influenza");
        view.Fields["dept"].Value.GetString().Should().Be("internal");
        view.Version.Should().Be(3);
    }

    public static TheoryData<string> Policies => new() { "reject", "last-writer-wins", "append", "counter", "set-union", "max", "min", "map-merge" };

    [Theory]
    [MemberData(nameof(Policies))]
    public async Task SixtyFourWriters_OnOneField_AreCountedAndResolvedByItsPolicy_NothingLost(string policy)
    {
        object initial = policy switch
        {
            "append" or "set-union" => Array.Empty<int>(),
            "counter" => 0,
            "map-merge" => new { },
            _ => -1,
        };
        var members = Enumerable.Range(0, 64).Select(i => new { agentId = $"w{i}", role = "write" }).ToArray();
        var id = await CreateAsync(new { members, fields = new { f = new { value = initial, conflict = policy } } });

        var responses = await Task.WhenAll(Enumerable.Range(0, 64).Select(i => PatchAsync(id, $"w{i}", 1, policy switch
        {
            "append" or "set-union" => new { f = new { add = i } },
            "counter" => new { f = new { increment = 1 } },
            "map-merge" => (object)new Dictionary<string, object> { ["f"] = new { set = new Dictionary<string, int> { [$"w{i}"] = i } } },
            _ => new { f = new { set = i } },
        })));

        var accepted = responses.Where(r => r.StatusCode == HttpStatusCode.OK).ToList();
        var refused = responses.Where(r => r.StatusCode == HttpStatusCode.Conflict).ToList();
        (accepted.Count + refused.Count).Should().Be(64, "every write is either accepted or refused with 409");
        accepted.Should().HaveCount(policy == "reject" ? 1 : 64);
        var acks = await Task.WhenAll(accepted.Select(r => r.ReadAsync<SharedContextAck>()));
        acks.Select(a => a.Version).Should().BeEquivalentTo(Enumerable.Range(2, acks.Length).Select(v => (long)v), "each accepted write got its own version");
        var value = (await GetAsync(id)).Fields["f"].Value;
        switch (policy)
        {
            case "reject":
                var winner = (await ChangesAsync(id)).Single(c => c.Kind == "updated");
                value.GetInt32().Should().Be(winner.Diff!["f"].After.GetInt32()).And.BeInRange(0, 63, "the one accepted write is the value");
                break;
            case "last-writer-wins":
                var history = await ChangesAsync(id);
                value.GetInt32().Should().Be(history[^1].Diff!["f"].After.GetInt32(), "the last accepted write wins");
                break;
            case "append":
                value.EnumerateArray().Select(e => e.GetInt32()).Should().BeEquivalentTo(Enumerable.Range(0, 64));
                break;
            case "set-union":
                value.EnumerateArray().Select(e => e.GetInt32()).Should().BeEquivalentTo(Enumerable.Range(0, 64));
                break;
            case "counter":
                value.GetInt32().Should().Be(64);
                break;
            case "max":
                value.GetInt32().Should().Be(63);
                break;
            case "min":
                value.GetInt32().Should().Be(-1, "the initial -1 is smaller than every write");
                break;
            case "map-merge":
                value.EnumerateObject().Should().HaveCount(64);
                break;
        }
        (await ChangesAsync(id)).Select(c => c.Seq).Should().Equal(Enumerable.Range(1, accepted.Count + 1).Select(s => (long)s), "the change log is contiguous");
    }

    [Fact]
    public async Task SetUnion_IsAnObservedRemoveSet_AConcurrentAddSurvivesARemove()
    {
        var id = await CreateAsync(Team(fields: new { allergies = new { value = new[] { "penicillin" }, conflict = "set-union" } }));

        (await PatchAsync(id, "report", 1, new { allergies = new { add = "aspirin" } })).StatusCode.Should().Be(HttpStatusCode.OK); // v2
        // drug read version 1 (before the add) and removes aspirin and penicillin: only what it saw goes.
        (await PatchAsync(id, "drug", 1, new { allergies = new { remove = new[] { "aspirin", "penicillin" } } })).StatusCode.Should().Be(HttpStatusCode.OK);

        (await GetAsync(id)).Fields["allergies"].Value.EnumerateArray().Select(e => e.GetString()).Should().Equal("aspirin");
        (await PatchAsync(id, "drug", 3, new { allergies = new { remove = "aspirin" } })).StatusCode.Should().Be(HttpStatusCode.OK);
        (await GetAsync(id)).Fields["allergies"].Value.GetArrayLength().Should().Be(0);
    }

    [Fact]
    public async Task MapMerge_MergesKeys_NullDeletes_AndOperationsOutsideThePolicyAreRefused()
    {
        var id = await CreateAsync(Team(fields: new { doses = new { value = new { ibuprofen = "200mg" }, conflict = "map-merge" }, n = new { value = 1, conflict = "counter" } }));

        (await PatchAsync(id, "drug", 1, new { doses = new { set = new { paracetamol = "500mg" } } })).StatusCode.Should().Be(HttpStatusCode.OK);
        (await PatchAsync(id, "report", 1, new { doses = new { set = new Dictionary<string, object?> { ["ibuprofen"] = null } } })).StatusCode.Should().Be(HttpStatusCode.OK);
        await (await PatchAsync(id, "drug", 3, new { doses = new { increment = 1 } })).ProblemAsync(400, "operation-not-allowed");
        await (await PatchAsync(id, "drug", 3, new { n = new { increment = "one" } })).ProblemAsync(400, "field-invalid");
        await (await PatchAsync(id, "drug", 3, new { nosuch = new { set = 1 } })).ProblemAsync(400, "unknown-field");
        await (await PatchAsync(id, "drug", 3, new { n = new { set = 1, increment = 1 } })).ProblemAsync(400, "invalid-change");

        var doses = (await GetAsync(id)).Fields["doses"].Value;
        doses.EnumerateObject().Select(p => p.Name).Should().Equal("paracetamol");
        (await GetAsync(id)).Version.Should().Be(3, "refused requests changed nothing");
    }

    [Fact]
    public async Task AMultiFieldUpdate_IsAllOrNothing()
    {
        var id = await CreateAsync(Team(fields: new { disease = new { value = "flu", conflict = "reject" }, dept = new { value = "er", conflict = "last-writer-wins" } }));
        (await PatchAsync(id, "report", 1, new { disease = new { set = "influenza" } })).StatusCode.Should().Be(HttpStatusCode.OK);

        await (await PatchAsync(id, "drug", 1, new { dept = new { set = "icu" }, disease = new { set = "cold" } })).ProblemAsync(409, "version-conflict");

        (await GetAsync(id)).Fields["dept"].Value.GetString().Should().Be("er", "the dept change was part of a refused request");
    }

    // ---- write guards and permissions --------------------------------------------------------------

    [Fact]
    public async Task WriteGuards_SchemaAndAppendOnly_ProtectSharedState()
    {
        var id = await CreateAsync(Team(fields: new
        {
            severity = new { value = "low", conflict = "last-writer-wins", schema = new { type = "string", @enum = new[] { "low", "moderate", "high" } } },
            summary = new { value = "", conflict = "last-writer-wins", schema = new { type = "string", maxLength = 20 } },
            allergies = new { value = new[] { "penicillin" }, conflict = "set-union", appendOnly = true, schema = new { type = "array", items = new { type = "string", maxLength = 40 } } },
        }));

        await (await PatchAsync(id, "report", 1, new { severity = new { set = "catastrophic" } })).ProblemAsync(400, "field-invalid");
        await (await PatchAsync(id, "report", 1, new { severity = new { set = 3 } })).ProblemAsync(400, "field-invalid");
        await (await PatchAsync(id, "report", 1, new { summary = new { set = new string('x', 21) } })).ProblemAsync(400, "field-invalid");
        await (await PatchAsync(id, "drug", 1, new { allergies = new { remove = "penicillin" } })).ProblemAsync(403, "append-only-field");
        await (await PatchAsync(id, "drug", 1, new { allergies = new { set = Array.Empty<string>() } })).ProblemAsync(403, "append-only-field");
        await (await PatchAsync(id, "drug", 1, new { allergies = new { add = 42 } })).ProblemAsync(400, "field-invalid");
        (await PatchAsync(id, "drug", 1, new { allergies = new { add = "sulfa" }, severity = new { set = "high" } })).StatusCode.Should().Be(HttpStatusCode.OK);

        var view = await GetAsync(id);
        view.Version.Should().Be(2);
        view.Fields["allergies"].Value.EnumerateArray().Select(e => e.GetString()).Should().Equal("penicillin", "sulfa");
        view.Fields["severity"].Value.GetString().Should().Be("high");
    }

    [Fact]
    public async Task Permissions_ReadersAndNonMembersCannotWrite_FieldGrantsLimitWriters()
    {
        var id = await CreateAsync(new
        {
            members = new object[] { new { agentId = "auditor", role = "read" }, new { agentId = "drug", role = "write", fields = new[] { "medication" } } },
            fields = new { medication = new { value = "", conflict = "last-writer-wins" }, disease = new { value = "flu", conflict = "last-writer-wins" } },
        });

        await (await PatchAsync(id, "auditor", 1, new { disease = new { set = "x" } })).ProblemAsync(403, "write-forbidden");
        await (await PatchAsync(id, "stranger", 1, new { disease = new { set = "x" } })).ProblemAsync(403, "not-a-member");
        await (await PatchAsync(id, "drug", 1, new { disease = new { set = "x" } })).ProblemAsync(403, "field-forbidden");
        (await PatchAsync(id, "drug", 1, new { medication = new { set = "ibuprofen" } })).StatusCode.Should().Be(HttpStatusCode.OK);
        (await PatchAsync(id, "triage", 2, new { disease = new { set = "cold" } })).StatusCode.Should().Be(HttpStatusCode.OK, "admins write every field");
        (await GetAsync(id, "auditor")).Version.Should().Be(3);
    }

    // ---- history -----------------------------------------------------------------------------------

    [Fact]
    public async Task History_KeepsEveryVersionWithAuthorStepAndDiff_PastVersionsAreReadable_AdminRollsBack()
    {
        var id = await CreateAsync(Team(fields: new { disease = new { value = "flu", conflict = "last-writer-wins" }, notes = new { value = Array.Empty<string>(), conflict = "append" } }));
        await PatchAsync(id, "report", 1, new { disease = new { set = "influenza" }, notes = new { add = "fever 39C" } }, stepId: "step-7");
        await PatchAsync(id, "drug", 2, new { disease = new { set = "covid" } });

        var history = await ChangesAsync(id);
        var v2 = history.Single(c => c.Version == 2 && c.Kind == "updated");
        v2.Author.Should().Be("report");
        v2.StepId.Should().Be("step-7");
        v2.Diff!["disease"].Before.GetString().Should().Be("flu");
        v2.Diff["disease"].After.GetString().Should().Be("influenza");
        (await GetAsync(id, version: 1)).Fields["disease"].Value.GetString().Should().Be("flu");
        var atTwo = await GetAsync(id, version: 2);
        atTwo.Fields["disease"].Value.GetString().Should().Be("influenza");
        atTwo.Fields["notes"].Value.GetArrayLength().Should().Be(1);
        await (await Client.SendAsync(HttpMethod.Get, $"v1/shared-contexts/{id}?version=9", "triage")).ProblemAsync(404, "version-not-found");

        await (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{id}/rollback", "report", new { toVersion = 1 })).ProblemAsync(403, "admin-required");
        var rolledBack = await (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{id}/rollback", "triage", new { toVersion = 1 })).ReadAsync<SharedContextAck>();

        rolledBack.Version.Should().Be(4, "a rollback is a new version, history is kept");
        var now = await GetAsync(id);
        now.Fields["disease"].Value.GetString().Should().Be("flu");
        now.Fields["notes"].Value.GetArrayLength().Should().Be(0);
        (await GetAsync(id, version: 3)).Fields["disease"].Value.GetString().Should().Be("covid");
        (await ChangesAsync(id))[^1].Kind.Should().Be("rollback");
    }

    [Fact]
    public async Task RetriedUpdate_WithTheSameChangeId_IsAppliedOnce()
    {
        var id = await CreateAsync(Team(fields: new { visits = new { value = 0, conflict = "counter" } }));

        var first = await (await PatchAsync(id, "report", 1, new { visits = new { increment = 1 } }, changeId: "chg-1")).ReadAsync<SharedContextAck>();
        var retry = await (await PatchAsync(id, "report", 1, new { visits = new { increment = 1 } }, changeId: "chg-1")).ReadAsync<SharedContextAck>();

        var anotherAgent = await (await PatchAsync(id, "drug", 1, new { visits = new { increment = 1 } }, changeId: "chg-1")).ReadAsync<SharedContextAck>();

        retry.Should().Be(first);
        anotherAgent.Version.Should().Be(3, "change ids are each writer's own");
        (await GetAsync(id)).Fields["visits"].Value.GetInt32().Should().Be(2);
    }

    // ---- membership --------------------------------------------------------------------------------

    [Fact]
    public async Task Membership_FollowsThePolicy_AndEveryChangeIsAudited()
    {
        var listed = await CreateAsync(new { policy = new { join = "listed", agents = new[] { "report" } } });
        (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{listed}/members", "report", new { agentId = "report", role = "write" })).StatusCode.Should().Be(HttpStatusCode.OK);
        await (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{listed}/members", "drug", new { agentId = "drug" })).ProblemAsync(403, "join-forbidden");

        var open = await CreateAsync(new { policy = new { join = "tenant", maxJoinRole = "read" } });
        (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{open}/members", "drug", new { agentId = "drug", role = "read" })).StatusCode.Should().Be(HttpStatusCode.OK);
        await (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{open}/members", "report", new { agentId = "report", role = "write" })).ProblemAsync(403, "role-not-allowed");
        await (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{open}/members", "drug", new { agentId = "drug" }, tenant: "acme")).ProblemAsync(404, "shared-context-not-found");

        var invite = await CreateAsync(new { policy = new { join = "invitation" } });
        await (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{invite}/members", "drug", new { agentId = "drug" })).ProblemAsync(403, "invitation-required");
        await (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{invite}/members", "report", new { agentId = "drug" })).ProblemAsync(403, "admin-required");
        (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{invite}/members", "triage", new { agentId = "drug", role = "write" })).StatusCode.Should().Be(HttpStatusCode.OK);
        await (await Client.SendAsync(HttpMethod.Get, $"v1/shared-contexts/{invite}", "drug")).ProblemAsync(403, "not-a-member"); // invited, not joined yet
        (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{invite}/members", "drug", new { agentId = "drug" })).StatusCode.Should().Be(HttpStatusCode.OK);
        (await GetAsync(invite, "drug")).Members.Single(m => m.AgentId == "drug").Role.Should().Be("write");

        await (await Client.SendAsync(HttpMethod.Put, $"v1/shared-contexts/{invite}/members/drug", "drug", new { role = "admin" })).ProblemAsync(403, "admin-required");
        (await Client.SendAsync(HttpMethod.Put, $"v1/shared-contexts/{invite}/members/drug", "triage", new { role = "admin" })).StatusCode.Should().Be(HttpStatusCode.OK);
        (await Client.SendAsync(HttpMethod.Delete, $"v1/shared-contexts/{invite}/members/triage", "triage")).StatusCode.Should().Be(HttpStatusCode.OK);
        await (await Client.SendAsync(HttpMethod.Delete, $"v1/shared-contexts/{invite}/members/drug", "drug")).ProblemAsync(409, "last-admin");
        (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{invite}/close", "drug")).StatusCode.Should().Be(HttpStatusCode.OK);
        await (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{invite}/members", "drug", new { agentId = "report" })).ProblemAsync(409, "context-closed");

        var audit = await ChangesAsync(invite, agent: "drug");
        audit.Select(c => (c.Kind, c.Author)).Should().Equal(
            ("created", "triage"), ("member-invited", "triage"), ("member-joined", "drug"), ("role-changed", "triage"), ("member-left", "triage"), ("closed", "drug"));
        audit.Select(c => c.Seq).Should().Equal(1, 2, 3, 4, 5, 6);
    }

    [Fact]
    public async Task ClosedContext_RefusesWrites_ButStaysReadable()
    {
        var id = await CreateAsync(Team());
        await (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{id}/close", "report")).ProblemAsync(403, "admin-required");
        (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{id}/close", "triage")).StatusCode.Should().Be(HttpStatusCode.OK);

        await (await PatchAsync(id, "report", 1, new { disease = new { set = "x" } })).ProblemAsync(409, "context-closed");
        (await GetAsync(id, "report")).Status.Should().Be("closed");
    }

    // ---- ordered broadcast ---------------------------------------------------------------------------

    [Fact]
    public async Task EveryAcceptedChange_IsPublishedInSeqOrder_WithItsMembers()
    {
        var id = await CreateAsync(Team(fields: new { n = new { value = 0, conflict = "counter" } }));
        await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => PatchAsync(id, "report", 1, new { n = new { increment = 1 } })));
        await PatchAsync(id, "auditor", 1, new { n = new { increment = 1 } }); // refused: not published

        await Wait.UntilAsync(() => Host.Changes().Count(c => c.ContextId == id) == 11, "11 shared-context-changed events");
        var events = Host.Changes().Where(c => c.ContextId == id).OrderBy(c => c.Seq).ToList();
        events.Select(e => e.Seq).Should().Equal(Enumerable.Range(1, 11).Select(s => (long)s));
        events.Skip(1).Should().OnlyContain(e => e.Kind == "updated" && e.Diff!.ContainsKey("n"));
        events[^1].Members.Should().BeEquivalentTo(["triage", "report", "drug", "auditor"]);
        events[^1].TenantId.Should().Be("default");

        var page = await (await Client.SendAsync(HttpMethod.Get, $"v1/shared-contexts/{id}/changes?afterSeq=4&limit=3", "auditor")).ReadAsync<SharedContextChangePage>();
        page.Changes.Select(c => c.Seq).Should().Equal(5, 6, 7);
        page.LastSeq.Should().Be(11, "a reader knows how far behind it is");
        await (await Client.SendAsync(HttpMethod.Get, $"v1/shared-contexts/{id}/changes", "stranger")).ProblemAsync(403, "not-a-member");
    }

    // ---- collaboration modes -------------------------------------------------------------------------

    [Fact]
    public async Task Sequential_OnlyTheTokenHolderWrites_AndTheTokenPassesInOrder()
    {
        var id = await CreateAsync(new
        {
            mode = "sequential",
            members = new object[] { new { agentId = "report", role = "write" }, new { agentId = "drug", role = "write" } },
            turnOrder = new[] { "triage", "drug", "report" },
            fields = new { plan = new { value = Array.Empty<string>(), conflict = "append" } },
        });

        await (await PatchAsync(id, "drug", 1, new { plan = new { add = "dose" } })).ProblemAsync(409, "not-your-turn");
        (await PatchAsync(id, "triage", 1, new { plan = new { add = "triage" } }, passTurn: true)).StatusCode.Should().Be(HttpStatusCode.OK);
        await (await PatchAsync(id, "triage", 2, new { plan = new { add = "again" } })).ProblemAsync(409, "not-your-turn");
        (await GetAsync(id)).TurnHolder.Should().Be("drug");
        (await PatchAsync(id, "drug", 2, new { plan = new { add = "dose" } })).StatusCode.Should().Be(HttpStatusCode.OK);
        await (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{id}/turn/pass", "report")).ProblemAsync(409, "not-your-turn");
        (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{id}/turn/pass", "drug")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await PatchAsync(id, "report", 3, new { plan = new { add = "report" } }, passTurn: true)).StatusCode.Should().Be(HttpStatusCode.OK);

        var view = await GetAsync(id);
        view.Fields["plan"].Value.EnumerateArray().Select(e => e.GetString()).Should().Equal("triage", "dose", "report");
        view.TurnHolder.Should().Be("triage", "the token wraps around");
    }

    [Fact]
    public async Task Parallel_WritersClaimDisjointFields_ClaimsExpire()
    {
        var id = await CreateAsync(Team("parallel", new { diagnosis = new { value = "", conflict = "last-writer-wins" }, medication = new { value = "", conflict = "last-writer-wins" } }));

        await (await PatchAsync(id, "report", 1, new { diagnosis = new { set = "flu" } })).ProblemAsync(409, "claim-required");
        (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{id}/claims", "report", new { fields = new[] { "diagnosis" }, ttlSeconds = 30 })).StatusCode.Should().Be(HttpStatusCode.OK);
        await (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{id}/claims", "drug", new { fields = new[] { "diagnosis", "medication" } })).ProblemAsync(409, "field-claimed");
        var drugClaim = await (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{id}/claims", "drug", new { fields = new[] { "medication" }, ttlSeconds = 30 })).ReadAsync<ClaimReply>();

        var writes = await Task.WhenAll(PatchAsync(id, "report", 1, new { diagnosis = new { set = "flu" } }), PatchAsync(id, "drug", 1, new { medication = new { set = "oseltamivir" } }));
        writes.Should().OnlyContain(r => r.StatusCode == HttpStatusCode.OK);
        await (await PatchAsync(id, "report", 3, new { medication = new { set = "x" } })).ProblemAsync(409, "field-claimed");

        Host.Time.Advance(TimeSpan.FromSeconds(31));
        await (await PatchAsync(id, "drug", 3, new { medication = new { set = "late" } })).ProblemAsync(409, "claim-required");
        (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{id}/claims", "report", new { fields = new[] { "medication" } })).StatusCode.Should().Be(HttpStatusCode.OK, "the drug agent's claim expired");
        (await Client.SendAsync(HttpMethod.Delete, $"v1/shared-contexts/{id}/claims/{drugClaim.ClaimId}", "drug")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await GetAsync(id)).Fields["medication"].Value.GetString().Should().Be("oseltamivir");
    }

    [Fact]
    public async Task Hierarchical_MembersPropose_OnlyTheLeadDecides_OnlyApprovedChangesApply()
    {
        var id = await CreateAsync(Team("hierarchical", new { diagnosis = new { value = "", conflict = "last-writer-wins" } }));

        await (await PatchAsync(id, "report", 1, new { diagnosis = new { set = "flu" } })).ProblemAsync(409, "proposal-required");
        var good = await (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{id}/proposals", "report", new { baseVersion = 1, changes = new { diagnosis = new { set = "flu" } } })).ReadAsync<Proposal>();
        var bad = await (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{id}/proposals", "drug", new { baseVersion = 1, changes = new { diagnosis = new { set = "plague" } } })).ReadAsync<Proposal>();
        good.Status.Should().Be("pending");
        (await GetAsync(id)).Fields["diagnosis"].Value.GetString().Should().BeEmpty("a proposal changes nothing by itself");

        await (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{id}/proposals/{good.ProposalId}/votes", "drug", new { approve = true })).ProblemAsync(403, "lead-only");
        var approved = await (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{id}/proposals/{good.ProposalId}/votes", "triage", new { approve = true })).ReadAsync<Proposal>();
        var rejected = await (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{id}/proposals/{bad.ProposalId}/votes", "triage", new { approve = false })).ReadAsync<Proposal>();

        approved.Status.Should().Be("applied");
        rejected.Status.Should().Be("rejected");
        var view = await GetAsync(id);
        view.Fields["diagnosis"].Value.GetString().Should().Be("flu");
        var applied = (await ChangesAsync(id)).Single(c => c.Kind == "updated");
        applied.Author.Should().Be("report", "the change is the proposer's, approved by the lead");
    }

    [Fact]
    public async Task Democratic_AMajorityAppliesTheProposalExactlyOnce_EvenWhenVotesAreRetried()
    {
        // Voters: triage (admin), report, drug (writers); the auditor only reads.
        var id = await CreateAsync(Team("democratic", new { referrals = new { value = 0, conflict = "counter" } }));
        var proposal = await (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{id}/proposals", "report",
            new { proposalId = "p-1", baseVersion = 1, changes = new { referrals = new { increment = 1 } } })).ReadAsync<Proposal>();
        (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{id}/proposals", "report",
            new { proposalId = "p-1", baseVersion = 1, changes = new { referrals = new { increment = 1 } } })).StatusCode.Should().Be(HttpStatusCode.Created, "a retried proposal is the same proposal");
        await (await PatchAsync(id, "triage", 1, new { referrals = new { increment = 1 } })).ProblemAsync(409, "proposal-required");

        string Votes(string agent) => $"v1/shared-contexts/{id}/proposals/{proposal.ProposalId}/votes";
        await (await Client.SendAsync(HttpMethod.Post, Votes("auditor"), "auditor", new { approve = true })).ProblemAsync(403, "voter-required");
        (await (await Client.SendAsync(HttpMethod.Post, Votes("report"), "report", new { approve = true })).ReadAsync<Proposal>()).Status.Should().Be("pending");
        (await (await Client.SendAsync(HttpMethod.Post, Votes("report"), "report", new { approve = true })).ReadAsync<Proposal>()).Status.Should().Be("pending", "a retried vote counts once");
        await (await Client.SendAsync(HttpMethod.Post, Votes("report"), "report", new { approve = false })).ProblemAsync(409, "already-voted");

        var votes = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => Client.SendAsync(HttpMethod.Post, Votes("drug"), "drug", new { approve = true })));

        var decided = await Task.WhenAll(votes.Select(v => v.ReadAsync<Proposal>()));
        decided.Should().OnlyContain(p => p.Status == "applied");
        var view = await GetAsync(id);
        view.Fields["referrals"].Value.GetInt32().Should().Be(1, "2 of 3 voters decided it; applied exactly once");
        view.Version.Should().Be(2);
        (await ChangesAsync(id)).Count(c => c.Kind == "proposal-decided").Should().Be(1);
        await (await Client.SendAsync(HttpMethod.Post, Votes("triage"), "triage", new { approve = false })).ProblemAsync(409, "proposal-decided");
    }

    [Fact]
    public async Task Democratic_AtTheDeadline_QuorumAndMajorityDecide_Once()
    {
        var members = Enumerable.Range(0, 5).Select(i => new { agentId = $"v{i}", role = "write" }).ToArray(); // 6 voters with the owner
        var id = await CreateAsync(new { mode = "democratic", members, voting = new { quorum = 0.5, deadlineSeconds = 600 }, fields = new { level = new { value = 0, conflict = "max" } } });
        async Task<Proposal> ProposeAsync(string pid, int level) =>
            await (await Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{id}/proposals", "v0", new { proposalId = pid, baseVersion = 1, changes = new { level = new { set = level } } })).ReadAsync<Proposal>();
        Task<HttpResponseMessage> VoteAsync(string pid, string agent, bool approve) =>
            Client.SendAsync(HttpMethod.Post, $"v1/shared-contexts/{id}/proposals/{pid}/votes", agent, new { approve });
        await ProposeAsync("few", 5);
        await ProposeAsync("enough", 3);
        (await VoteAsync("few", "v0", true)).EnsureSuccessStatusCode(); // 1 of 6: below the quorum of 3
        foreach (var (agent, approve) in new[] { ("v0", true), ("v1", true), ("v2", false) })
        {
            (await VoteAsync("enough", agent, approve)).EnsureSuccessStatusCode(); // 3 votes, 2 for: quorum and majority
        }
        (await GetAsync(id)).Fields["level"].Value.GetInt32().Should().Be(0, "undecided before the deadline");

        Host.Time.Advance(TimeSpan.FromSeconds(601));
        var results = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => Client.SendAsync(HttpMethod.Get, $"v1/shared-contexts/{id}/proposals/enough", "v3")));

        (await Task.WhenAll(results.Select(r => r.ReadAsync<Proposal>()))).Should().OnlyContain(p => p.Status == "applied");
        var few = await (await Client.SendAsync(HttpMethod.Get, $"v1/shared-contexts/{id}/proposals/few", "v3")).ReadAsync<Proposal>();
        few.Status.Should().Be("rejected");
        few.Reason.Should().Be("no-quorum");
        await (await VoteAsync("few", "v4", true)).ProblemAsync(409, "proposal-decided");
        var view = await GetAsync(id);
        view.Fields["level"].Value.GetInt32().Should().Be(3);
        view.Version.Should().Be(2, "applied once, at the deadline");
    }
}

public sealed class EmbeddedSharedContextTests : SharedContextBehaviour
{
    protected override Task<ISharedContextHost> StartAsync() => Task.FromResult<ISharedContextHost>(new EmbeddedHost());
}

public sealed class DaprSharedContextTests : SharedContextBehaviour
{
    protected override async Task<ISharedContextHost> StartAsync() => await DaprHost.StartAsync();
}
