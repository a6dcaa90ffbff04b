using CloudMemory.BuildingBlocks.Embedded;
using CloudMemory.Feedback.Features.Learning;
using CloudMemory.Feedback.Tests.Infrastructure;

namespace CloudMemory.Feedback.Tests.Learning;

/// <summary>The cross-process cycle lease over the state port: two runners (two processes) on one store.</summary>
public sealed class CycleLeaseTests
{
    [Fact]
    public async Task Lease_HeldByOneProcess_RefusesTheOther_UntilReleasedOrExpired()
    {
        var time = new MutableTimeProvider();
        var shared = new InMemoryStateStore(time);
        var first = new CycleLease(shared, time);
        var second = new CycleLease(shared, time);

        var held = await first.TryAcquireAsync("t", "agent-a");
        held.Should().NotBeNull();
        (await second.TryAcquireAsync("t", "agent-a")).Should().BeNull("one cycle per agent at a time");
        (await second.TryAcquireAsync("t", "agent-b")).Should().NotBeNull("other agents are independent");
        (await second.TryAcquireAsync("t2", "agent-a")).Should().NotBeNull("and so are other tenants");

        await second.ReleaseAsync("t", "agent-a", "not-the-holder");
        (await second.TryAcquireAsync("t", "agent-a")).Should().BeNull("only the holder releases");

        await first.ReleaseAsync("t", "agent-a", held!);
        var next = await second.TryAcquireAsync("t", "agent-a");
        next.Should().NotBeNull();

        // A holder that died never releases: its lease expires.
        time.Advance(CycleLease.Ttl + TimeSpan.FromSeconds(1));
        (await first.TryAcquireAsync("t", "agent-a")).Should().NotBeNull();
    }

    [Fact]
    public void Key_KeepsTenantAndAgentApart()
    {
        CycleLease.Key("a:b", "c").Should().NotBe(CycleLease.Key("a", "b:c"));
        CycleLease.Key("a-1", "x").Should().NotBe(CycleLease.Key("a", "1-x"));
    }
}
