using CloudMemory.Dashboard.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
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
        await page.GotoAsync(new Uri(app.BaseUrl, "ui/signin").ToString());
        await page.GetByTestId("tenant").FillAsync(tenant);
        await page.GetByTestId("signin").ClickAsync();
        await page.WaitForURLAsync("**/ui/conversations");
        await page.GotoAsync(new Uri(app.BaseUrl, $"ui/conversations?userId={user}").ToString());
        await Expect(page.Locator("tr[data-conversation='remote-conv']")).ToHaveCountAsync(1);
        await page.GotoAsync(new Uri(app.BaseUrl, "ui/conversations/remote-conv").ToString());
        await Expect(page.GetByTestId("log")).ToContainTextAsync("Read from another process");
        page.Url.Should().StartWith(app.BaseUrl.ToString());
    }

    private sealed class StandaloneDashboard : WebApplicationFactory<CloudMemory.Dashboard.App.Program>
    {
        private readonly Uri _api;

        public StandaloneDashboard(Uri api)
        {
            _api = api;
            BaseUrl = this.StartOnFreePort();
        }

        public Uri BaseUrl { get; }

        protected override void ConfigureWebHost(IWebHostBuilder builder) =>
            builder.UseSetting("CloudMemory:Dashboard:ApiBaseUrl", _api.ToString());
    }
}
