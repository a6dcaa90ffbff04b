using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Context;
using CloudMemory.Dapr;
using CloudMemory.Dapr.Tests.FakeSidecar;
using CloudMemory.Dashboard.Tests.Infrastructure;
using CloudMemory.Session;
using CloudMemory.Dapr.Tests;
using Microsoft.AspNetCore.Builder;
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
        // Each app composed as its Program.cs does.
        await using var session = await DaprTestApp.StartServiceAsync(new ManualTimeProvider(), CloudMemory.Session.SessionServiceCollectionExtensions.AppId,
            b => b.AddSessionServices(), a => a.MapSessionEndpoints(), settings, sidecar);
        await using var context = await DaprTestApp.StartServiceAsync(new ManualTimeProvider(), ContextServiceCollectionExtensions.AppId,
            b => b.AddContextServices(), a => a.MapContextEndpoints(), settings, sidecar);
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

        // Its API calls go to the app that serves each path, as through an ingress.
        await using var dashboard = new StandaloneDashboard(new Uri("http://cloudmemory.test/"), () => new AppRouter(apps));
        var page = await fixture.NewPageAsync();
        await page.SignInAsync(dashboard.BaseUrl, tenant);
        var rows = page.Locator("tr[data-conversation]");
        await Expect(rows).ToHaveCountAsync(2);
        (await rows.EvaluateAllAsync<string[]>("rows => rows.map(r => r.dataset.conversation)")).Should().Equal("dapr-2", "dapr-1");

        await page.OpenAsync(dashboard.BaseUrl, "ui/conversations?userId=alice");
        await Expect(rows).ToHaveCountAsync(1);
        await page.Locator("tr[data-conversation='dapr-1']").GetByRole(Microsoft.Playwright.AriaRole.Link, new() { Name = "dapr-1" }).ClickAsync();
        await Expect(page.GetByTestId("log")).ToContainTextAsync("question of alice");
    }

    private static StringContent Json(object body) =>
        new(System.Text.Json.JsonSerializer.Serialize(body), System.Text.Encoding.UTF8, "application/json");
}
