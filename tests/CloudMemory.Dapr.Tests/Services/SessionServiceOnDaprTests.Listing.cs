using CloudMemory.Client;
using CloudMemory.Dapr.Tests.FakeSidecar;

namespace CloudMemory.Dapr.Tests.Services;

/// <summary>The tenant-wide listings on the Dapr runtime: the state-store log's tenant index and the shared contexts' index, over the sidecar.</summary>
public sealed partial class SessionServiceOnDaprTests
{
    [Fact]
    public async Task TenantListings_OnDaprRuntime_ListTheCallersTenantsConversationsAndSharedContexts()
    {
        using var http = new HttpClient { Timeout = Wait.Timeout };
        CloudMemoryClientOptions Options(string tenant) => new()
        {
            DaprHttpPort = Sidecar.BaseAddress.Port,
            DaprApiToken = DaprTestApp.SidecarToken,
            ContextAppId = CloudMemory.Session.SessionServiceCollectionExtensions.AppId,
            TenantId = tenant,
            AgentId = "triage",
        };
        var tenant = "t-" + Guid.NewGuid().ToString("N")[..8];
        var other = "o-" + Guid.NewGuid().ToString("N")[..8];
        var mine = new CloudMemoryClient(http, Options(tenant));
        var theirs = new CloudMemoryClient(http, Options(other));
        await mine.CreateShortMemoryAsync("c-1", "alice");
        await mine.WriteTurnAsync("c-1", "My knee hurts.", "Since when?");
        await mine.CreateShortMemoryAsync("c-2", "bob");
        await mine.WriteTurnAsync("c-2", "Hello.", "Hi.");
        await theirs.CreateShortMemoryAsync("c-x", "alice");

        var all = await mine.ListSessionsAsync();
        all.Items.Select(i => i.ConversationId).Should().Equal("c-2", "c-1");
        all.Items.Select(i => i.TurnCount).Should().Equal(1, 1);
        (await mine.ListSessionsAsync(userId: "alice")).Items.Select(i => i.ConversationId).Should().Equal("c-1");
        (await mine.ListSessionsAsync(limit: 1)).NextCursor.Should().NotBeNull();
        (await theirs.ListSessionsAsync()).Items.Select(i => i.ConversationId).Should().Equal("c-x");
        Sidecar.StoredState($"cmtenant:{tenant}").Should().NotBeNull("the tenant's index is a key of the sidecar's state store");

        var shared = new SharedContextsClient(http, Options(tenant));
        await shared.CreateAsync(new { id = "sc-1", fromConversation = "c-2" });
        await shared.CreateAsync(new { id = "sc-2" });
        await new SharedContextsClient(http, Options(other)).CreateAsync(new { id = "sc-x" });

        (await shared.ListAsync()).Items.Select(i => i.Id).Should().BeEquivalentTo("sc-1", "sc-2");
        (await shared.ListAsync(fromConversation: "c-2")).Items.Select(i => i.Id).Should().Equal("sc-1");
        (await new SharedContextsClient(http, Options(other)).ListAsync()).Items.Select(i => i.Id).Should().Equal("sc-x");
    }
}
