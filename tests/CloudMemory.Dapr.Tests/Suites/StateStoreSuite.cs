using System.Text;
using CloudMemory.BuildingBlocks.Embedded;
using CloudMemory.BuildingBlocks.State;
using CloudMemory.Dapr.Tests.FakeSidecar;

namespace CloudMemory.Dapr.Tests.Suites;

/// <summary>The state store port's behaviour, written once and run against every implementation.</summary>
public abstract class StateStoreSuite : IAsyncLifetime
{
    protected ManualTimeProvider Clock { get; } = new();

    protected IStateStore Store { get; private set; } = null!;

    protected abstract Task<IStateStore> CreateAsync(ManualTimeProvider clock);

    public async Task InitializeAsync() => Store = await CreateAsync(Clock);

    public virtual Task DisposeAsync() => Task.CompletedTask;

    private static byte[] Json(string json) => Encoding.UTF8.GetBytes(json);

    private static string Text(ReadOnlyMemory<byte> value) => Encoding.UTF8.GetString(value.Span);

    [Fact]
    public async Task Get_MissingKey_ReturnsNull()
    {
        (await Store.GetAsync("nope")).Should().BeNull();
    }

    [Fact]
    public async Task Save_ThenGet_ReturnsValueAndETag()
    {
        await Store.SaveAsync("k1", Json("""{"a":1}"""));
        var entry = await Store.GetAsync("k1");
        entry.Should().NotBeNull();
        Text(entry!.Value).Should().Be("""{"a":1}""");
        entry.ETag.Should().NotBeNullOrEmpty();
    }

    [Fact]
    public async Task Save_WithCurrentETag_SucceedsAndChangesETag()
    {
        await Store.SaveAsync("k", Json("1"));
        var first = (await Store.GetAsync("k"))!;
        await Store.SaveAsync("k", Json("2"), first.ETag);
        var second = (await Store.GetAsync("k"))!;
        Text(second.Value).Should().Be("2");
        second.ETag.Should().NotBe(first.ETag);
    }

    [Fact]
    public async Task Save_WithStaleETag_ThrowsStateConcurrencyException()
    {
        await Store.SaveAsync("k", Json("1"));
        var stale = (await Store.GetAsync("k"))!.ETag;
        await Store.SaveAsync("k", Json("2"));
        var act = () => Store.SaveAsync("k", Json("3"), stale);
        (await act.Should().ThrowAsync<StateConcurrencyException>()).Which.Key.Should().Be("k");
        Text((await Store.GetAsync("k"))!.Value).Should().Be("2");
    }

    [Fact]
    public async Task Delete_WithStaleETag_ThrowsAndKeepsKey()
    {
        await Store.SaveAsync("k", Json("1"));
        var stale = (await Store.GetAsync("k"))!.ETag;
        await Store.SaveAsync("k", Json("2"));
        await Store.Invoking(s => s.DeleteAsync("k", stale)).Should().ThrowAsync<StateConcurrencyException>();
        (await Store.GetAsync("k")).Should().NotBeNull();
    }

    [Fact]
    public async Task Delete_WithoutETag_RemovesKey_AndMissingKeySucceeds()
    {
        await Store.SaveAsync("k", Json("1"));
        await Store.DeleteAsync("k");
        (await Store.GetAsync("k")).Should().BeNull();
        await Store.DeleteAsync("never-there");
    }

    [Fact]
    public async Task FirstWrite_WhenKeyAbsent_Succeeds_ThenSecondFirstWriteThrows()
    {
        var firstWrite = new StateWriteOptions(StateConcurrency.FirstWrite);
        await Store.SaveAsync("fw", Json("1"), options: firstWrite);
        await Store.Invoking(s => s.SaveAsync("fw", Json("2"), options: firstWrite)).Should().ThrowAsync<StateConcurrencyException>();
        Text((await Store.GetAsync("fw"))!.Value).Should().Be("1");
    }

    [Fact]
    public async Task Ttl_AfterExpiry_KeyIsGone()
    {
        await Store.SaveAsync("ttl", Json("1"), options: new StateWriteOptions(Ttl: TimeSpan.FromSeconds(120)));
        Clock.Advance(TimeSpan.FromSeconds(119));
        (await Store.GetAsync("ttl")).Should().NotBeNull();
        Clock.Advance(TimeSpan.FromSeconds(2));
        (await Store.GetAsync("ttl")).Should().BeNull();
    }

    [Fact]
    public async Task GetBulk_PreservesKeysAndOrder_IncludingMissing()
    {
        await Store.SaveAsync("b1", Json("\"one\""));
        await Store.SaveAsync("b3", Json("\"three\""));
        var result = await Store.GetBulkAsync(["b1", "b2", "b3"]);
        result.Select(r => r.Key).Should().Equal("b1", "b2", "b3");
        Text(result[0].Value!.Value).Should().Be("\"one\"");
        result[0].ETag.Should().NotBeNullOrEmpty();
        result[1].Value.Should().BeNull();
        result[1].ETag.Should().BeNull();
        Text(result[2].Value!.Value).Should().Be("\"three\"");
    }

    [Fact]
    public async Task Transaction_AppliesAllOperations()
    {
        await Store.SaveAsync("t-del", Json("0"));
        await Store.ExecuteTransactionAsync([StateOperation.Upsert("t1", Json("1")), StateOperation.Upsert("t2", Json("2")), StateOperation.Delete("t-del")]);
        Text((await Store.GetAsync("t1"))!.Value).Should().Be("1");
        Text((await Store.GetAsync("t2"))!.Value).Should().Be("2");
        (await Store.GetAsync("t-del")).Should().BeNull();
    }

    [Fact]
    public async Task Transaction_WithStaleETag_AppliesNothing()
    {
        await Store.SaveAsync("t", Json("1"));
        var stale = (await Store.GetAsync("t"))!.ETag;
        await Store.SaveAsync("t", Json("2"));
        var act = () => Store.ExecuteTransactionAsync([StateOperation.Upsert("other", Json("\"x\"")), StateOperation.Upsert("t", Json("3"), stale)]);
        await act.Should().ThrowAsync<StateConcurrencyException>();
        (await Store.GetAsync("other")).Should().BeNull();
        Text((await Store.GetAsync("t"))!.Value).Should().Be("2");
    }
}

public sealed class EmbeddedStateStoreTests : StateStoreSuite
{
    protected override Task<IStateStore> CreateAsync(ManualTimeProvider clock) => Task.FromResult<IStateStore>(new InMemoryStateStore(clock));
}

public sealed class DaprStateStoreTests : StateStoreSuite
{
    private FakeDaprSidecar? _sidecar;
    private global::Dapr.Client.DaprClient? _client;

    protected override async Task<IStateStore> CreateAsync(ManualTimeProvider clock)
    {
        _sidecar = await FakeDaprSidecar.StartAsync(clock, DaprTestApp.SidecarToken);
        _client = _sidecar.CreateClient();
        return new DaprStateStore(_client);
    }

    public override async Task DisposeAsync()
    {
        _client?.Dispose();
        if (_sidecar is not null)
        {
            await _sidecar.DisposeAsync();
            _sidecar.AssertNoViolations();
        }
    }
}
