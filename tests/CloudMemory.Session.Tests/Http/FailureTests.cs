using System.Net;
using CloudMemory.BuildingBlocks.Embedded;
using CloudMemory.BuildingBlocks.State;
using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Session.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.Session.Tests.Http;

/// <summary>What a failing state store does to a turn, and how a retry heals it.</summary>
public sealed class FailureTests : IDisposable
{
    private readonly FlakyStateStore _store = new(new InMemoryStateStore(TimeProvider.System));
    private readonly CloudMemoryFactory _factory;

    public FailureTests()
    {
        _factory = new CloudMemoryFactory(LogKind.InMemory);
        _factory.Configure = builder => builder.ConfigureTestServices(services => services.AddSingleton<IStateStore>(_store));
    }

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task WriteTurn_WhenTheSessionSaveFails_Is500_AndARetryWithTheSameTurnIdHealsWithoutDuplicating()
    {
        var client = _factory.CreateClient();
        (await client.PostJsonAsync("/v1/sessions", new CreateSessionRequest("flaky", "u-flaky"))).StatusCode.Should().Be(HttpStatusCode.Created);

        _store.FailNextSaves = 1;
        var failed = await client.PostJsonAsync("/v1/sessions/flaky/turns", new WriteTurnRequest(null, "triage", "I feel dizzy", "Sit down, please.", "turn-1"));
        await failed.ProblemAsync(500);

        var retried = await (await client.PostJsonAsync("/v1/sessions/flaky/turns", new WriteTurnRequest(null, "triage", "I feel dizzy", "Sit down, please.", "turn-1"))).ReadAsync<WriteTurnResult>();
        retried.TurnCount.Should().Be(1);
        var session = await (await client.GetAsync("/v1/sessions/flaky")).ReadAsync<SessionValue>();
        session.FlowContext.TurnCount.Should().Be(1);
        session.FlowContext.LastBotMessage.Should().Be("Sit down, please.");
        (await (await client.GetAsync("/v1/conversations/flaky/messages")).ReadAsync<MessagePage>()).Messages.Should().ContainSingle();
    }

    private sealed class FlakyStateStore(IStateStore inner) : IStateStore
    {
        private int _failNextSaves;

        public int FailNextSaves
        {
            set => Volatile.Write(ref _failNextSaves, value);
        }

        public string StoreName => inner.StoreName;

        public Task<StateEntry?> GetAsync(string key, StateConsistency consistency = StateConsistency.Strong, CancellationToken cancellationToken = default) =>
            inner.GetAsync(key, consistency, cancellationToken);

        public Task<IReadOnlyList<BulkStateEntry>> GetBulkAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken = default) =>
            inner.GetBulkAsync(keys, cancellationToken);

        public Task SaveAsync(string key, ReadOnlyMemory<byte> value, string? etag = null, StateWriteOptions? options = null, CancellationToken cancellationToken = default) =>
            Interlocked.Decrement(ref _failNextSaves) >= 0
                ? throw new IOException("state store unavailable")
                : inner.SaveAsync(key, value, etag, options, cancellationToken);

        public Task DeleteAsync(string key, string? etag = null, StateWriteOptions? options = null, CancellationToken cancellationToken = default) =>
            inner.DeleteAsync(key, etag, options, cancellationToken);

        public Task ExecuteTransactionAsync(IReadOnlyList<StateOperation> operations, CancellationToken cancellationToken = default) =>
            inner.ExecuteTransactionAsync(operations, cancellationToken);
    }
}
