using System.Net;
using CloudMemory.Contracts.Traces;
using CloudMemory.Trace.Features.Read;
using CloudMemory.Trace.Tests.Infrastructure;
using static CloudMemory.Trace.Tests.Infrastructure.Steps;

namespace CloudMemory.Trace.Tests.Http;

/// <summary>Issue 10 "done when": no acknowledged step is lost across a PostgreSQL restart.</summary>
public sealed class PostgresRestartTests : IDisposable
{
    private readonly RestartablePostgres _postgres = new();

    public void Dispose() => _postgres.Dispose();

    [Fact]
    public async Task Ingest_WhilePostgresRestarts_AcknowledgedAfterItIsBackAndNothingLost()
    {
        using var host = new TraceHost(StoreKind.Postgres, _postgres.ConnectionString);
        var client = host.Client(NewTenant());
        var trace = NewTrace();
        (await client.PostJsonAsync("/v1/traces/steps", new IngestStepsRequest([.. Enumerable.Range(0, 50).Select(i => Step(trace, i))])))
            .StatusCode.Should().Be(HttpStatusCode.Accepted);

        _postgres.Stop();
        var during = Enumerable.Range(0, 5)
            .Select(w => client.PostJsonAsync("/v1/traces/steps", new IngestStepsRequest([.. Enumerable.Range(0, 20).Select(i => Step(trace, 50 + w * 20 + i))])))
            .ToList();
        await Task.Delay(1500); // the database is down for this long; nothing may be acknowledged meanwhile
        during.Should().OnlyContain(t => !t.IsCompleted, "a step is acknowledged only once it is durable");
        _postgres.Start();

        foreach (var response in await Task.WhenAll(during))
        {
            response.StatusCode.Should().Be(HttpStatusCode.Accepted);
        }
        var view = await (await client.GetAsync($"/v1/traces/{trace}")).ReadAsync<TraceView>();
        view.Steps.Select(s => s.StepIndex).Should().Equal(Enumerable.Range(0, 150));
    }

    [Fact]
    public async Task Ingest_StoreDownLongerThanTheTimeout_ServiceUnavailableAndNothingAcknowledged()
    {
        using var host = new TraceHost(StoreKind.Postgres, _postgres.ConnectionString, new Dictionary<string, string?> { ["CloudMemory:Trace:AckTimeout"] = "00:00:01" });
        var client = host.Client(NewTenant());
        var trace = NewTrace();
        (await client.GetAsync("/healthz")).EnsureSuccessStatusCode();

        _postgres.Stop();
        var response = await client.PostJsonAsync("/v1/traces/steps", Batch(Step(trace, 0)));
        _postgres.Start();

        var problem = await response.ProblemAsync(503);
        problem.GetProperty("code").GetString().Should().Be("trace-store-unavailable");
        // The client retries; the retry is stored exactly once.
        (await (await client.PostJsonAsync("/v1/traces/steps", Batch(Step(trace, 0)))).ReadAsync<IngestStepsResult>()).Accepted.Should().Be(1);
        (await (await client.GetAsync($"/v1/traces/{trace}")).ReadAsync<TraceView>()).Steps.Should().ContainSingle();
    }
}
