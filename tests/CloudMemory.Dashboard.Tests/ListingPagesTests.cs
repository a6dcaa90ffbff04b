using CloudMemory.Dashboard.Tests.Infrastructure;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace CloudMemory.Dashboard.Tests;

/// <summary>The tenant-wide lists: conversations without a user id, shared contexts, and signing in with a JWT.</summary>
[Collection(DashboardCollection.Name)]
public sealed class ListingPagesTests(DashboardFixture fixture)
{
    [Theory]
    [InlineData(Store.InMemory)]
    [InlineData(Store.Postgres)]
    public async Task Conversation_list_shows_the_whole_tenant_and_filters_by_user_mode_and_activity(Store store)
    {
        var host = fixture.Host(store);
        var tenant = Browsing.Unique("t");
        var alice = Browsing.Unique("alice");
        var bob = Browsing.Unique("bob");
        var api = host.Client(tenant);
        await api.CreateShortMemoryAsync("alice-1", alice);
        await api.WriteTurnAsync("alice-1", "My knee hurts", "Since when?");
        await api.CreateShortMemoryAsync("alice-2", alice);
        await api.WriteTurnAsync("alice-2", "Back again", "Welcome back");
        await api.CheckpointShortMemoryAsync("alice-2", "Alice came back.");
        await api.CreateShortMemoryAsync("bob-1", bob);
        await api.WriteTurnAsync("bob-1", "Hello", "Hi Bob");
        await host.Client(Browsing.Unique("other")).CreateShortMemoryAsync("not-this-tenant", alice);

        var page = await fixture.NewPageAsync();
        await page.SignInAsync(host, tenant);
        // Signing in lands on the list: every conversation of the tenant, no user id needed, newest activity first.
        var rows = page.Locator("tr[data-conversation]");
        await Expect(rows).ToHaveCountAsync(3);
        (await rows.EvaluateAllAsync<string[]>("rows => rows.map(r => r.dataset.conversation)")).Should().Equal("bob-1", "alice-2", "alice-1");
        await Expect(page.Locator("tr[data-conversation='alice-2']")).ToContainTextAsync("SUMMARY_N");
        await Expect(page.Locator("tr[data-conversation='bob-1']")).ToContainTextAsync(bob);
        await Expect(page.Locator("tr[data-conversation='not-this-tenant']")).ToHaveCountAsync(0);
        await DashboardFixture.ScreenshotAsync(page, "conversation-list");

        // The form filters through the API: one user, then one mode, then recent activity.
        await page.GetByTestId("filter-user").FillAsync(alice);
        await page.GetByRole(AriaRole.Button, new() { Name = "Show" }).ClickAsync();
        await Expect(rows).ToHaveCountAsync(2);
        await Expect(page.Locator("tr[data-conversation='bob-1']")).ToHaveCountAsync(0);
        await page.GetByTestId("filter-mode").SelectOptionAsync("FULL_HISTORY");
        await page.GetByRole(AriaRole.Button, new() { Name = "Show" }).ClickAsync();
        await Expect(rows).ToHaveCountAsync(1);
        await Expect(page.Locator("tr[data-conversation='alice-1']")).ToHaveCountAsync(1);

        await page.OpenAsync(host, "ui/conversations?mode=SUMMARY_N&activeWithin=1h");
        await Expect(rows).ToHaveCountAsync(1);
        await Expect(page.Locator("tr[data-conversation='alice-2']")).ToHaveCountAsync(1);

        // A user's name in a row filters to that user.
        await page.OpenAsync(host, "ui/conversations");
        await page.Locator("tr[data-conversation='bob-1']").GetByRole(AriaRole.Link, new() { Name = bob }).ClickAsync();
        await Expect(rows).ToHaveCountAsync(1);
        await Expect(page.GetByTestId("filter-user")).ToHaveValueAsync(bob);

        // An erased conversation leaves the list.
        (await api.DeleteSessionAsync("alice-1")).Should().BeTrue();
        await page.OpenAsync(host, "ui/conversations");
        await Expect(rows).ToHaveCountAsync(2);
        await Expect(page.Locator("tr[data-conversation='alice-1']")).ToHaveCountAsync(0);
    }

    [Fact]
    public async Task Conversation_list_pages_through_a_long_tenant()
    {
        var host = fixture.Host(Store.InMemory);
        var tenant = Browsing.Unique("t");
        var api = host.Client(tenant);
        var total = Components.Pages.Conversations.PageSize + 3;
        for (var i = 0; i < total; i++)
        {
            await api.CreateShortMemoryAsync($"c-{i:D3}", "u");
        }

        var page = await fixture.NewPageAsync();
        await page.SignInAsync(host, tenant);
        var rows = page.Locator("tr[data-conversation]");
        await Expect(rows).ToHaveCountAsync(Components.Pages.Conversations.PageSize);
        await page.GetByTestId("next-page").ClickAsync();
        await Expect(rows).ToHaveCountAsync(3);
        await Expect(page.GetByTestId("next-page")).ToHaveCountAsync(0);
    }

    [Fact]
    public async Task Signing_in_with_a_JWT_shows_its_tenants_data_only_and_a_forged_token_is_refused()
    {
        var host = fixture.JwtSecured();
        var tenantA = Browsing.Unique("ta");
        var tenantB = Browsing.Unique("tb");
        var a = host.BearerClient(fixture.Tokens.Token(tenantA, "triage"));
        var b = host.BearerClient(fixture.Tokens.Token(tenantB, "triage"));
        await a.CreateShortMemoryAsync("conv-a", "u1");
        await a.WriteTurnAsync("conv-a", "tenant A question", "tenant A answer");
        await b.CreateShortMemoryAsync("conv-b", "u1");
        await b.WriteTurnAsync("conv-b", "secret of tenant B", "B answer");

        var page = await fixture.NewPageAsync();
        await page.OpenAsync(host, "ui/conversations");
        await Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/ui/signin"));

        // A token signed by someone else is tried against the API once and refused with its 401.
        var forged = new CloudMemory.Security.Tests.Infrastructure.TestJwt().Token(tenantA, "triage");
        await page.GetByTestId("credential").FillAsync(forged);
        await page.GetByTestId("signin").ClickAsync();
        await Expect(page.GetByTestId("problem")).ToContainTextAsync("401");

        await page.SignInAsync(host, credential: fixture.Tokens.Token(tenantA, "triage"));
        var rows = page.Locator("tr[data-conversation]");
        await Expect(rows).ToHaveCountAsync(1);
        await Expect(page.Locator("tr[data-conversation='conv-a']")).ToHaveCountAsync(1);
        (await page.ContentAsync()).Should().NotContain("conv-b");

        await page.Locator("tr[data-conversation='conv-a']").GetByRole(AriaRole.Link, new() { Name = "conv-a" }).ClickAsync();
        await Expect(page.GetByTestId("log")).ToContainTextAsync("tenant A question");
        await page.OpenAsync(host, "ui/conversations/conv-b");
        await Expect(page.GetByTestId("problem")).ToHaveAttributeAsync("data-code", "session-not-found");
        (await page.ContentAsync()).Should().NotContain("secret of tenant B");
    }

    [Theory]
    [InlineData(Store.InMemory)]
    [InlineData(Store.Postgres)]
    public async Task Shared_context_list_shows_the_tenants_contexts_filters_by_member_and_links_to_each(Store store)
    {
        var host = fixture.Host(store);
        var tenant = Browsing.Unique("t");
        await host.SharedContexts(tenant, "triage").CreateAsync(new
        {
            id = "case-flu",
            mode = "democratic",
            members = new[] { new { agentId = "report", role = "write" }, new { agentId = "drug", role = "write" } },
            fields = new { diagnosis = new { value = "", conflict = "reject" } },
        });
        await host.SharedContexts(tenant, "billing").CreateAsync(new { id = "invoice-7", mode = "open" });
        await host.SharedContexts(Browsing.Unique("other"), "triage").CreateAsync(new { id = "elsewhere", mode = "open" });

        var page = await fixture.NewPageAsync();
        await page.SignInAsync(host, tenant, agent: "triage");
        await page.OpenAsync(host, "ui/shared-contexts");
        var rows = page.Locator("[data-testid=shared-contexts] tr[data-shared]");
        await Expect(rows).ToHaveCountAsync(2);
        await Expect(page.Locator("tr[data-shared='case-flu']")).ToContainTextAsync("democratic");
        await Expect(page.Locator("tr[data-shared='case-flu'] td").Nth(4)).ToHaveTextAsync("3");
        await Expect(page.Locator("tr[data-shared='elsewhere']")).ToHaveCountAsync(0);
        await DashboardFixture.ScreenshotAsync(page, "shared-contexts");

        await page.GetByTestId("filter-member").FillAsync("drug");
        await page.GetByRole(AriaRole.Button, new() { Name = "Show" }).ClickAsync();
        await Expect(rows).ToHaveCountAsync(1);

        await page.Locator("tr[data-shared='case-flu']").GetByRole(AriaRole.Link, new() { Name = "case-flu" }).ClickAsync();
        await Expect(page.Locator("[data-testid=members] tbody tr")).ToHaveCountAsync(3);
        await Expect(page.Locator("[data-testid=fields] tr[data-field=diagnosis]")).ToHaveCountAsync(1);
    }
}
