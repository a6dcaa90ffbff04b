using CloudMemory.Client;
using CloudMemory.Contracts.Traces;
using CloudMemory.Trace.Features.Read;
using CloudMemory.Trace.Tests.Infrastructure;
using static CloudMemory.Trace.Tests.Infrastructure.Steps;

namespace CloudMemory.Trace.Tests.Client;

public sealed class TraceWriterTests(InMemoryTraceHost host) : IClassFixture<InMemoryTraceHost>
{
    [Fact]
    public async Task Record_ManyStepsFromManyTasks_AllAcknowledgedAfterFlush()
    {
        var tenant = NewTenant();
        var http = host.Client(tenant);
        var client = new CloudMemoryClient(http, new CloudMemoryClientOptions { TenantId = tenant });
        var trace = NewTrace();
        await using var writer = new TraceWriter(client, new TraceWriterOptions { MaxBatch = 100 });

        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() =>
        {
            for (var i = 0; i < 250; i++)
            {
                var index = writer.NextStepIndex(trace);
                writer.Record(Step(trace, index)).Should().BeTrue();
            }
        })));
        await writer.FlushAsync();

        writer.Sent.Should().Be(2000);
        var view = await client.GetTraceAsync(trace);
        view.GetProperty("steps").GetArrayLength().Should().Be(2000);
        view.GetProperty("rollup").GetProperty("stepCount").GetInt32().Should().Be(2000);
    }

    [Fact]
    public async Task GetTraceStep_RecordedStep_ReadAloneAndNullWhenUnknown()
    {
        var tenant = NewTenant();
        var client = new CloudMemoryClient(host.Client(tenant), new CloudMemoryClientOptions { TenantId = tenant });
        var trace = NewTrace();
        await client.IngestStepsAsync([Step(trace, 0, StepTypes.Plan), Step(trace, 1, StepTypes.Tool, "lookup", parent: "s0", outputs: new { rows = 4 })]);

        var step = await client.GetTraceStepAsync(trace, "s1");

        step.Should().NotBeNull();
        step!.Name.Should().Be("lookup");
        step.ParentStepId.Should().Be("s0");
        step.Outputs!.Value.GetProperty("rows").GetInt32().Should().Be(4);
        (await client.GetTraceStepAsync(trace, "s7")).Should().BeNull();
        (await new CloudMemoryClient(host.Client(NewTenant()), new CloudMemoryClientOptions()).GetTraceStepAsync(trace, "s1")).Should().BeNull("another tenant's step");
    }

    [Fact]
    public async Task GetTraceConversation_TheFirstConversationNamed_NullForAnUnknownTrace()
    {
        var tenant = NewTenant();
        var client = new CloudMemoryClient(host.Client(tenant), new CloudMemoryClientOptions { TenantId = tenant });
        var trace = NewTrace();
        await client.IngestStepsAsync([Step(trace, 1, context: "conv-b"), Step(trace, 0, context: "conv-a")]);

        (await client.GetTraceConversationAsync(trace)).Should().Be(new TraceConversation(trace, "conv-a"));
        (await client.GetTraceConversationAsync(NewTrace())).Should().BeNull();
    }

    [Fact]
    public async Task Record_InvalidStep_RejectedAndReportedOthersStillSent()
    {
        var tenant = NewTenant();
        var client = new CloudMemoryClient(host.Client(tenant), new CloudMemoryClientOptions { TenantId = tenant });
        var trace = NewTrace();
        var rejected = new List<CloudMemoryException>();
        await using var writer = new TraceWriter(client, new TraceWriterOptions { OnRejected = (ex, _) => rejected.Add(ex) });

        writer.Record(Step(trace, 0) with { StepType = "nonsense" });
        await writer.FlushAsync();
        writer.Record(Step(trace, 1));
        await writer.FlushAsync();

        rejected.Should().ContainSingle().Which.Code.Should().Be("invalid-stepType");
        writer.Rejected.Should().Be(1);
        var result = await client.IngestStepsAsync([Step(trace, 1)]);
        result.Duplicates.Should().Be(1, "the valid step was sent");
    }
}
