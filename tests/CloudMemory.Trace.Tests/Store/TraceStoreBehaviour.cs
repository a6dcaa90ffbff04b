using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Traces;
using CloudMemory.Testing;
using CloudMemory.Trace.Features.Read;
using CloudMemory.Trace.Features.Steps;
using Npgsql;
using static CloudMemory.Trace.Tests.Infrastructure.Steps;

namespace CloudMemory.Trace.Tests.Store;

/// <summary>The <see cref="ITraceStore"/> port, run against every implementation.</summary>
public abstract class TraceStoreBehaviour
{
    private readonly string _tenant = NewTenant();

    protected abstract ITraceStore Store { get; }

    public static TenantStep Stored(string tenant, string trace, int index, string agent = "a1", string type = StepTypes.Tool, string name = "search",
        double startMs = 0, double durationMs = 10, bool success = true, string? context = null, IReadOnlyList<string>? memoryIds = null, int flags = 0) =>
        new(tenant, new TraceStep
        {
            TraceId = trace,
            StepId = $"s{index}",
            StepIndex = index,
            AgentId = agent,
            StepType = type,
            Name = name,
            ContextId = context,
            StartedAt = T0.AddMilliseconds(startMs),
            DurationMs = durationMs,
            Success = success,
            Error = success ? null : new StepError("boom"),
            MemoryIds = memoryIds ?? [],
            InputHash = "h",
            OutputHash = "h",
            Audit = new StepAudit([], [], [], [], [], flags == 0 ? "compliant" : "violation", []),
            RecordedAt = T0,
        }, flags);

    [Fact]
    public async Task Append_RepeatedKeys_OnlyFirstStoredAndReportedNew()
    {
        var trace = NewTrace();
        var first = await Store.AppendAsync([Stored(_tenant, trace, 0), Stored(_tenant, trace, 1), Stored(_tenant, trace, 1, name: "dup-in-batch")]);
        var second = await Store.AppendAsync([Stored(_tenant, trace, 1, name: "retry"), Stored(_tenant, trace, 2)]);

        first.Should().Equal(true, true, false);
        second.Should().Equal(false, true);
        var steps = await Store.GetTraceAsync(_tenant, trace);
        steps.Select(s => s.Name).Should().Equal("search", "search", "search");
        (await Store.GetMaxStepIndexAsync(_tenant, trace)).Should().Be(2);
        (await Store.GetMaxStepIndexAsync(_tenant, NewTrace())).Should().BeNull();
    }

    [Fact]
    public async Task GetStep_ByKey_TheStoredStepOrNullForAnUnknownKeyOrTenant()
    {
        var trace = NewTrace();
        var other = NewTenant();
        await Store.AppendAsync([Stored(_tenant, trace, 0, name: "plan"), Stored(_tenant, trace, 1, name: "search", context: "c1", memoryIds: ["m1"], success: false)]);
        await Store.AppendAsync([Stored(other, trace, 1, name: "other tenant's")]);

        var step = await Store.GetStepAsync(_tenant, trace, "s1");

        step.Should().NotBeNull();
        step!.Name.Should().Be("search");
        step.StepIndex.Should().Be(1);
        step.ContextId.Should().Be("c1");
        step.MemoryIds.Should().Equal("m1");
        step.Error.Should().Be(new StepError("boom"));
        (await Store.GetStepAsync(other, trace, "s1"))!.Name.Should().Be("other tenant's");
        (await Store.GetStepAsync(other, trace, "s0")).Should().BeNull("the other tenant has no step s0 in its trace of that id");
        (await Store.GetStepAsync(_tenant, trace, "s2")).Should().BeNull();
        (await Store.GetStepAsync(_tenant, NewTrace(), "s0")).Should().BeNull();
    }

    [Fact]
    public async Task Reads_AreScopedToTheTenant()
    {
        var trace = NewTrace();
        var other = NewTenant();
        await Store.AppendAsync([Stored(_tenant, trace, 0, context: "c1", memoryIds: ["m1"], flags: 1)]);

        (await Store.GetTraceAsync(other, trace)).Should().BeEmpty();
        (await Store.GetContextStepsAsync(other, "c1", 10)).Should().BeEmpty();
        (await Store.GetAgentStepsAsync(other, "a1", 10)).Should().BeEmpty();
        (await Store.GetMemoryProvenanceAsync(other, "m1")).Should().BeEmpty();
        (await Store.GetSensitiveStepsAsync(other, T0.AddDays(-1), T0.AddDays(1), 10)).Should().BeEmpty();
        (await Store.GetDurationStatsAsync(other)).Should().BeEmpty();
        (await Store.GetMemoryProvenanceAsync(_tenant, "m1")).Should().ContainSingle();
    }

    [Fact]
    public async Task DurationStats_CountOnlyNewStepsPerTypeAndAgent()
    {
        var trace = NewTrace();
        await Store.AppendAsync([.. Enumerable.Range(0, 20).Select(i => Stored(_tenant, trace, i, durationMs: 100))]);
        await Store.AppendAsync([Stored(_tenant, trace, 0, durationMs: 100), Stored(_tenant, trace, 20, durationMs: 5000), Stored(_tenant, trace, 21, agent: "a2", type: StepTypes.Llm)]);

        var stats = (await Store.GetDurationStatsAsync(_tenant)).ToDictionary(s => (s.StepType, s.AgentId));

        stats[(StepTypes.Tool, "a1")].Count.Should().Be(21);
        stats[(StepTypes.Tool, "a1")].Quantile(0.5).Should().BeInRange(87, 115);
        stats[(StepTypes.Tool, "a1")].Quantile(1).Should().BeGreaterThan(4000);
        stats[(StepTypes.Llm, "a2")].Count.Should().Be(1);
    }

    [Fact]
    public async Task LastSuccess_SameSignatureBeforeTheFailure()
    {
        var t1 = NewTrace();
        var t2 = NewTrace();
        await Store.AppendAsync([Stored(_tenant, t1, 0, startMs: 0), Stored(_tenant, t1, 1, startMs: 100), Stored(_tenant, t1, 2, name: "other", startMs: 150)]);
        await Store.AppendAsync([Stored(_tenant, t2, 0, startMs: 200, success: false), Stored(_tenant, t2, 1, startMs: 300)]);

        var found = await Store.FindLastSuccessAsync(_tenant, "a1", StepTypes.Tool, "search", T0.AddMilliseconds(200));

        found!.TraceId.Should().Be(t1);
        found.StepIndex.Should().Be(1);
        (await Store.FindLastSuccessAsync(_tenant, "a1", StepTypes.Tool, "search", T0)).Should().BeNull();
    }

    [Fact]
    public async Task SensitiveSteps_OnlyFlaggedOnesInTheRange()
    {
        var trace = NewTrace();
        await Store.AppendAsync([Stored(_tenant, trace, 0, startMs: 0, flags: 16), Stored(_tenant, trace, 1, startMs: 1000), Stored(_tenant, trace, 2, startMs: 5000, flags: 1)]);

        var found = await Store.GetSensitiveStepsAsync(_tenant, T0, T0.AddSeconds(2), 10);

        found.Select(s => s.StepIndex).Should().Equal(0);
    }

    [Fact]
    public async Task MemoryLinks_RecordedBeforeTheStepArrives_ResolveOnceItDoes_ForTheirTenantOnly()
    {
        var trace = NewTrace();
        var other = NewTenant();
        await Store.LinkMemoriesAsync(_tenant, [new MemoryLink("cp-1", trace, "s1"), new MemoryLink("cp-1", trace, "s1")]);
        (await Store.GetMemoryProvenanceAsync(_tenant, "cp-1")).Should().BeEmpty();

        await Store.AppendAsync([Stored(_tenant, trace, 0, startMs: 0), Stored(_tenant, trace, 1, startMs: 10), Stored(other, trace, 1, startMs: 10)]);

        (await Store.GetMemoryProvenanceAsync(_tenant, "cp-1")).Select(s => s.StepId).Should().Equal("s1");
        (await Store.GetMemoryProvenanceAsync(other, "cp-1")).Should().BeEmpty();
    }

    [Fact]
    public async Task DeleteOlderThan_RemovesOnlyOldStepsOfTheTenant()
    {
        var trace = NewTrace();
        var other = NewTenant();
        await Store.AppendAsync([Stored(_tenant, trace, 0, startMs: 0, context: "c", memoryIds: ["m"]), Stored(_tenant, trace, 1, startMs: 60_000, context: "c"), Stored(other, trace, 0, startMs: 0)]);

        var deleted = await Store.DeleteOlderThanAsync(_tenant, T0.AddSeconds(30));

        deleted.Should().Be(1);
        (await Store.GetTraceAsync(_tenant, trace)).Select(s => s.StepIndex).Should().Equal(1);
        (await Store.GetContextStepsAsync(_tenant, "c", 10)).Should().ContainSingle();
        (await Store.GetMemoryProvenanceAsync(_tenant, "m")).Should().BeEmpty();
        (await Store.GetTraceAsync(other, trace)).Should().ContainSingle();
    }

    [Fact]
    public async Task GetTraceConversation_FirstStepByIndexNamingOne_NullWhenNone_NotFoundForUnknownTraceOrOtherTenant()
    {
        var trace = NewTrace();
        var bare = NewTrace();
        await Store.AppendAsync([Stored(_tenant, trace, 2, context: "late"), Stored(_tenant, trace, 0), Stored(_tenant, trace, 1, context: "first"), Stored(_tenant, bare, 0)]);

        (await Store.GetTraceConversationAsync(_tenant, trace)).Should().Be((true, "first"));
        (await Store.GetTraceConversationAsync(_tenant, bare)).Should().Be((true, (string?)null));
        (await Store.GetTraceConversationAsync(_tenant, NewTrace())).Should().Be((false, (string?)null));
        (await Store.GetTraceConversationAsync(NewTenant(), trace)).Should().Be((false, (string?)null));
    }

    [Fact]
    public async Task GetTraceRows_SameStepsAndPayloadsAsAWholeRead()
    {
        // Out of order, ties on the index broken by start then id, payloads of every shape and none.
        var trace = NewTrace();
        TenantStep At(int index, string id, double startMs, object? inputs, object? outputs, object? metadata)
        {
            var stored = Stored(_tenant, trace, index, startMs: startMs);
            return stored with
            {
                Step = stored.Step with
                {
                    StepId = id,
                    Inputs = inputs is null ? null : Json(inputs),
                    Outputs = outputs is null ? null : Json(outputs),
                    Metadata = metadata is null ? null : Json(metadata),
                },
            };
        }
        await Store.AppendAsync([
            At(2, "s2", 5, new { q = "青霉素 \"x\"", n = 2.5 }, new[] { 1, 2 }, null),
            At(0, "b", 0, null, null, null),
            At(0, "a", 0, "text", null, new { k = true }),
            At(1, "s1", 9, null, 42, null),
            At(1, "s1-early", 3, new { }, false, null),
        ]);

        var whole = await Store.GetTraceAsync(_tenant, trace);
        var rows = await Store.GetTraceRowsAsync(_tenant, trace);

        whole.Select(s => s.StepId).Should().Equal("a", "b", "s1-early", "s1", "s2");
        rows.Steps.Select(s => s.StepId).Should().Equal(whole.Select(s => s.StepId));
        // Whatever the store handed over (whole steps, raw payloads, or heads with their stored answers),
        // the tree answer written from the rows is the serializer's document of the whole steps' view.
        (await TreeAnswerAsync(trace, rows)).Should().Be(Normalized(JsonSerializer.Serialize(TraceViewBuilder.Build(trace, whole), ContractsJson.Options)));
        (await Store.GetTraceRowsAsync(NewTenant(), trace)).Steps.Should().BeEmpty();
    }

    /// <summary>The <c>GET /v1/traces/{traceId}</c> answer of a read, normalised (whitespace, escaping).</summary>
    public static async Task<string> TreeAnswerAsync(string trace, TraceRows rows)
    {
        using var body = new MemoryStream();
        await TraceViewJson.WriteAsync(body, TraceViewBuilder.Build(trace, rows.Steps), rows.Payloads);
        return Normalized(Encoding.UTF8.GetString(body.ToArray()));
    }

    /// <summary>The same document whatever the whitespace and string escaping; property order still counts.</summary>
    public static string Normalized(string json) => JsonNode.Parse(json)!.ToJsonString();
}

public sealed class InMemoryTraceStoreTests : TraceStoreBehaviour
{
    protected override ITraceStore Store { get; } = new InMemoryTraceStore();
}

public sealed class PostgresTraceStoreTests : TraceStoreBehaviour, IAsyncLifetime
{
    private readonly NpgsqlDataSource _dataSource = NpgsqlDataSource.Create(PostgresTestServer.ConnectionString);
    private PostgresTraceStore? _store;

    protected override ITraceStore Store => _store!;

    public async Task InitializeAsync()
    {
        _store = new PostgresTraceStore(_dataSource);
        await _store.MigrateAsync();
    }

    public async Task DisposeAsync() => await _dataSource.DisposeAsync();
}
