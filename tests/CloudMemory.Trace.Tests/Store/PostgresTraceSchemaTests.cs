using System.Text.Json;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Traces;
using CloudMemory.Testing;
using CloudMemory.Trace.Features.Read;
using CloudMemory.Trace.Features.Steps;
using Npgsql;
using static CloudMemory.Trace.Tests.Infrastructure.Steps;
using static CloudMemory.Trace.Tests.Store.TraceStoreBehaviour;

namespace CloudMemory.Trace.Tests.Store;

/// <summary>
/// The PostgreSQL trace schema across versions: steps stored before the step answers were kept
/// (schema version 1, and older rows stored as JSON) answer the tree read exactly as new ones do.
/// </summary>
public sealed class PostgresTraceSchemaTests
{
    private readonly string _tenant = NewTenant();

    [Fact]
    public async Task Migrate_FromVersion1_OldAndNewStepsOfOneTraceAnswerTheSameDocument()
    {
        await using var database = await PostgresScratchDatabase.CreateAsync("trace_schema");
        await using var dataSource = NpgsqlDataSource.Create(database.ConnectionString);
        var store = new PostgresTraceStore(dataSource);
        var trace = NewTrace();
        var steps = Tree(trace);
        // A database of version 1: its steps have no stored answer, and one of them is a row from
        // before the binary form (its doc is the step's JSON).
        await store.MigrateAsync();
        await store.AppendAsync([.. steps.Take(3).Select(s => new TenantStep(_tenant, s, 0))]);
        await ExecuteAsync(dataSource, """
            ALTER TABLE cm_trace_steps DROP COLUMN answer;
            UPDATE cm_schema_versions SET version = 1 WHERE component = 'trace';
            """);
        await using (var json = dataSource.CreateCommand("UPDATE cm_trace_steps SET doc = $1 WHERE tenant_id = $2 AND trace_id = $3 AND step_id = 's1'"))
        {
            json.Parameters.Add(new() { Value = JsonSerializer.SerializeToUtf8Bytes(steps[1], ContractsJson.Options) });
            json.Parameters.Add(new() { Value = _tenant });
            json.Parameters.Add(new() { Value = trace });
            await json.ExecuteNonQueryAsync();
        }

        await store.MigrateAsync();
        await store.AppendAsync([.. steps.Skip(3).Select(s => new TenantStep(_tenant, s, 0))]);

        (await ScalarAsync(dataSource, "SELECT version FROM cm_schema_versions WHERE component = 'trace'")).Should().Be(2);
        (await ScalarAsync(dataSource, "SELECT count(*)::int FROM cm_trace_steps WHERE answer IS NULL")).Should().Be(3, "the steps stored before keep no answer");
        var rows = await store.GetTraceRowsAsync(_tenant, trace);
        rows.Payloads!.Count(p => !p.Answer.IsEmpty).Should().Be(steps.Count - 3);
        (await TreeAnswerAsync(trace, rows)).Should().Be(Expected(trace, steps));
        (await store.GetTraceAsync(_tenant, trace)).Select(s => JsonSerializer.Serialize(s, ContractsJson.Options))
            .Should().Equal(steps.Select(s => JsonSerializer.Serialize(s, ContractsJson.Options)), "whole reads do not use the answers");
    }

    [Fact]
    public async Task GetTraceRows_StoredAnswerOfAnotherFormat_StepAnsweredFromItsRecord()
    {
        // An answer written by a later format (or damaged) is never copied out: that step is answered from its binary record.
        await using var dataSource = NpgsqlDataSource.Create(PostgresTestServer.ConnectionString);
        var store = new PostgresTraceStore(dataSource);
        await store.MigrateAsync();
        var trace = NewTrace();
        var steps = Tree(trace);
        await store.AppendAsync([.. steps.Select(s => new TenantStep(_tenant, s, 0))]);
        await using (var update = dataSource.CreateCommand("UPDATE cm_trace_steps SET answer = $1 WHERE tenant_id = $2 AND trace_id = $3 AND step_id = 's2'"))
        {
            update.Parameters.Add(new() { Value = (byte[])[StepJson.AnswerFormat + 1, .. "{\"stepId\":\"not this\"}"u8] });
            update.Parameters.Add(new() { Value = _tenant });
            update.Parameters.Add(new() { Value = trace });
            (await update.ExecuteNonQueryAsync()).Should().Be(1);
        }

        var rows = await store.GetTraceRowsAsync(_tenant, trace);

        rows.Payloads![2].Answer.IsEmpty.Should().BeTrue();
        (await TreeAnswerAsync(trace, rows)).Should().Be(Expected(trace, steps));
    }

    // A small tree with every kind of field: payloads of each shape, an error, usage, causal links, an audit.
    private static List<TraceStep> Tree(string trace)
    {
        var root = TraceStoreBehaviour.Stored("x", trace, 0, agent: "planner", type: StepTypes.Plan, name: "plan 计划", durationMs: 500, context: "conv-1").Step with
        {
            Inputs = Json(new { query = "青霉素 allergy \"quoted\" <b>", nested = new object[] { 1, 2.5, true, 1e-7 } }),
            Metadata = Json(new { model = "gpt-4o" }),
            Usage = new TokenUsage(120, 30),
            Cost = 0.0042,
            Tags = ["prod"],
            Audit = new StepAudit(["medical"], ["allergy"], [new AuditFinding("allergy", "inputs.query", 1)], [], ["hipaa:phi"], "violation", ["unredacted-allergy"]),
        };
        var failed = TraceStoreBehaviour.Stored("x", trace, 1, agent: "worker", startMs: 10, durationMs: 100, success: false, memoryIds: ["mem-1"]).Step with
        {
            ParentStepId = "s0",
            Error = new StepError("timeout", "no answer\nin 100 ms"),
            SpawnedBy = "s0",
            DelegatedTo = "helper",
            Outputs = Json("partial"),
        };
        var retry = failed with { StepId = "s2", StepIndex = 2, StartedAt = T0.AddMilliseconds(120), RetryOf = "s1", Success = true, Error = null, Outputs = Json(new[] { 1, 2 }) };
        var child = TraceStoreBehaviour.Stored("x", trace, 3, agent: "worker", type: StepTypes.Llm, name: "answer", startMs: 130, durationMs: 40).Step with
        {
            ParentStepId = "s2",
            Usage = new TokenUsage(10, 5),
            Inputs = Json(new { }),
            Outputs = Json(42),
        };
        var last = TraceStoreBehaviour.Stored("x", trace, 4, agent: "planner", startMs: 480, durationMs: 15, context: "conv-1").Step with { ParentStepId = "s0" };
        return [root, failed, retry, child, last];
    }

    private static string Expected(string trace, IReadOnlyList<TraceStep> steps) =>
        Normalized(JsonSerializer.Serialize(TraceViewBuilder.Build(trace, steps), ContractsJson.Options));

    private static async Task ExecuteAsync(NpgsqlDataSource dataSource, string sql)
    {
        await using var command = dataSource.CreateCommand(sql);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<int> ScalarAsync(NpgsqlDataSource dataSource, string sql)
    {
        await using var command = dataSource.CreateCommand(sql);
        return (int)(await command.ExecuteScalarAsync())!;
    }
}
