using System.Text.Json;
using CloudMemory.Contracts.Feedback;
using CloudMemory.Feedback.Features.Analysis;
using CloudMemory.Feedback.Tests.Infrastructure;

namespace CloudMemory.Feedback.Tests.Feedback;

public abstract partial class FeedbackApiBehaviour
{
    private static readonly DateTimeOffset Day1 = new(2026, 3, 1, 0, 0, 0, TimeSpan.Zero);

    private async Task RecordAsync(string agent, int rating, int length, DateTimeOffset at, params string[] issues)
    {
        var response = await PostAsync(new RecordFeedbackRequest(null, new FeedbackTarget("trace", "tr-" + Guid.NewGuid().ToString("N")[..6]), agent, "user", "rating",
            JsonSerializer.SerializeToElement(rating), null, issues, Metrics: new Dictionary<string, double> { ["responseLength"] = length }, CreatedAt: at));
        response.EnsureSuccessStatusCode();
    }

    [Fact]
    public async Task Analysis_LongAnswersRatedDown_DetectsResponseTooLong_WithPreferredLength_AndTrendsPerWindow()
    {
        // Day 1: short answers liked; day 2: long answers disliked with length complaints, one accuracy complaint.
        foreach (var (rating, length) in new[] { (5, 280), (4, 320), (5, 300), (4, 310) })
        {
            await RecordAsync("agent-x", rating, length, Day1.AddHours(3));
        }
        await RecordAsync("agent-x", 2, 1200, Day1.AddHours(30), "The answer was way too long");
        await RecordAsync("agent-x", 1, 1500, Day1.AddHours(31), "too verbose");
        await RecordAsync("agent-x", 2, 1100, Day1.AddHours(32), "太长了");
        await RecordAsync("agent-x", 2, 900, Day1.AddHours(33), "wrong dosage");
        await RecordAsync("agent-y", 1, 300, Day1.AddHours(3), "so slow", "took too long", "waited forever");

        var analysis = await (await _client.GetAsync($"/v1/feedback/analysis?agentId=agent-x&since={Day1:O}&until={Day1.AddDays(2):O}&window=1d".Replace("+", "%2B", StringComparison.Ordinal), _tenant))
            .ReadAsync<FeedbackAnalysis>();

        analysis.FeedbackCount.Should().Be(8);
        analysis.Patterns.Single(p => p.Name == "response_too_long").Detected.Should().BeTrue();
        analysis.Patterns.Single(p => p.Name == "accuracy_issues").Detected.Should().BeFalse("one complaint is below the evidence threshold");
        analysis.Patterns.Single(p => p.Name == "speed_concerns").Detected.Should().BeFalse("agent-y's complaints are not agent-x's");
        analysis.PreferredLength.Should().BeInRange(280, 320);
        analysis.IssueCategories.Should().ContainSingle(c => c.Category == "too_long").Which.Count.Should().Be(3);
        analysis.Distributions.Single(d => d.Name == "rating").Counts.Should().BeEquivalentTo(new Dictionary<string, int> { ["1"] = 1, ["2"] = 3, ["4"] = 2, ["5"] = 2 });
        analysis.Trends.Should().HaveCount(2);
        analysis.Trends[0].PositiveShare.Should().Be(1);
        analysis.Trends[1].PositiveShare.Should().Be(0);
        analysis.Trends[1].IssueCount.Should().Be(4);

        var other = await (await _client.GetAsync($"/v1/feedback/analysis?agentId=agent-y&since={Day1:O}&until={Day1.AddDays(2):O}".Replace("+", "%2B", StringComparison.Ordinal), _tenant))
            .ReadAsync<FeedbackAnalysis>();
        other.Patterns.Single(p => p.Name == "speed_concerns").Should().Match<DetectedPattern>(p => !p.Detected, "one record is below the evidence threshold even with three speed issues");
        var empty = await (await _client.GetAsync($"/v1/feedback/analysis?agentId=agent-x&since={Day1:O}&until={Day1.AddDays(2):O}".Replace("+", "%2B", StringComparison.Ordinal), "other-" + _tenant))
            .ReadAsync<FeedbackAnalysis>();
        empty.FeedbackCount.Should().Be(0, "another tenant's analysis sees none of it");
        (await (await _client.GetAsync("/v1/feedback/analysis?window=0d", _tenant)).ProblemAsync(400)).GetProperty("code").GetString().Should().Be("invalid-window");
    }

    [Fact]
    public async Task Analysis_PerStepType_CountsOnlyThatStepTypesFeedback()
    {
        foreach (var (stepType, rating) in new[] { ("retrieval", 1), ("retrieval", 2), ("llm", 5) })
        {
            (await PostAsync(new RecordFeedbackRequest(null, new FeedbackTarget("step", "s-" + Guid.NewGuid().ToString("N")[..6]), "agent-z", "user", "rating",
                JsonSerializer.SerializeToElement(rating), StepType: stepType))).EnsureSuccessStatusCode();
        }

        var retrieval = await (await _client.GetAsync("/v1/feedback/analysis?agentId=agent-z&stepType=retrieval", _tenant)).ReadAsync<FeedbackAnalysis>();
        var all = await (await _client.GetAsync("/v1/feedback/analysis?agentId=agent-z", _tenant)).ReadAsync<FeedbackAnalysis>();

        retrieval.FeedbackCount.Should().Be(2);
        retrieval.Scores.PositiveShare.Should().Be(0, "both retrieval ratings are negative");
        all.FeedbackCount.Should().Be(3);
    }
}

public sealed class IssueCategoriesTests
{
    [Theory]
    [InlineData("Way too long, please be brief", IssueCategories.TooLong)]
    [InlineData("it took too long to answer", IssueCategories.Speed)]
    [InlineData("The dosage was wrong", IssueCategories.Accuracy)]
    [InlineData("回答太长", IssueCategories.TooLong)]
    [InlineData("response_too_long", IssueCategories.TooLong)]
    [InlineData("I like turtles", IssueCategories.Other)]
    public void Categorize_MapsIssueTextToItsCategory(string issue, string category) =>
        IssueCategories.Categorize(issue).Should().Be(category);
}
