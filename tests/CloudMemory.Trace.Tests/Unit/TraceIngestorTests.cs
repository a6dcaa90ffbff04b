using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.Contracts.Traces;
using CloudMemory.Trace.Features.Steps;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using static CloudMemory.Trace.Tests.Infrastructure.Steps;

namespace CloudMemory.Trace.Tests.Unit;

/// <summary>The ingest write path (a caller storing its own batch, or the group commit of the write loops): an acknowledgement means stored, once.</summary>
public sealed class TraceIngestorTests
{
    [Fact]
    public async Task Ingest_StoreFailsThenRecovers_EveryWriterAcknowledgedAndEveryStepStoredOnce()
    {
        var store = new FlakyStore(failures: 3);
        await using var ingestor = Ingestor(store, TimeSpan.FromSeconds(30));
        var tenant = NewTenant();

        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(w => Task.Run(() =>
            ingestor.IngestAsync(tenant, [.. Enumerable.Range(0, 50).Select(i => Step($"w{w}", i))], null))));

        results.Should().AllSatisfy(r => r.Should().Be(new IngestStepsResult(50, 50, 0)));
        store.Failed.Should().Be(3);
        for (var w = 0; w < 8; w++)
        {
            (await store.GetTraceAsync(tenant, $"w{w}")).Select(s => s.StepIndex).Should().Equal(Enumerable.Range(0, 50));
        }
    }

    [Fact]
    public async Task Ingest_StoreStaysDown_UnavailableAfterTheAckTimeoutAndNothingStored()
    {
        var store = new FlakyStore(failures: int.MaxValue);
        await using var ingestor = Ingestor(store, TimeSpan.FromMilliseconds(300));
        var tenant = NewTenant();

        var act = () => ingestor.IngestAsync(tenant, [Step("t", 0), Step("t", 1)], null);

        (await act.Should().ThrowAsync<ProblemException>()).Which.Code.Should().Be("trace-store-unavailable");
        (await store.Inner.GetTraceAsync(tenant, "t")).Should().BeEmpty();
    }

    [Fact]
    public async Task Ingest_ConcurrentRetriesOfOneBatch_InsertedOnceReportedAsDuplicatesElsewhere()
    {
        var store = new FlakyStore(failures: 0);
        await using var ingestor = Ingestor(store, TimeSpan.FromSeconds(30));
        var tenant = NewTenant();
        TraceStepInput[] batch = [.. Enumerable.Range(0, 100).Select(i => Step("same", i))];

        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => ingestor.IngestAsync(tenant, batch, null))));

        results.Sum(r => r.Inserted).Should().Be(100);
        results.Sum(r => r.Duplicates).Should().Be(700);
        (await store.GetTraceAsync(tenant, "same")).Should().HaveCount(100);
    }

    private static TraceIngestor Ingestor(ITraceStore store, TimeSpan ackTimeout) =>
        new(store, new NoPublisher(), Options.Create(new TraceOptions { AckTimeout = ackTimeout }), TimeProvider.System, NullLogger<TraceIngestor>.Instance);

    // An in-memory store whose first appends fail, as PostgreSQL does while it restarts.
    private sealed class FlakyStore(int failures) : ITraceStore
    {
        private int _failures = failures;

        public InMemoryTraceStore Inner { get; } = new();

        public int Failed { get; private set; }

        public Task<bool[]> AppendAsync(IReadOnlyList<TenantStep> steps, CancellationToken cancellationToken = default)
        {
            lock (Inner)
            {
                if (_failures > 0)
                {
                    _failures--;
                    Failed++;
                    throw new InvalidOperationException("store down");
                }
            }
            return Inner.AppendAsync(steps, cancellationToken);
        }

        public Task<IReadOnlyList<TraceStep>> GetTraceAsync(string tenantId, string traceId, CancellationToken cancellationToken = default) => Inner.GetTraceAsync(tenantId, traceId, cancellationToken);

        public Task<TraceRows> GetTraceRowsAsync(string tenantId, string traceId, CancellationToken cancellationToken = default) => Inner.GetTraceRowsAsync(tenantId, traceId, cancellationToken);

        public Task<(bool Found, string? ContextId)> GetTraceConversationAsync(string tenantId, string traceId, CancellationToken cancellationToken = default) => Inner.GetTraceConversationAsync(tenantId, traceId, cancellationToken);

        public Task<TraceStep?> GetStepAsync(string tenantId, string traceId, string stepId, CancellationToken cancellationToken = default) => Inner.GetStepAsync(tenantId, traceId, stepId, cancellationToken);

        public Task<int?> GetMaxStepIndexAsync(string tenantId, string traceId, CancellationToken cancellationToken = default) => Inner.GetMaxStepIndexAsync(tenantId, traceId, cancellationToken);

        public Task<IReadOnlyList<TraceStep>> GetContextStepsAsync(string tenantId, string contextId, int limit, CancellationToken cancellationToken = default) => Inner.GetContextStepsAsync(tenantId, contextId, limit, cancellationToken);

        public Task<IReadOnlyList<TraceStep>> GetAgentStepsAsync(string tenantId, string agentId, int limit, CancellationToken cancellationToken = default) => Inner.GetAgentStepsAsync(tenantId, agentId, limit, cancellationToken);

        public Task LinkMemoriesAsync(string tenantId, IReadOnlyList<MemoryLink> links, CancellationToken cancellationToken = default) => Inner.LinkMemoriesAsync(tenantId, links, cancellationToken);

        public Task<IReadOnlyList<TraceStep>> GetMemoryProvenanceAsync(string tenantId, string memoryId, CancellationToken cancellationToken = default) => Inner.GetMemoryProvenanceAsync(tenantId, memoryId, cancellationToken);

        public Task<IReadOnlyList<TraceStep>> GetSensitiveStepsAsync(string tenantId, DateTimeOffset from, DateTimeOffset to, int limit, CancellationToken cancellationToken = default) => Inner.GetSensitiveStepsAsync(tenantId, from, to, limit, cancellationToken);

        public Task<TraceStep?> FindLastSuccessAsync(string tenantId, string agentId, string stepType, string name, DateTimeOffset before, CancellationToken cancellationToken = default) => Inner.FindLastSuccessAsync(tenantId, agentId, stepType, name, before, cancellationToken);

        public Task<IReadOnlyList<DurationStats>> GetDurationStatsAsync(string tenantId, CancellationToken cancellationToken = default) => Inner.GetDurationStatsAsync(tenantId, cancellationToken);

        public Task<long> DeleteOlderThanAsync(string tenantId, DateTimeOffset cutoff, CancellationToken cancellationToken = default) => Inner.DeleteOlderThanAsync(tenantId, cutoff, cancellationToken);

        public Task<long> DeleteContextsAsync(string tenantId, IReadOnlyCollection<string> contextIds, CancellationToken cancellationToken = default) => Inner.DeleteContextsAsync(tenantId, contextIds, cancellationToken);
    }

    private sealed class NoPublisher : IEventPublisher
    {
        public Task<string> PublishAsync<T>(string topic, string eventType, T data, PublishOptions? options = null, CancellationToken cancellationToken = default) =>
            Task.FromResult(options?.EventId ?? "");
    }
}
