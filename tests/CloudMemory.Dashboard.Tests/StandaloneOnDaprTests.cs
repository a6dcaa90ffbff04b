using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Context;
using CloudMemory.Dapr;
using CloudMemory.Dapr.Tests.FakeSidecar;
using CloudMemory.Dashboard.Tests.Infrastructure;
using CloudMemory.Session;
using CloudMemory.Dapr.Tests;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using static Microsoft.Playwright.Assertions;

namespace CloudMemory.Dashboard.Tests;

/// <summary>
/// The standalone dashboard (services/CloudMemory.Dashboard.App) in front of the session and context
/// apps on the Dapr runtime over the fake sidecar (the message log is the state-store log). Its API
/// calls go through <see cref="AppRouter"/>, as through an ingress that routes each path to its app.
/// </summary>
[Collection(DashboardCollection.Name)]
public sealed class StandaloneOnDaprTests(DashboardFixture fixture)
{
    [Fact]
    public async Task The_standalone_dashboard_lists_and_opens_conversations_served_by_the_Dapr_apps()
    {
        var settings = new Dictionary<string, string?> { ["CloudMemory:Llm:Endpoint"] = "" };
        await using var sidecar = await FakeDaprSidecar.StartAsync(new ManualTimeProvider(), DaprTestApp.SidecarToken, DaprTestApp.AppToken);
        await using var session = await StartAppAsync(sidecar, CloudMemory.Session.SessionServiceCollectionExtensions.AppId, settings, b => b.AddSessionServices(), a => a.MapSessionEndpoints());
        await using var context = await StartAppAsync(sidecar, ContextServiceCollectionExtensions.AppId, settings, b => b.AddContextServices(), a => a.MapContextEndpoints());
        DaprTestApp[] apps = [session, context];

        var tenant = Browsing.Unique("t");
        using (var api = AppRouter.CreateClient(apps))
        {
            api.DefaultRequestHeaders.Add("X-Tenant-Id", tenant);
            foreach (var (id, user) in new[] { ("dapr-1", "alice"), ("dapr-2", "bob") })
            {
                (await api.PostAsync("v1/sessions", Json(new { conversationId = id, userId = user }))).EnsureSuccessStatusCode();
                (await api.PostAsync($"v1/sessions/{id}/turns", Json(new { userQuery = $"question of {user}", agentResponse = "answer" }))).EnsureSuccessStatusCode();
            }
        }

        await using var dashboard = new DashboardOverRouter(apps);
        var page = await fixture.NewPageAsync();
        await page.GotoAsync(new Uri(dashboard.BaseUrl, "ui/signin").ToString());
        await page.GetByTestId("tenant").FillAsync(tenant);
        await page.GetByTestId("signin").ClickAsync();
        await page.WaitForURLAsync("**/ui/conversations");
        var rows = page.Locator("tr[data-conversation]");
        await Expect(rows).ToHaveCountAsync(2);
        (await rows.EvaluateAllAsync<string[]>("rows => rows.map(r => r.dataset.conversation)")).Should().Equal("dapr-2", "dapr-1");

        await page.GotoAsync(new Uri(dashboard.BaseUrl, "ui/conversations?userId=alice").ToString());
        await Expect(rows).ToHaveCountAsync(1);
        await page.Locator("tr[data-conversation='dapr-1']").GetByRole(Microsoft.Playwright.AriaRole.Link, new() { Name = "dapr-1" }).ClickAsync();
        await Expect(page.GetByTestId("log")).ToContainTextAsync("question of alice");
    }

    private static StringContent Json(object body) =>
        new(System.Text.Json.JsonSerializer.Serialize(body), System.Text.Encoding.UTF8, "application/json");

    // As services/CloudMemory.{App}/Program.cs composes its app.
    private static Task<DaprTestApp> StartAppAsync(FakeDaprSidecar sidecar, string appId, Dictionary<string, string?> settings,
        Action<WebApplicationBuilder> addServices, Action<WebApplication> mapEndpoints) =>
        DaprTestApp.StartServiceAsync(new ManualTimeProvider(), appId, addServices, mapEndpoints, settings, sidecar);

    /// <summary>Dashboard.App whose API client sends each call to the Dapr app that serves it.</summary>
    private sealed class DashboardOverRouter : WebApplicationFactory<CloudMemory.Dashboard.App.Program>
    {
        private readonly IReadOnlyList<DaprTestApp> _apps;

        public DashboardOverRouter(IReadOnlyList<DaprTestApp> apps)
        {
            _apps = apps;
            BaseUrl = this.StartOnFreePort();
        }

        public Uri BaseUrl { get; }

        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            builder.UseSetting("CloudMemory:Dashboard:ApiBaseUrl", "http://cloudmemory.test/");
            builder.ConfigureServices(services =>
                services.AddHttpClient(DashboardApi.HttpClientName).ConfigurePrimaryHttpMessageHandler(() => new AppRouter(_apps)));
        }
    }
}
