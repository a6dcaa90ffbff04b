using System.Text.Json;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Traces;
using CloudMemory.Trace.Features.Audit;
using CloudMemory.Trace.Features.Read;
using CloudMemory.Trace.Tests.Infrastructure;
using static CloudMemory.Trace.Tests.Infrastructure.Steps;

namespace CloudMemory.Trace.Tests.Http;

/// <summary>Classification, redaction and alerts at ingest, run on both stores.</summary>
public abstract class AuditBehaviour(TraceHost host)
{
    private readonly string _tenant = NewTenant();

    private HttpClient Client => _client ??= host.Client(_tenant);

    private HttpClient? _client;

    [Fact]
    public async Task Ingest_PiiAndMedicalStep_ClassifiedRedactedStoredAndAlerted()
    {
        var trace = NewTrace();
        await Client.PostJsonAsync("/v1/traces/steps", Batch(
            Step(trace, 0, inputs: new { question = "What is the weather?" }),
            Step(trace, 1, StepTypes.Llm, context: "c-77",
                inputs: new { messages = new[] { new { role = "user", content = "I'm jane.doe@example.com, call me on +1 415-555-0132. I am allergic to penicillin and have type 2 diabetes." } } },
                outputs: new { answer = "Avoid amoxicillin; keep taking metformin." })));

        var stored = (await (await Client.GetAsync($"/v1/traces/{trace}")).ReadAsync<TraceView>()).Steps[1];

        var content = stored.Inputs!.Value.GetProperty("messages")[0].GetProperty("content").GetString();
        content.Should().NotContain("jane.doe@example.com").And.NotContain("555-0132").And.Contain("[REDACTED:email]").And.Contain("[REDACTED:phone]");
        content.Should().Contain("penicillin", "medical terms are classified but kept by default");
        stored.Audit.Sensitivity.Should().Equal("pii", "medical");
        stored.Audit.Kinds.Should().Equal("allergy", "condition", "drug", "email", "phone");
        stored.Audit.Redacted.Should().Equal("email", "phone");
        stored.Audit.Status.Should().Be("violation");
        stored.Audit.Violations.Should().Equal("unredacted-allergy", "unredacted-condition", "unredacted-drug");
        stored.Audit.ComplianceTags.Should().Contain("hipaa:phi").And.Contain("gdpr:personal-data");
        stored.Audit.Findings.Should().ContainEquivalentOf(new AuditFinding("email", "inputs.messages[0].content", 1));
        stored.Audit.Findings.Should().ContainEquivalentOf(new AuditFinding("drug", "outputs.answer", 2));

        var alert = host.Events(TraceEvents.ComplianceAlertType).Should().ContainSingle(e => e.TenantId == _tenant).Subject;
        alert.Topic.Should().Be(TraceEvents.ComplianceAlertTopic);
        var data = alert.Data.Deserialize<TraceComplianceAlert>(ContractsJson.Options)!;
        (data.TraceId, data.StepId, data.ContextId).Should().Be((trace, "s1", "c-77"));
        data.Violations.Should().Contain("unredacted-allergy");

        var report = await (await Client.GetAsync($"/v1/traces/{trace}/audit")).ReadAsync<TraceAuditReport>();
        report.Status.Should().Be("violation");
        report.Steps.Select(s => s.Audit.Status).Should().Equal("compliant", "violation");
        report.Summary.StepsWithPii.Should().Be(1);
        report.Summary.ByKind["email"].Should().Be(1);
        report.Alerts.Should().ContainSingle(a => a.StepId == "s1");
    }

    [Fact]
    public async Task Ingest_ChineseMedicalAndIdNumber_Classified()
    {
        var trace = NewTrace();
        // 11010519491231002X is the standard example resident ID (valid check digit).
        await Client.PostJsonAsync("/v1/traces/steps", Batch(Step(trace, 0, inputs: new { text = "患者身份证11010519491231002X，手机13812345678，有高血压，对青霉素过敏，正在服用阿司匹林。" })));

        var stored = (await (await Client.GetAsync($"/v1/traces/{trace}")).ReadAsync<TraceView>()).Steps[0];

        stored.Audit.Kinds.Should().Equal("allergy", "condition", "drug", "id_number", "phone");
        var text = stored.Inputs!.Value.GetProperty("text").GetString();
        text.Should().Contain("[REDACTED:id_number]").And.Contain("[REDACTED:phone]").And.NotContain("13812345678");
    }

    [Fact]
    public async Task Ingest_NumbersThatAreNotPersonalData_NotFlagged()
    {
        var trace = NewTrace();
        await Client.PostJsonAsync("/v1/traces/steps", Batch(Step(trace, 0,
            inputs: new { ts = "1795259391", order = "110105194912310021", version = "1.2.3", date = "2026-11-28" })));

        var stored = (await (await Client.GetAsync($"/v1/traces/{trace}")).ReadAsync<TraceView>()).Steps[0];

        stored.Audit.Status.Should().Be("compliant");
        stored.Audit.Kinds.Should().BeEmpty();
        host.Events(TraceEvents.ComplianceAlertType).Should().NotContain(e => e.TenantId == _tenant);
    }

    [Fact]
    public async Task Ingest_DuplicateOfAlertedStep_NoSecondAlert()
    {
        var trace = NewTrace();
        var step = Step(trace, 0, inputs: new { note = "history of asthma" });
        await Client.PostJsonAsync("/v1/traces/steps", Batch(step));
        await Client.PostJsonAsync("/v1/traces/steps", Batch(step));

        host.Events(TraceEvents.ComplianceAlertType).Count(e => e.TenantId == _tenant).Should().Be(1);
    }

    [Fact]
    public async Task TenantAudit_SensitiveStepsInRange()
    {
        var t1 = NewTrace();
        await Client.PostJsonAsync("/v1/traces/steps", Batch(Step(t1, 0, inputs: new { e = "a@b.io" }), Step(t1, 1), Step(t1, 2, startMs: 86_400_000, inputs: new { e = "c@d.io" })));

        var from = Uri.EscapeDataString(T0.AddMinutes(-1).ToString("O"));
        var to = Uri.EscapeDataString(T0.AddHours(1).ToString("O"));
        var report = await (await Client.GetAsync($"/v1/audit/steps?from={from}&to={to}")).ReadAsync<TenantAuditReport>();

        report.Steps.Select(s => (s.TraceId, s.StepIndex)).Should().Equal((t1, 0));
        report.Summary.Redacted.Should().Be(1);
        report.Alerts.Should().BeEmpty("an email is redacted by default: no violation");
    }
}

public sealed class AuditInMemory(InMemoryTraceHost host) : AuditBehaviour(host), IClassFixture<InMemoryTraceHost>;

public sealed class AuditPostgres(PostgresTraceHost host) : AuditBehaviour(host), IClassFixture<PostgresTraceHost>;

/// <summary>Redaction is configurable: here medical data is redacted too and nothing is left to alert on.</summary>
public sealed class AuditRedactEverythingTests
{
    public sealed class Host() : TraceHost(StoreKind.InMemory, settings: new Dictionary<string, string?>
    {
        ["CloudMemory:Trace:Audit:Redact"] = "email,phone,id_number,condition,drug,allergy",
    });

    [Fact]
    public async Task Ingest_AllKindsRedacted_StatusRedactedAndNoAlert()
    {
        using var host = new Host();
        var tenant = NewTenant();
        var client = host.Client(tenant);
        var trace = NewTrace();
        await client.PostJsonAsync("/v1/traces/steps", Batch(Step(trace, 0, inputs: new { note = "Diabetes; takes insulin" })));

        var stored = (await (await client.GetAsync($"/v1/traces/{trace}")).ReadAsync<TraceView>()).Steps[0];

        stored.Inputs!.Value.GetProperty("note").GetString().Should().Be("[REDACTED:condition]; takes [REDACTED:drug]");
        stored.Audit.Status.Should().Be("redacted");
        host.Events(TraceEvents.ComplianceAlertType).Should().BeEmpty();
    }
}
