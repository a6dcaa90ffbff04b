using System.Globalization;
using System.Net.Http.Json;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Conversations.Text;
using CloudMemory.Session.Tests.Infrastructure;

namespace CloudMemory.Compression.Tests;

/// <summary><c>compression</c> of <c>POST /v1/context/query</c> on the embedded host, on both message logs.</summary>
public abstract class ContextCompressionBehaviour(LogKind kind) : IDisposable
{
    private readonly CloudMemoryFactory _factory = new(kind, new Dictionary<string, string?> { ["CloudMemory:Memory:AutoCheckpoint"] = "false" });

    public void Dispose()
    {
        _factory.Dispose();
        GC.SuppressFinalize(this);
    }

    private async Task<(HttpClient Client, string Id)> LongConversationAsync(int fillerTurns, string filler = "Okay thanks, that sounds good, round {0}.")
    {
        var client = _factory.CreateClient();
        var id = "cmp-" + Guid.NewGuid().ToString("N")[..10];
        (await client.PostAsJsonAsync("v1/sessions", new CreateSessionRequest(id, "patient-7"), ContractsJson.Options)).EnsureSuccessStatusCode();
        await TurnAsync(client, id, "Before anything else: I am allergic to penicillin and carry an EpiPen.", "Understood, I have noted the penicillin allergy.");
        for (var i = 0; i < fillerTurns; i++)
        {
            await TurnAsync(client, id, string.Format(CultureInfo.InvariantCulture, filler, i), "Great, glad to hear it, anything else I can do for you today?");
        }
        await TurnAsync(client, id, "My knee has been swollen for 3 days after a fall.", "Please keep it raised and book an appointment with orthopaedics.");
        return (client, id);
    }

    private static async Task TurnAsync(HttpClient client, string id, string query, string answer) =>
        (await client.PostAsJsonAsync($"v1/sessions/{id}/turns", new WriteTurnRequest(null, "triage", query, answer), ContractsJson.Options)).EnsureSuccessStatusCode();

    private const string Query = "What should I take for the pain?";

    private static async Task<MemoryContext> QueryAsync(HttpClient client, string id, string? compression, int maxTokens) =>
        await (await client.PostAsJsonAsync("v1/context/query", new MemoryQueryRequest(id, Query: Query, MaxTokens: maxTokens, Compression: compression),
            ContractsJson.Options)).ReadAsync<MemoryContext>();

    [Fact]
    public async Task Query_HistoryOverTheTrigger_IsCompressedAndKeepsTheSafetyFact()
    {
        var (client, id) = await LongConversationAsync(fillerTurns: 25);

        var none = await QueryAsync(client, id, "none", maxTokens: 400);
        var importance = await QueryAsync(client, id, "importance", maxTokens: 400);

        none.History.Should().NotContain("penicillin", "recency truncation loses the oldest turn");
        importance.History.Should().Contain("allergic to penicillin");
        importance.History.Should().Contain("My knee has been swollen for 3 days after a fall.", "the newest turn is kept verbatim");
        importance.Compression!.Applied.Should().BeTrue();
        importance.Compression.Method.Should().Be("importance");
        importance.Compression.KeptTokens.Should().BeLessThan(importance.Compression.OriginalTokens);
        importance.Compression.Dropped.Should().NotBeEmpty().And.OnlyContain(d => d.Why.Length > 0);
        importance.ContextTokens.Should().BeLessThanOrEqualTo(400);
        importance.Messages!.Select(m => m.Role).Should().StartWith(ChatMessage.UserRole).And.EndWith(ChatMessage.AssistantRole);
        none.Compression.Should().BeNull();
    }

    [Fact]
    public async Task Query_TheRatio_IsCountedInTheModelsTokens_AndTheBudgetByTheEstimator()
    {
        // Long words: the estimator (a quarter token per character) counts them well above o200k.
        var (client, id) = await LongConversationAsync(fillerTurns: 25, "Physiotherapy documentation acknowledged; orthopaedic consultation rescheduled, round {0}.");
        var whole = await QueryAsync(client, id, "none", maxTokens: 100_000);
        var modelTokens = ContextTokens.O200kTokens(whole.Messages!);
        var estimated = TokenEstimator.Estimate(whole.History);
        var maxTokens = (int)(estimated / 0.93) + 12; // the history passes the trigger (90 %), and the budget is above the 0.7 ratio

        var context = await QueryAsync(client, id, "importance", maxTokens);

        context.Compression!.Applied.Should().BeTrue();
        context.Compression.OriginalTokens.Should().Be(modelTokens, "the ratio is counted with the configured tokenizer (o200k_base)");
        estimated.Should().BeGreaterThan(modelTokens * 21 / 20, "the estimator counts this history well above o200k (else this test shows nothing)");
        context.Compression.KeptTokens.Should().BeLessThanOrEqualTo((int)Math.Ceiling(0.7 * context.Compression.OriginalTokens)).And.BeGreaterThan(context.Compression.OriginalTokens / 2);
        ContextTokens.O200kTokens(context.Messages!).Should().Be(context.Compression.KeptTokens, "what is returned is what the report counts");
        TokenEstimator.Estimate(ConversationText.RenderMessages(context.Messages!)).Should().BeLessThanOrEqualTo(maxTokens, "the budget is still counted by the estimator");
        context.ContextTokens.Should().BeLessThanOrEqualTo(maxTokens);
    }

    [Fact]
    public async Task Query_ABudgetThatBindsFirst_IsKept_AndTheReportStaysInTheModelsTokens()
    {
        var (client, id) = await LongConversationAsync(fillerTurns: 25, "Physiotherapy documentation acknowledged; orthopaedic consultation rescheduled, round {0}.");
        var whole = await QueryAsync(client, id, "none", maxTokens: 100_000);

        var context = await QueryAsync(client, id, "importance", maxTokens: 150); // far below 0.7 of the history

        context.Compression!.Applied.Should().BeTrue();
        context.WithQuery(Query).Should().BeLessThanOrEqualTo(150, "what is returned fits the budget as the estimator counts it");
        context.Compression.OriginalTokens.Should().Be(ContextTokens.O200kTokens(whole.Messages!));
        context.Compression.KeptTokens.Should().Be(ContextTokens.O200kTokens(context.Messages!), "the report counts what is returned, in the configured tokenizer's tokens");
        context.Compression.Dropped.Should().OnlyContain(d => d.Tokens == ContextTokens.O200kTokens(new[] { whole.Messages![d.Index] }));
        context.History.Should().Contain("allergic to penicillin");

        // A budget under what must stay (the safety fact, the newest turn): counted by the estimator in the end, still reported in o200k tokens.
        var tight = await QueryAsync(client, id, "importance", maxTokens: 30);
        tight.History.Should().Contain("allergic to penicillin", "safety facts are kept even past the budget");
        tight.Compression!.KeptTokens.Should().Be(ContextTokens.O200kTokens(tight.Messages!));
        tight.Compression.OriginalTokens.Should().Be(context.Compression.OriginalTokens);
    }

    [Fact]
    public async Task Query_HistoryUnderTheTrigger_IsReturnedWhole()
    {
        var (client, id) = await LongConversationAsync(fillerTurns: 1);

        var context = await QueryAsync(client, id, "importance", maxTokens: 4000);
        var byDefault = await QueryAsync(client, id, null, maxTokens: 4000);

        byDefault.Compression!.Method.Should().Be("importance", "the default, chosen by measurement");
        byDefault.Compression.Applied.Should().BeFalse("under the trigger nothing changes");

        context.Compression!.Applied.Should().BeFalse();
        context.Compression.Dropped.Should().BeEmpty();
        context.History.Should().Be(context.FullHistory);
    }

    [Fact]
    public async Task Query_UnknownCompression_Answers400()
    {
        var (client, id) = await LongConversationAsync(fillerTurns: 0);

        var response = await client.PostAsJsonAsync("v1/context/query", new MemoryQueryRequest(id, Compression: "zip"), ContractsJson.Options);

        (await response.ProblemAsync(400)).GetProperty("code").GetString().Should().Be("invalid-compression");
    }
}

public sealed class InMemoryContextCompressionBehaviour() : ContextCompressionBehaviour(LogKind.InMemory);

public sealed class PostgresContextCompressionBehaviour() : ContextCompressionBehaviour(LogKind.Postgres);
