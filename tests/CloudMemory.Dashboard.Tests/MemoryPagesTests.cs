using CloudMemory.Contracts.Traces;
using CloudMemory.Dashboard.Tests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace CloudMemory.Dashboard.Tests;

[Collection(DashboardCollection.Name)]
public sealed class MemoryPagesTests(DashboardFixture fixture)
{
    [Theory]
    [InlineData(Store.InMemory)]
    [InlineData(Store.Postgres)]
    public async Task Search_playground_shows_the_three_modes_side_by_side_and_entries_link_to_their_provenance(Store store)
    {
        var host = fixture.Host(store);
        var tenant = Browsing.Unique("t");
        var user = Browsing.Unique("u");
        var api = host.Client(tenant);
        await api.CreateMemoryAsync("Alice prefers vegetarian restaurants near the office", "preference", id: "pref-veg", userId: user, contextId: "conv-1", traceId: "run-m");
        await api.CreateMemoryAsync("Allergic to penicillin since childhood", "semantic", id: "allergy", userId: user, contextId: "conv-1");
        await api.CreateMemoryAsync("Bob likes steak houses", "preference", id: "other-user", userId: "someone-else");
        await api.IngestStepsAsync([new TraceStepInput { TraceId = "run-m", StepIndex = 0, AgentId = "concierge", StepType = "memory", Name = "remember-preference", MemoryIds = ["pref-veg"] }]);

        var page = await fixture.NewPageAsync();
        await page.SignInAsync(host, tenant);
        await page.OpenAsync(host, "ui/memory");
        await page.GetByTestId("query").FillAsync("vegetarian restaurant");
        await page.GetByTestId("memory-user").FillAsync(user);
        await page.GetByTestId("search").ClickAsync();

        foreach (var mode in new[] { "lexical", "semantic", "hybrid" })
        {
            await Expect(page.Locator($"[data-testid=hits-{mode}] li").First).ToHaveAttributeAsync("data-memory", "pref-veg");
            await Expect(page.Locator($"[data-testid=hits-{mode}] li[data-memory=other-user]")).ToHaveCountAsync(0);
        }
        await Expect(page.Locator("[data-testid=hits-lexical] li").First).ToContainTextAsync("vegetarian");
        await Expect(page.Locator("[data-testid=entries] tbody tr")).ToHaveCountAsync(2);
        await DashboardFixture.ScreenshotAsync(page, "memory");

        await page.Locator("[data-testid=entries] tr[data-memory=pref-veg] a").First.ClickAsync();
        await Expect(page.GetByTestId("content")).ToHaveTextAsync("Alice prefers vegetarian restaurants near the office");
        await Expect(page.GetByTestId("provenance")).ToContainTextAsync("remember-preference");
        await Expect(page.GetByTestId("provenance")).ToContainTextAsync("run-m");
    }
}
