using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Events;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Conversations.Text;
using CloudMemory.Session.Tests.Infrastructure;

namespace CloudMemory.Session.Tests.Http;

/// <summary>The context always fits the budget (ratio × window, or maxTokens), on each message log.</summary>
public abstract class BoundedContextBehaviour(LogKind kind)
{
    private static string NewId() => "conv-" + Guid.NewGuid().ToString("N")[..12];

    private static CloudMemoryFactory Factory(LogKind kind, int window) => new(kind, new Dictionary<string, string?>
    {
        ["CloudMemory:Memory:ModelContextWindow"] = window.ToString(System.Globalization.CultureInfo.InvariantCulture),
    });

    // compression: null is the default (importance); "none" is the seed 002 contract (whole newest turns, a marker on an oversized last turn).
    private static async Task<MemoryContext> QueryAsync(HttpClient client, string id, string query, int? maxTokens = null, string? compression = null) =>
        await (await client.PostJsonAsync("/v1/context/query", new MemoryQueryRequest(id, Query: query, MaxTokens: maxTokens, Compression: compression))).ReadAsync<MemoryContext>();

    [Fact]
    public async Task ReadmeDemo_400TurnsWithWindow300_ContextStaysInTheWindow_OneCheckpointPerCrossing()
    {
        using var factory = Factory(kind, 300);
        var client = factory.CreateRecordingClient();
        var id = NewId();
        (await client.PostJsonAsync("/v1/sessions", new CreateSessionRequest(id, "u-" + id))).EnsureSuccessStatusCode();
        const int budget = 225; // 0.75 × 300
        long turnTokens = 0;

        for (var i = 1; i <= 400; i++)
        {
            var query = $"I have had a headache for {i} days";
            var answer = "Any fever? Please rest.";
            turnTokens += TokenEstimator.Estimate(ConversationText.RenderTurn(query, answer));
            var before = factory.EventsOfType(EventTypes.CheckpointCreated).Count;
            (await client.PostJsonAsync($"/v1/sessions/{id}/turns", new WriteTurnRequest(null, "triage", query, answer))).EnsureSuccessStatusCode();
            await factory.WhenWorkflowsIdleAsync();

            var context = await QueryAsync(client, id, "Should I take ibuprofen?");
            context.WithQuery("Should I take ibuprofen?").Should().BeLessThanOrEqualTo(budget, $"turn {i}: what is returned fits ratio × window");
            context.EstimatedTokens.Should().BeLessThanOrEqualTo(300, $"turn {i}: the history since the last checkpoint stays within the window");
            context.History.Should().Contain(query, "the last turn is always there");
            if (factory.EventsOfType(EventTypes.CheckpointCreated).Count > before)
            {
                context.ShouldCheckpointSummary.Should().BeFalse($"turn {i}: the checkpoint brought the ratio down");
            }
        }

        var checkpoints = factory.EventsOfType(EventTypes.CheckpointCreated).Count;
        checkpoints.Should().BeGreaterThan(1);
        // A checkpoint keeps at most half the budget, so each crossing needs at least half a budget of new turns.
        checkpoints.Should().BeLessThanOrEqualTo(1 + (int)(turnTokens / (budget / 2)));
        var summaries = factory.EventsOfType(EventTypes.CheckpointCreated).Select(e => e.Data.GetProperty("summary").GetString()!);
        summaries.Should().OnlyContain(s => TokenEstimator.Estimate(s) <= budget / 4, "a summary takes at most SummaryShare of the budget");
    }

    [Fact]
    public async Task HugeTurns_WithTheDefaultWindow_AreTruncatedWithAMarker_AndTheLastTurnIsNeverDropped()
    {
        using var factory = new CloudMemoryFactory(kind);
        var client = factory.CreateRecordingClient();
        var id = NewId();
        (await client.PostJsonAsync("/v1/sessions", new CreateSessionRequest(id, "u-" + id))).EnsureSuccessStatusCode();
        for (var i = 1; i <= 5; i++)
        {
            var big = $"Report {i}: " + string.Concat(Enumerable.Repeat("the patient describes a long history of symptoms. ", 4000));
            (await client.PostJsonAsync($"/v1/sessions/{id}/turns", new WriteTurnRequest(null, "triage", $"question {i}", big))).EnsureSuccessStatusCode();
            await factory.WhenWorkflowsIdleAsync();

            var context = await QueryAsync(client, id, "next?", compression: "none");
            context.WithQuery("next?").Should().BeLessThanOrEqualTo(12000);
            context.Truncated.Should().BeTrue();
            var compressed = await QueryAsync(client, id, "next?");
            compressed.WithQuery("next?").Should().BeLessThanOrEqualTo(12000, "the default (importance) fits the same budget");
            compressed.History.Should().Contain($"question {i}").And.Contain($"Report {i}:", "the last turn is never dropped");
            context.History.Should().Contain($"question {i}").And.Contain($"Report {i}:").And.Contain(ContextFit.TruncationMarker.Trim());
            context.Messages![^1].Content.Should().StartWith($"Report {i}:").And.EndWith(ContextFit.TruncationMarker);
            context.EstimatedTokens.Should().BeLessThan(2 * 50_000, "each crossing is followed by a checkpoint of at most half the budget");
        }
        var session = await (await client.GetAsync($"/v1/sessions/{id}")).ReadAsync<SessionValue>();
        TokenEstimator.Estimate(ConversationText.RenderMessages(session.MessageContext.WindowMessages)).Should().BeLessThanOrEqualTo(12000, "the session's window is bounded too");
    }

    [Fact]
    public async Task MaxTokens_PerRequest_BoundsTheContext_KeepingTheNewestTurns()
    {
        using var factory = new CloudMemoryFactory(kind);
        var client = factory.CreateRecordingClient();
        var id = NewId();
        (await client.PostJsonAsync("/v1/sessions", new CreateSessionRequest(id, "u-" + id))).EnsureSuccessStatusCode();
        for (var i = 1; i <= 10; i++)
        {
            (await client.PostJsonAsync($"/v1/sessions/{id}/turns", new WriteTurnRequest(null, null, $"Turn {i}: my knee hurts when I climb stairs.", $"Answer {i}: try ice and rest."))).EnsureSuccessStatusCode();
        }

        var full = await QueryAsync(client, id, "and?");
        var bounded = await QueryAsync(client, id, "and?", maxTokens: 50, compression: "none");
        var compressed = await QueryAsync(client, id, "and?", maxTokens: 50);

        full.Truncated.Should().BeFalse();
        full.History.Should().Contain("Turn 1:");
        bounded.WithQuery("and?").Should().BeLessThanOrEqualTo(50);
        bounded.MaxTokens.Should().Be(50);
        bounded.Truncated.Should().BeTrue();
        bounded.History.Should().Contain("Turn 10:").And.NotContain("Turn 1:");
        bounded.Messages![0].Role.Should().Be("user", "whole turns are kept, never half of one");
        compressed.WithQuery("and?").Should().BeLessThanOrEqualTo(50, "the default (importance) fits the same budget");
        compressed.Compression!.Applied.Should().BeTrue();
        compressed.History.Should().Contain("Turn 10: my knee hurts when I climb stairs.", "the newest turn is kept verbatim");
        (compressed.Messages!.Count + compressed.Compression.Dropped.Count).Should().Be(20, "every message is kept (whole or condensed) or reported as dropped");
        await (await client.PostJsonAsync("/v1/context/query", new MemoryQueryRequest(id, Query: "q", MaxTokens: 3))).ProblemAsync(400);
    }

    [Fact]
    public async Task CheckpointSummary_LargerThanItsBudget_Is413AndChangesNothing()
    {
        using var factory = Factory(kind, 1000);
        var client = factory.CreateRecordingClient();
        var id = NewId();
        (await client.PostJsonAsync("/v1/sessions", new CreateSessionRequest(id, "u-" + id))).EnsureSuccessStatusCode();
        (await client.PostJsonAsync($"/v1/sessions/{id}/turns", new WriteTurnRequest(null, null, "q", "a"))).EnsureSuccessStatusCode();

        var huge = await client.PostJsonAsync($"/v1/sessions/{id}/checkpoints", new CheckpointRequest(new string('s', 5_000_000)));
        (await huge.ProblemAsync(413)).GetProperty("code").GetString().Should().Be("summary-too-large");
        var tooLong = await client.PostJsonAsync($"/v1/sessions/{id}/checkpoints", new CheckpointRequest(new string('s', 4 * 200)));
        (await tooLong.ProblemAsync(413)).GetProperty("code").GetString().Should().Be("summary-too-large");

        var session = await (await client.GetAsync($"/v1/sessions/{id}")).ReadAsync<SessionValue>();
        session.MessageContext.CheckpointCount.Should().Be(0);
        var fits = await (await client.PostJsonAsync($"/v1/sessions/{id}/checkpoints", new CheckpointRequest(new string('s', 4 * 150)))).ReadAsync<CheckpointResult>();
        fits.CheckpointCount.Should().Be(1);
    }
}

public sealed class InMemoryBoundedContextTests() : BoundedContextBehaviour(LogKind.InMemory);

public sealed class PostgresBoundedContextTests() : BoundedContextBehaviour(LogKind.Postgres);
