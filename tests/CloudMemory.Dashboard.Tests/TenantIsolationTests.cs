using CloudMemory.Client;
using CloudMemory.Dashboard.Tests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace CloudMemory.Dashboard.Tests;

[Collection(DashboardCollection.Name)]
public sealed class TenantIsolationTests(DashboardFixture fixture)
{
    [Fact]
    public async Task With_api_keys_the_dashboard_asks_for_a_key_and_tenant_a_never_sees_tenant_b()
    {
        var host = fixture.Secured();
        var keyA = (await host.Client(apiKey: DashboardFixture.AdminKeyA).CreateApiKeyAsync("agent-a")).Key;
        var keyB = (await host.Client(apiKey: DashboardFixture.AdminKeyB).CreateApiKeyAsync("agent-b")).Key;
        var user = Browsing.Unique("u");
        var a = host.Client(apiKey: keyA);
        var b = host.Client(apiKey: keyB);
        await a.CreateShortMemoryAsync("conv-a", user);
        await a.WriteTurnAsync("conv-a", "tenant A question", "tenant A answer");
        await b.CreateShortMemoryAsync("conv-b", user);
        await b.WriteTurnAsync("conv-b", "secret of tenant B", "B answer");
        await b.CreateMemoryAsync("secret memory of tenant B", userId: user);

        var page = await fixture.NewPageAsync();
        await page.OpenAsync(host, $"ui/conversations?userId={user}");
        await Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/ui/signin"));

        await page.GetByTestId("credential").FillAsync("cmk_not-a-key-of-anyone");
        await page.GetByTestId("signin").ClickAsync();
        await Expect(page.GetByTestId("problem")).ToContainTextAsync("401");

        await page.SignInAsync(host, credential: keyA);
        await page.OpenAsync(host, $"ui/conversations?userId={user}");
        await Expect(page.Locator("tr[data-conversation]")).ToHaveCountAsync(1);
        await Expect(page.Locator("tr[data-conversation='conv-a']")).ToHaveCountAsync(1);

        await page.OpenAsync(host, "ui/conversations/conv-b");
        await Expect(page.GetByTestId("problem")).ToHaveAttributeAsync("data-code", "session-not-found");
        (await page.ContentAsync()).Should().NotContain("secret of tenant B");

        await page.OpenAsync(host, $"ui/memory?q=secret&userId={user}");
        await Expect(page.Locator("[data-testid=hits-hybrid] li")).ToHaveCountAsync(0);
        (await page.ContentAsync()).Should().NotContain("secret memory of tenant B");

        // The credential lives in an HttpOnly cookie: page scripts cannot read it.
        (await page.EvaluateAsync<string>("() => document.cookie")).Should().NotContain(keyA);
        var cookie = (await page.Context.CookiesAsync()).Single(c => c.Name == "cm-credential");
        cookie.HttpOnly.Should().BeTrue();
        cookie.SameSite.Should().Be(Microsoft.Playwright.SameSiteAttribute.Strict);
    }

    [Fact]
    public async Task A_sign_in_posted_without_the_antiforgery_token_is_refused_and_sets_no_cookie()
    {
        var host = fixture.Host(Store.InMemory);
        using var http = new HttpClient { BaseAddress = host.BaseUrl };
        using var response = await http.PostAsync("ui/signin", new FormUrlEncodedContent(new Dictionary<string, string> { ["Tenant"] = "forged" }));
        ((int)response.StatusCode).Should().Be(400);
        response.Headers.Contains("Set-Cookie").Should().BeFalse();
    }
}
