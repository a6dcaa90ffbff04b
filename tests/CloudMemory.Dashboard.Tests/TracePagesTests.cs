using System.Text.Json;
using CloudMemory.Contracts.Traces;
using CloudMemory.Dashboard.Tests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace CloudMemory.Dashboard.Tests;

[Collection(DashboardCollection.Name)]
public sealed class TracePagesTests(DashboardFixture fixture)
{
    [Theory]
    [InlineData(Store.InMemory)]
    [InlineData(Store.Postgres)]
    public async Task Trace_page_shows_tree_timeline_failure_audit_and_replay_and_the_diff_highlights_the_first_divergent_step(Store store)
    {
        var host = fixture.Host(store);
        var tenant = Browsing.Unique("t");
        var conversation = Browsing.Unique("c");
        var api = host.Client(tenant);
        await api.IngestStepsAsync([.. Run("run-1", conversation, "search_guidelines"), .. Run("run-2", conversation, "web_fetch")]);

        var page = await fixture.NewPageAsync();
        await page.SignInAsync(host, tenant);
        await page.OpenAsync(host, $"ui/traces?conversationId={conversation}");
        await Expect(page.Locator("[data-testid=steps] tbody tr")).ToHaveCountAsync(8);

        await page.OpenAsync(host, "ui/traces/run-1");
        await Expect(page.Locator("[data-testid=tree] li")).ToHaveCountAsync(4);
        await Expect(page.Locator("[data-testid=tree] > li > ul > li")).ToHaveCountAsync(3);
        await Expect(page.Locator("[data-testid=timeline] rect")).ToHaveCountAsync(4);
        await Expect(page.Locator("[data-testid=timeline] rect.error")).ToHaveCountAsync(1);
        await Expect(page.Locator("[data-testid=timeline] rect.error")).ToHaveAttributeAsync("data-step", "s2");
        await Expect(page.GetByTestId("error-count")).ToHaveTextAsync("1");
        await Expect(page.GetByTestId("critical-path")).ToContainTextAsync("s0");
        await Expect(page.GetByTestId("failures")).ToContainTextAsync("timeout");
        await Expect(page.GetByTestId("audit")).ToContainTextAsync("email");
        await Expect(page.GetByTestId("rollup")).ToContainTextAsync("812 / 37");

        await page.Locator("[data-testid=tree] li[data-step=s2] > .node a").ClickAsync();
        await Expect(page.GetByTestId("step-detail")).ToContainTextAsync("no answer in 450 ms");

        await page.GetByTestId("bp-condition").FillAsync("!success && durationMs > 400");
        await page.GetByTestId("replay").ClickAsync();
        await Expect(page.GetByTestId("replay-stop")).ToContainTextAsync("Stopped at step 2");
        await Expect(page.Locator("[data-testid=replay-log] tbody tr")).ToHaveCountAsync(3);
        await DashboardFixture.ScreenshotAsync(page, "trace");

        await page.GetByTestId("diff-with").FillAsync("run-2");
        await page.GetByTestId("diff-with").PressAsync("Enter");
        await Expect(page.GetByTestId("first-divergence")).ToHaveCountAsync(1);
        await Expect(page.GetByTestId("first-divergence")).ToHaveAttributeAsync("data-step-index", "2");
        await Expect(page.GetByTestId("first-divergence")).ToContainTextAsync("toolChoice");
        await Expect(page.GetByTestId("divergence-summary")).ToContainTextAsync("web_fetch");
        await Expect(page.Locator("tr.diverged")).ToHaveCountAsync(1);
        await DashboardFixture.ScreenshotAsync(page, "trace-diff");
    }

    // A plan step with three children: a model call, a tool call that times out, and its retry; the tool differs per run.
    private static List<TraceStepInput> Run(string traceId, string conversation, string tool)
    {
        var start = new DateTimeOffset(2026, 11, 28, 9, 0, 0, TimeSpan.Zero);
        return
        [
            new() { TraceId = traceId, StepIndex = 0, ContextId = conversation, AgentId = "triage", StepType = "plan", Name = "triage", StartedAt = start, DurationMs = 1800 },
            new() { TraceId = traceId, StepIndex = 1, ContextId = conversation, AgentId = "triage", ParentStepId = "s0", StepType = "llm", Name = "gpt-4o",
                Inputs = JsonSerializer.SerializeToElement(new { content = "Headache for 3 days, reach me at li@example.com" }),
                StartedAt = start.AddMilliseconds(100), DurationMs = 700, Usage = new TokenUsage(812, 37), Cost = 0.004 },
            new() { TraceId = traceId, StepIndex = 2, ContextId = conversation, AgentId = "triage", ParentStepId = "s0", StepType = "tool", Name = tool,
                StartedAt = start.AddMilliseconds(900), DurationMs = 450, Success = false, Error = new StepError("timeout", "no answer in 450 ms") },
            new() { TraceId = traceId, StepIndex = 3, ContextId = conversation, AgentId = "triage", ParentStepId = "s0", StepType = "tool", Name = tool, RetryOf = "s2",
                Outputs = JsonSerializer.SerializeToElement(new { hits = 3 }), StartedAt = start.AddMilliseconds(1400), DurationMs = 300 },
        ];
    }
}
