using System.Net.Http.Json;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Conversations.Compression;
using CloudMemory.Conversations.Summaries;
using CloudMemory.Conversations.Text;
using CloudMemory.Session.Tests.Infrastructure;

namespace CloudMemory.Compression.Tests;

/// <summary>The LLM rewrite of condensed messages (an OpenAI-compatible fake on loopback, WireMock.Net).</summary>
public sealed class LlmCompressionTests : IDisposable
{
    private const string Said = "Hi! So I adopted a beagle named Max from the Riverside shelter last Sunday, it was a long day.";
    private const string Condensed = "adopted beagle named Max Riverside shelter last Sunday.";

    private readonly ChatCompletionsStub _llm = new();

    public void Dispose() => _llm.Dispose();

    private LlmCompressionRewriter Rewriter() => new(new LlmOptions { Endpoint = _llm.Endpoint.ToString(), Model = "gpt-test" });

    // A history of three messages compressed to: the first dropped, the second condensed, the third verbatim.
    private static (List<ChatMessage> Original, CompressionResult Result) Compressed()
    {
        var original = new List<ChatMessage>
        {
            new(ChatMessage.AssistantRole, "How was your week?") { Name = "coach" },
            new(ChatMessage.UserRole, Said) { Name = "sam" },
            new(ChatMessage.AssistantRole, "Lovely, enjoy the walks.") { Name = "coach" },
        };
        var kept = new List<ChatMessage> { original[1] with { Content = MessageCompressor.GapMarker + Condensed }, original[2] };
        var units = TokenEstimator.Units(ConversationText.RenderMessages(kept));
        return (original, new CompressionResult(kept, [1, 2], TokenEstimator.Units(ConversationText.RenderMessages(original)), units, 1, 1, [], []));
    }

    [Fact]
    public async Task Rewrite_ALineKeepingEveryWord_ReplacesTheCondensedMessageOnly()
    {
        var (original, result) = Compressed();
        _llm.RepliesWith("[1] sam: I adopted a beagle named Max from the Riverside shelter last Sunday.");

        var (rewritten, count) = await Rewriter().RewriteAsync(original, result, result.OriginalUnits);

        count.Should().Be(1);
        rewritten.Messages[0].Content.Should().Be(MessageCompressor.GapMarker + "I adopted a beagle named Max from the Riverside shelter last Sunday.");
        rewritten.Messages[0].Name.Should().Be("sam");
        rewritten.Messages[0].Role.Should().Be(ChatMessage.UserRole);
        rewritten.Messages[1].Should().Be(original[2], "verbatim messages are neither sent nor changed");
        rewritten.KeptUnits.Should().Be(TokenEstimator.Units(ConversationText.RenderMessages(rewritten.Messages)));
        var prompt = _llm.Requests.Should().ContainSingle().Subject.GetProperty("messages")[0].GetProperty("content").GetString();
        prompt.Should().Contain("[1] sam: " + Condensed).And.NotContain("Lovely", "only condensed messages are sent");
    }

    [Fact]
    public async Task Rewrite_ALineThatLosesAWord_OrDoesNotFit_KeepsTheExtractiveText()
    {
        var (original, result) = Compressed();
        _llm.RepliesWith("[1] I adopted a dog last Sunday.");

        var (lost, lostCount) = await Rewriter().RewriteAsync(original, result, result.OriginalUnits);

        lostCount.Should().Be(0);
        lost.Messages.Should().Equal(result.Messages);

        _llm.RepliesWith("[1] I adopted a beagle named Max from the Riverside shelter last Sunday.");
        var (tight, tightCount) = await Rewriter().RewriteAsync(original, result, result.KeptUnits);

        tightCount.Should().Be(0, "the rewrite is longer and the budget has no room");
        tight.Messages.Should().Equal(result.Messages);
    }

    [Fact]
    public async Task Query_WhenTheLlmFails_AnswersWithTheExtractiveCompression()
    {
        _llm.FailsWith(503);
        using var factory = new CloudMemoryFactory(LogKind.InMemory, new Dictionary<string, string?>
        {
            ["CloudMemory:Memory:AutoCheckpoint"] = "false",
            ["CloudMemory:Llm:Endpoint"] = _llm.Endpoint.ToString(),
            ["CloudMemory:Llm:Timeout"] = "00:00:05",
        });
        var client = factory.CreateClient();
        var id = "llm-" + Guid.NewGuid().ToString("N")[..10];
        (await client.PostAsJsonAsync("v1/sessions", new CreateSessionRequest(id, "patient-9"), ContractsJson.Options)).EnsureSuccessStatusCode();
        await TurnAsync(client, id, "Before anything else: I am allergic to penicillin and carry an EpiPen.", "Understood, I have noted the penicillin allergy.");
        for (var i = 0; i < 25; i++)
        {
            await TurnAsync(client, id, $"I walked my dog Rex to the Elm Park lake on day {i} of the trip.", "Great, glad to hear it, anything else I can do for you today?");
        }

        var context = await (await client.PostAsJsonAsync("v1/context/query", new MemoryQueryRequest(id, Query: "What now?", MaxTokens: 400, Compression: "importance"),
            ContractsJson.Options)).ReadAsync<MemoryContext>();

        context.Compression!.Applied.Should().BeTrue();
        context.Compression.Condensed.Should().BePositive();
        context.Compression.Rewriter.Should().Be("extractive (llm failed)", "the configured model answered 503 (after the client's retries)");
        context.History.Should().Contain("allergic to penicillin");
        context.ContextTokens.Should().BeLessThanOrEqualTo(400);
    }

    private static async Task TurnAsync(HttpClient client, string id, string query, string answer) =>
        (await client.PostAsJsonAsync($"v1/sessions/{id}/turns", new WriteTurnRequest(null, "triage", query, answer), ContractsJson.Options)).EnsureSuccessStatusCode();
}
