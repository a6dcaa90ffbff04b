using CloudMemory.Dashboard.Tests.Infrastructure;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace CloudMemory.Dashboard.Tests;

[Collection(DashboardCollection.Name)]
public sealed class ConversationPagesTests(DashboardFixture fixture)
{
    [Theory]
    [InlineData(Store.InMemory)]
    [InlineData(Store.Postgres)]
    public async Task Conversation_page_shows_messages_checkpoints_context_state_and_snapshots_and_a_new_turn_arrives_live(Store store)
    {
        var host = fixture.Host(store);
        var tenant = Browsing.Unique("t");
        var user = Browsing.Unique("u");
        var conversation = Browsing.Unique("c");
        var api = host.Client(tenant, agent: "triage");
        await api.CreateShortMemoryAsync(conversation, user, "triage");
        await api.WriteTurnAsync(conversation, "I have had a headache for three days", "Any fever?", "triage", turnId: "t1");
        await api.WriteTurnAsync(conversation, "Yes, a mild fever since yesterday", "Are you allergic to anything?", "triage", turnId: "t2");
        await api.CheckpointShortMemoryAsync(conversation, "Headache for three days with a mild fever.", recentTurns: 2);
        await api.WriteTurnAsync(conversation, "Penicillin makes me itch", "Noted: no penicillin.", "triage", turnId: "t3");
        await api.WriteAgentSlotAsync(conversation, "triage", new { level = "moderate" });
        await api.CreateSnapshotAsync(conversation, "before-referral");

        var page = await fixture.NewPageAsync();
        await page.SignInAsync(host, tenant);
        await page.OpenAsync(host, $"ui/conversations?userId={user}");
        var row = page.Locator($"tr[data-conversation='{conversation}']");
        await Expect(row).ToContainTextAsync("SUMMARY_N");
        await Expect(row).ToContainTextAsync("triage");
        await DashboardFixture.ScreenshotAsync(page, "conversations");

        await row.GetByRole(AriaRole.Link, new() { Name = conversation }).ClickAsync();
        await Expect(page.GetByTestId("mode")).ToHaveTextAsync("SUMMARY_N");
        await Expect(page.GetByTestId("turn-row")).ToHaveCountAsync(3);
        await Expect(page.GetByTestId("checkpoint-row")).ToHaveCountAsync(1);
        await Expect(page.GetByTestId("checkpoint-row")).ToContainTextAsync("Headache for three days with a mild fever.");
        await Expect(page.GetByTestId("summary")).ToContainTextAsync("Headache for three days");
        // The context as the next call gets it: the summary and the turn after the checkpoint (and the recent ones it kept).
        await Expect(page.GetByTestId("context-messages")).ToContainTextAsync("Penicillin makes me itch");
        var parts = page.Locator("[data-testid=token-bar] rect[data-part]");
        await Expect(parts).ToHaveCountAsync(3);
        (await page.Locator("[data-testid=token-bar] rect[data-part='checkpoint summary']").GetAttributeAsync("data-tokens")).Should().NotBe("0");
        await Expect(page.Locator("[data-testid=ratio-chart] circle")).ToHaveCountAsync(4);
        await Expect(page.Locator("[data-testid=ratio-chart] line.mark")).ToHaveCountAsync(1);
        await Expect(page.GetByTestId("slot")).ToHaveTextAsync("triage");
        await Expect(page.Locator("pre.json").Filter(new() { HasText = "moderate" })).ToHaveCountAsync(1);
        await Expect(page.GetByTestId("snapshots")).ToContainTextAsync("before-referral");

        await page.MarkDocumentAsync();
        await page.WaitLiveAsync("conversation");
        await api.WriteTurnAsync(conversation, "Can I take ibuprofen instead?", "Yes, ibuprofen is fine.", "pharmacist", turnId: "t4");
        await Expect(page.GetByTestId("turn-row")).ToHaveCountAsync(4);
        await Expect(page.GetByTestId("log")).ToContainTextAsync("Can I take ibuprofen instead?");
        await Expect(page.GetByTestId("turn-count")).ToHaveTextAsync("4");
        (await page.StillSameDocumentAsync()).Should().BeTrue("the new turn must arrive without a reload");
        await DashboardFixture.ScreenshotAsync(page, "conversation");
    }

    [Fact]
    public async Task Conversation_list_filters_by_mode_and_an_unknown_conversation_shows_the_problem()
    {
        var host = fixture.Host(Store.InMemory);
        var tenant = Browsing.Unique("t");
        var user = Browsing.Unique("u");
        var api = host.Client(tenant);
        await api.CreateShortMemoryAsync("plain", user);
        await api.WriteTurnAsync("plain", "hello", "hi");
        await api.CreateShortMemoryAsync("summarized", user);
        await api.WriteTurnAsync("summarized", "hello", "hi");
        await api.CheckpointShortMemoryAsync("summarized", "greeted");

        var page = await fixture.NewPageAsync();
        await page.SignInAsync(host, tenant);
        await page.OpenAsync(host, $"ui/conversations?userId={user}&mode=SUMMARY_N");
        await Expect(page.Locator("tr[data-conversation]")).ToHaveCountAsync(1);
        await Expect(page.Locator("tr[data-conversation='summarized']")).ToHaveCountAsync(1);
        await page.OpenAsync(host, $"ui/conversations?userId={user}&mode=FULL_HISTORY");
        await Expect(page.Locator("tr[data-conversation='plain']")).ToHaveCountAsync(1);
        await Expect(page.Locator("tr[data-conversation]")).ToHaveCountAsync(1);

        await page.OpenAsync(host, "ui/conversations/no-such-conversation");
        await Expect(page.GetByTestId("problem")).ToHaveAttributeAsync("data-code", "session-not-found");
    }
}
