using System.Text.Json;
using CloudMemory.Contracts.Feedback;
using CloudMemory.Dashboard.Tests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace CloudMemory.Dashboard.Tests;

[Collection(DashboardCollection.Name)]
public sealed class FeedbackAndSharedPagesTests(DashboardFixture fixture)
{
    [Theory]
    [InlineData(Store.InMemory)]
    [InlineData(Store.Postgres)]
    public async Task Feedback_page_shows_ratings_and_issues_over_time_and_the_strategy_trial_a_learning_cycle_started(Store store)
    {
        var host = fixture.Host(store);
        var tenant = Browsing.Unique("t");
        var api = host.Client(tenant);
        var now = DateTimeOffset.UtcNow;
        for (var i = 0; i < 4; i++)
        {
            // Long answers rated low yesterday, short ones rated high today: the verbosity pattern.
            await api.RecordFeedbackAsync(new RecordFeedbackRequest(null, new FeedbackTarget("conversation", $"long-{i}"), "triage", "user", "rating",
                JsonSerializer.SerializeToElement(1), Issues: ["way too long"], ConversationId: $"long-{i}",
                Metrics: new Dictionary<string, double> { ["responseLength"] = 900 }, CreatedAt: now.AddDays(-1).AddHours(-2).AddMinutes(-i)));
            await api.RecordFeedbackAsync(new RecordFeedbackRequest(null, new FeedbackTarget("conversation", $"short-{i}"), "triage", "user", "rating",
                JsonSerializer.SerializeToElement(5), ConversationId: $"short-{i}",
                Metrics: new Dictionary<string, double> { ["responseLength"] = 200 }, CreatedAt: now.AddMinutes(-i - 1)));
        }
        await api.RunLearningCycleAsync("triage");

        var page = await fixture.NewPageAsync();
        await page.SignInAsync(host, tenant);
        await page.OpenAsync(host, "ui/feedback?agentId=triage&days=3&window=1d");
        await Expect(page.GetByTestId("feedback-summary")).ToContainTextAsync("8");
        await Expect(page.Locator("[data-testid=score-chart] circle")).ToHaveCountAsync(2);
        await Expect(page.Locator("[data-testid=score-chart] circle.marked")).ToHaveCountAsync(1);
        await Expect(page.Locator("[data-testid=issues] tbody tr")).Not.ToHaveCountAsync(0);
        await Expect(page.GetByTestId("issues")).ToContainTextAsync("way too long");
        await Expect(page.Locator("[data-testid=strategies] tr[data-strategy=response_length]")).ToHaveAttributeAsync("data-status", "trial");
        await Expect(page.Locator("[data-testid=strategies] tr[data-strategy=response_length]")).ToContainTextAsync("maxLength=200");
        await DashboardFixture.ScreenshotAsync(page, "feedback");
    }

    [Theory]
    [InlineData(Store.InMemory)]
    [InlineData(Store.Postgres)]
    public async Task Shared_context_page_shows_members_fields_votes_and_a_new_change_arrives_live(Store store)
    {
        var host = fixture.Host(store);
        var tenant = Browsing.Unique("t");
        var id = Browsing.Unique("case");
        await host.SharedContexts(tenant, "triage").CreateAsync(new
        {
            id,
            mode = "democratic",
            members = new[] { new { agentId = "report", role = "write" }, new { agentId = "drug", role = "write" } },
            fields = new { diagnosis = new { value = "", conflict = "reject" }, notes = new { value = Array.Empty<string>(), conflict = "append" } },
        });
        await host.SharedContexts(tenant, "report").ProposeAsync(id, 1, new { diagnosis = new { set = "influenza A" } }, proposalId: "p1");
        await host.SharedContexts(tenant, "drug").VoteAsync(id, "p1", approve: true);

        var page = await fixture.NewPageAsync();
        await page.SignInAsync(host, tenant, agent: "triage");
        await page.OpenAsync(host, $"ui/shared-contexts/{id}");
        await Expect(page.Locator("[data-testid=members] tbody tr")).ToHaveCountAsync(3);
        await Expect(page.Locator("[data-testid=members] tr[data-agent=triage]")).ToContainTextAsync("admin");
        await Expect(page.Locator("[data-testid=fields] tr[data-field=diagnosis]")).ToHaveCountAsync(1);
        await Expect(page.Locator("[data-testid=proposals] tr[data-proposal=p1]")).ToContainTextAsync("drug");
        var before = await page.Locator("[data-testid=changes] tbody tr").CountAsync();
        before.Should().BeGreaterThanOrEqualTo(3);

        await page.MarkDocumentAsync();
        await page.WaitLiveAsync("shared");
        await host.SharedContexts(tenant, "report").ProposeAsync(id, 1, new { notes = new { add = "fever 39 °C" } }, proposalId: "p2");
        await Expect(page.Locator("[data-testid=proposals] tr[data-proposal=p2]")).ToHaveCountAsync(1);
        await Expect(page.Locator("[data-testid=changes] tbody tr")).ToHaveCountAsync(before + 1);
        (await page.StillSameDocumentAsync()).Should().BeTrue("the change must arrive without a reload");
        await DashboardFixture.ScreenshotAsync(page, "shared-context");

        // Only members read it: another agent of the same tenant gets the API's refusal.
        var outsider = await fixture.NewPageAsync();
        await outsider.SignInAsync(host, tenant, agent: "outsider");
        await outsider.OpenAsync(host, $"ui/shared-contexts/{id}");
        await Expect(outsider.GetByTestId("problem")).ToHaveAttributeAsync("data-code", "not-a-member");
        await Expect(outsider.GetByTestId("members")).ToHaveCountAsync(0);
    }
}
