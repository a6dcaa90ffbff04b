using CloudMemory.Dashboard.Tests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace CloudMemory.Dashboard.Tests;

/// <summary>The dashboard as its own app (services/CloudMemory.Dashboard.App) reading an API elsewhere.</summary>
[Collection(DashboardCollection.Name)]
public sealed class StandaloneAppTests(DashboardFixture fixture)
{
    [Fact]
    public async Task The_standalone_dashboard_reads_the_api_at_its_configured_base_url()
    {
        var api = fixture.Host(Store.InMemory);
        var tenant = Browsing.Unique("t");
        var user = Browsing.Unique("u");
        var client = api.Client(tenant);
        await client.CreateShortMemoryAsync("remote-conv", user, "triage");
        await client.WriteTurnAsync("remote-conv", "Read from another process", "Yes, over HTTP.", "triage");

        await using var app = new StandaloneDashboard(api.BaseUrl);
        var page = await fixture.NewPageAsync();
        await page.SignInAsync(app.BaseUrl, tenant);
        await page.OpenAsync(app.BaseUrl, $"ui/conversations?userId={user}");
        await Expect(page.Locator("tr[data-conversation='remote-conv']")).ToHaveCountAsync(1);
        await page.OpenAsync(app.BaseUrl, "ui/conversations/remote-conv");
        await Expect(page.GetByTestId("log")).ToContainTextAsync("Read from another process");
        page.Url.Should().StartWith(app.BaseUrl.ToString());
    }
}
