using System.Text.RegularExpressions;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace CloudMemory.Dashboard.Tests.Infrastructure;

/// <summary>What every dashboard test does in the browser.</summary>
public static partial class Browsing
{
    /// <summary>Signs in on the dashboard's form: a tenant and agent (API without authentication) or a credential.</summary>
    public static Task SignInAsync(this IPage page, DashboardHost host, string? tenant = null, string? agent = null, string? credential = null) =>
        page.SignInAsync(host.BaseUrl, tenant, agent, credential);

    /// <summary>Signs in on the form of the dashboard at <paramref name="dashboard"/> (e.g. the standalone app).</summary>
    public static async Task SignInAsync(this IPage page, Uri dashboard, string? tenant = null, string? agent = null, string? credential = null)
    {
        await page.GotoAsync(new Uri(dashboard, "ui/signin").ToString());
        if (credential is not null)
        {
            await page.GetByTestId("credential").FillAsync(credential);
        }
        if (tenant is not null)
        {
            await page.GetByTestId("tenant").FillAsync(tenant);
        }
        if (agent is not null)
        {
            await page.GetByTestId("agent").FillAsync(agent);
        }
        await page.GetByTestId("signin").ClickAsync();
        try
        {
            // Signed in, the form sends the browser on to the conversations. The URL is polled and the
            // page's main region waited for; no navigation or load-state event is waited for: on a loaded
            // CI machine `load`, `DOMContentLoaded` and even `commit` waits have timed out after 15 s with
            // the page already shown. The tests then wait for the elements they read.
            await Expect(page).ToHaveURLAsync(SignedInUrl(), new() { Timeout = 15_000 });
            await page.Locator("main").WaitForAsync();
        }
        catch (Exception e) when (e is TimeoutException or PlaywrightException)
        {
            throw new InvalidOperationException($"sign-in did not complete ({page.Url}): {await page.Locator("main").InnerTextAsync()}", e);
        }
    }

    [GeneratedRegex("/ui/conversations$")]
    private static partial Regex SignedInUrl();

    public static Task<IResponse?> OpenAsync(this IPage page, DashboardHost host, string path) => page.OpenAsync(host.BaseUrl, path);

    public static Task<IResponse?> OpenAsync(this IPage page, Uri dashboard, string path) =>
        page.GotoAsync(new Uri(dashboard, path.TrimStart('/')).ToString());

    /// <summary>Marks the loaded document, so a test can tell a live update from a reload (which loses the mark).</summary>
    public static Task MarkDocumentAsync(this IPage page) => page.EvaluateAsync("() => { window.__notReloaded = true; }");

    public static async Task<bool> StillSameDocumentAsync(this IPage page) => await page.EvaluateAsync<bool>("() => window.__notReloaded === true");

    /// <summary>Waits until the live region's event stream is open.</summary>
    public static Task WaitLiveAsync(this IPage page, string regionId) =>
        page.Locator($"#{regionId}[data-live-state=open]").WaitForAsync();

    public static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 13)];
}
