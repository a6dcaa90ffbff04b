using CloudMemory.Contracts.Sessions;
using CloudMemory.Conversations.Compression;
using CloudMemory.Conversations.Text;

namespace CloudMemory.Compression.Tests;

public sealed class ImportanceAndCompressorTests
{
    private static readonly string[] Fillers =
    [
        "Hi there, how are you doing today?", "Good, thanks for asking!", "That sounds nice.", "Haha yes, totally.", "Cool, glad to hear it.",
        "Okay, sure thing.", "Wow, that's awesome!", "Thanks so much!", "Yeah, I know what you mean.", "Great, sounds good to me.",
    ];

    private static List<ChatMessage> Conversation(int fillerRounds, string fact) =>
        WithFillers([new(ChatMessage.UserRole, fact), new(ChatMessage.AssistantRole, "Noted, thank you for telling me.")], fillerRounds);

    // Rounds of small talk after messages: a filler of the first speaker, then one of the other.
    private static List<ChatMessage> WithFillers(List<ChatMessage> messages, int rounds, string firstRole = ChatMessage.UserRole, string? firstName = null, string? secondName = null)
    {
        var secondRole = firstRole == ChatMessage.UserRole ? ChatMessage.AssistantRole : ChatMessage.UserRole;
        for (var i = 0; i < rounds; i++)
        {
            messages.Add(new ChatMessage(firstRole, Fillers[i % Fillers.Length]) { Name = firstName });
            messages.Add(new ChatMessage(secondRole, Fillers[(i + 3) % Fillers.Length]) { Name = secondName });
        }
        return messages;
    }

    private static long Units(IEnumerable<ChatMessage> messages) => TokenEstimator.Units(ConversationText.RenderMessages(messages));

    [Fact]
    public void EvaluateMessages_EveryScore_IsExplainedAndInRange()
    {
        var messages = Conversation(5, "I booked the MRI with Dr. Chen at Mercy Hospital on 12 May at 9:30.");

        var scores = new ImportanceEvaluator().EvaluateMessages(messages);

        scores.Should().HaveCount(messages.Count);
        scores.Should().OnlyContain(s => s.Score >= 0 && s.Score <= 1 && s.Why.Contains("content") && s.Why.Contains("interaction") && s.Why.Contains("temporal"));
        scores[0].Why.Should().Contain("entit").And.Contain("date");
        scores[0].Content.Should().BeGreaterThan(scores.Skip(2).Max(s => s.Content), "a message with entities and a date says more than small talk");
    }

    [Fact]
    public void EvaluateMessages_SafetyFact_ScoresAtTheTopAndSaysWhy()
    {
        var messages = Conversation(3, "By the way I get a rash from amoxicillin.");

        var scores = new ImportanceEvaluator().EvaluateMessages(messages, ["amoxicillin"]);

        scores[0].Safety.Should().BeTrue();
        scores[0].Score.Should().BeGreaterThanOrEqualTo(0.95);
        scores[0].Why.Should().Contain("safety fact");
    }

    [Fact]
    public void EvaluateMessages_Weights_AreConfigurable()
    {
        var messages = Conversation(4, "My daughter Emma starts at Lincoln Elementary on 3 September.");

        var recencyOnly = new ImportanceEvaluator(new ImportanceWeights { Temporal = 1, Content = 0, Interaction = 0 }).EvaluateMessages(messages);
        var contentOnly = new ImportanceEvaluator(new ImportanceWeights { Temporal = 0, Content = 1, Interaction = 0 }).EvaluateMessages(messages);

        recencyOnly.MaxBy(s => s.Score)!.Index.Should().Be(messages.Count - 1);
        contentOnly.MaxBy(s => s.Score)!.Index.Should().Be(0);
    }

    [Theory]
    [InlineData(0.05)]
    [InlineData(0.2)]
    [InlineData(0.3)]
    [InlineData(0.5)]
    [InlineData(0.7)]
    [InlineData(0.9)]
    public void Compress_AtAnyRatio_KeepsTheSafetyFactAndTheStructure(double ratio)
    {
        var messages = Conversation(30, "Important: I am allergic to penicillin, it gave me anaphylaxis in 2019.");
        messages.Insert(10, new ChatMessage(ChatMessage.AssistantRole, "I will hand you over to the booking agent.") { Name = "triage" });
        var target = (long)(ratio * Units(messages));

        var result = new MessageCompressor(new ImportanceEvaluator()).Compress(messages, target);

        result.Messages.Should().Contain(m => m.Content.Contains("allergic to penicillin", StringComparison.Ordinal), "safety facts are never compressed away");
        result.KeptUnits.Should().BeLessThanOrEqualTo(Math.Max(target, Units(messages.Take(1)) + Units(messages.TakeLast(2)) + 8));
        result.SourceIndexes.Should().BeInAscendingOrder("the order is kept");
        result.Messages.Zip(result.SourceIndexes).Should().OnlyContain(p => p.First.Role == messages[p.Second].Role && p.First.Name == messages[p.Second].Name, "who said what is kept");
        (result.Messages.Count + result.Dropped.Count).Should().Be(messages.Count, "every message is kept or reported as dropped");
        result.Dropped.Where(d => d.Why.Length == 0).Should().BeEmpty();
        if (ratio >= 0.2)
        {
            result.Messages[^1].Should().Be(messages[^1], "the newest turn is kept verbatim when the budget allows");
        }
    }

    [Theory]
    [InlineData(TokenCounters.Estimate)]
    [InlineData(TokenCounters.O200kBase)]
    [InlineData(TokenCounters.Cl100kBase)]
    public void Compress_AtEveryBudget_StaysWithinIt_AndLeavesLittleUnused(string tokenizer)
    {
        // Sessions opened by system lines, two named speakers, multi-sentence messages that repeat
        // words, an empty message and a tool call with its result: every way the rendering can
        // differ from the sum of its parts (gap markers, sentence joins, separators).
        string[] news = ["I adopted a beagle named Max from the Riverside shelter last Sunday.", "We drove to Lake Tahoe in March. The lake was frozen. Max loved the snow.",
            "My sister Ana starts at Lincoln Elementary on 3 September. She is nervous.", "I finished the pottery class. The bowl came out black and white."];
        var messages = new List<ChatMessage>();
        for (var session = 0; session < 6; session++)
        {
            messages.Add(new ChatMessage(ChatMessage.SystemRole, $"Session {session + 1}, {session + 2} May 2023."));
            messages.Add(new ChatMessage(ChatMessage.UserRole, news[session % news.Length]) { Name = "Caroline" });
            messages.Add(new ChatMessage(ChatMessage.AssistantRole, "That sounds lovely, Caroline! How did Max like it? I took my kids camping last week.") { Name = "Melanie" });
            if (session == 2)
            {
                messages.Add(new ChatMessage(ChatMessage.AssistantRole, "") { Name = "Melanie", ToolCalls = [new ToolCall("c1", new ToolFunction("weather", "{\"city\":\"Tahoe\"}"))] });
                messages.Add(new ChatMessage(ChatMessage.ToolRole, "Snow, -4 C.") { ToolCallId = "c1" });
            }
            messages.Add(new ChatMessage(ChatMessage.UserRole, "He loved it. Max chased every snowball, and Max slept all the way home.") { Name = "Caroline" });
            messages.Add(new ChatMessage(ChatMessage.AssistantRole, session == 4 ? "" : "Great to hear!") { Name = "Melanie" });
        }
        var counter = TokenCounters.Create(tokenizer);
        var compressor = new MessageCompressor(new ImportanceEvaluator()) { Counter = counter };
        long UnitsOf(IEnumerable<ChatMessage> kept) => counter.JoinedUnits(kept.Select(ConversationText.RenderMessage));
        var original = UnitsOf(messages);

        for (var target = UnitsOf(messages.TakeLast(2)) + 64; target < original; target += 7)
        {
            var result = compressor.Compress(messages, target);

            result.OriginalUnits.Should().Be(original);
            result.KeptUnits.Should().Be(UnitsOf(result.Messages), "the reported size is the rendered size, as the counter counts it");
            result.KeptUnits.Should().BeLessThanOrEqualTo(target, $"the compressed history fits its budget of {target} units");
            result.KeptUnits.Should().BeGreaterThan(target - 90, $"a budget of {target} units is used up to less than a message's overhead and a sentence");
        }
    }

    [Fact]
    public void Compress_KeepsFactBearingSentencesOverSmallTalk()
    {
        var messages = Conversation(20, "Hi! So glad to chat. I adopted a beagle named Max from the Riverside shelter last Sunday.");

        var result = new MessageCompressor(new ImportanceEvaluator()).Compress(messages, (long)(0.3 * Units(messages)));

        var kept = string.Join(" ", result.Messages.Select(m => m.Content));
        kept.Should().Contain("beagle").And.Contain("Max").And.Contain("Riverside").And.Contain("Sunday");
        result.Dropped.Should().NotBeEmpty();
        result.Dropped.Average(d => d.Importance).Should().BeLessThan(result.Scores[0].Score);
    }

    [Fact]
    public void Compress_PrefersWhatIsSaidOnceOverWhatTheConversationKeepsRepeating()
    {
        // Two statements opening the conversation, alike in form (the newer one also dates itself, so it
        // ranks higher on content and recency alone);
        // the words of the newer one come back in every later round, those of the older one never.
        var messages = new List<ChatMessage>
        {
            new(ChatMessage.UserRole, "I completed my pottery workshop at Clayhouse."),
            new(ChatMessage.UserRole, "I finished my morning training session at Riverside yesterday."),
        };
        for (var i = 0; i < 12; i++)
        {
            messages.Add(new ChatMessage(ChatMessage.AssistantRole, $"Morning training at Riverside again, round {i}?"));
            messages.Add(new ChatMessage(ChatMessage.UserRole, "Yes, the morning training at Riverside, as always."));
        }
        var budget = Units(messages[^1..]) + 1 + 70; // the newest turn, and room for one of the two statements condensed (about 55 units each)

        var result = new MessageCompressor(new ImportanceEvaluator()).Compress(messages, budget);

        var kept = string.Join(" ", result.Messages.Select(m => m.Content));
        kept.Should().Contain("pottery").And.Contain("Clayhouse", "a fact said once is the one a later question cannot find anywhere else");
        result.SourceIndexes.Should().NotContain(1, "the statement the conversation keeps repeating goes first when the budget is short");
    }

    [Fact]
    public void Compress_LeavesOutWordsTheMessageAlreadySaid_SoMoreOfItFits()
    {
        // The second sentence repeats "Max" and "beagle" of the first; the budget holds the newest turn
        // and the fact message condensed with each word said once, not with the repeats.
        var messages = Conversation(10, "I adopted a beagle named Max. Max the beagle chews the Riverside shelter blanket.");
        var condensedOnce = "adopted beagle named Max. chews Riverside shelter blanket.";
        var budget = Units(messages[^2..]) + 1 + Units([new ChatMessage(ChatMessage.UserRole, condensedOnce)]) + 12; // + each message's separator and gap marker; the repeats would need 11 more

        var result = new MessageCompressor(new ImportanceEvaluator()).Compress(messages, budget);
        var withRepeats = new MessageCompressor(new ImportanceEvaluator()) { OmitRepeatedWords = false }.Compress(messages, budget);

        var fact = result.Messages[result.SourceIndexes.ToList().IndexOf(0)].Content;
        fact.Should().Contain("Max").And.Contain("Riverside").And.Contain("blanket", "the words saved on repeats buy the rest of the message");
        fact.Split(' ').Count(w => w.Trim('.') == "beagle").Should().Be(1);
        result.KeptUnits.Should().BeLessThanOrEqualTo(budget);
        string.Join(" ", withRepeats.Messages.Select(m => m.Content)).Should().NotContain("blanket", "with the repeats the second sentence does not fit");
    }

    [Fact]
    public void Compress_RanksADescriptionAboveTheSameKindOfRemarkToTheOtherSpeaker()
    {
        // Alike in form and content; the remark is newer (recency alone would keep it).
        var messages = WithFillers(
        [
            new(ChatMessage.UserRole, "The old mill beside the river collapsed."),
            new(ChatMessage.UserRole, "Your new barn near the creek flooded."),
        ], 6, firstRole: ChatMessage.AssistantRole);
        var budget = Units(messages[^2..]) + 1 + 45; // the newest turn, and room for one of the two condensed (about 40 units each)

        var result = new MessageCompressor(new ImportanceEvaluator()).Compress(messages, budget);
        var withoutRule = new MessageCompressor(new ImportanceEvaluator()) { DescriptionFactor = 1 }.Compress(messages, budget);

        result.SourceIndexes.Should().Contain(0).And.NotContain(1);
        withoutRule.SourceIndexes.Should().Contain(1, "without the description factor the newer remark ranks first");
    }

    [Fact]
    public void Compress_RanksTheOpeningOfASessionAboveTheSameKindOfMessageLaterOn_OnlyWhenSystemLinesDivideTheHistory()
    {
        // Alike in form and content; the later one is newer (recency alone would keep it).
        var opening = "I painted the garden shed on Sunday.";
        var later = "I fixed the kitchen tap on Monday.";
        var sessions = new List<ChatMessage>
        {
            new(ChatMessage.SystemRole, "Session 1, 3 May 2023."),
            new(ChatMessage.UserRole, opening),
            new(ChatMessage.AssistantRole, "Cool, glad to hear it."),
            new(ChatMessage.UserRole, "Okay, sure thing."),
            new(ChatMessage.AssistantRole, "Thanks so much!"),
            new(ChatMessage.SystemRole, "Session 2, 9 May 2023."),
            new(ChatMessage.UserRole, "That sounds nice."),
            new(ChatMessage.AssistantRole, "Good, thanks for asking!"),
            new(ChatMessage.UserRole, later),
            new(ChatMessage.AssistantRole, "Wow, that's awesome!"),
            new(ChatMessage.UserRole, "Haha yes, totally."),
            new(ChatMessage.AssistantRole, "Great, sounds good to me."),
        };
        var budget = Units(sessions[^2..]) + 1 + 50; // the newest turn (with its gap markers), and room for one of the two condensed (about 36 units each with the message's overhead)
        var compressor = new MessageCompressor(new ImportanceEvaluator());

        var result = compressor.Compress(sessions, budget);
        var withoutRule = new MessageCompressor(new ImportanceEvaluator()) { OpeningFactor = 1 }.Compress(sessions, budget);
        var undivided = compressor.Compress(sessions.Where(m => m.Role != ChatMessage.SystemRole).ToList(), budget);

        result.SourceIndexes.Should().Contain(1, "a session opens with the news since the last one").And.NotContain(8);
        withoutRule.SourceIndexes.Should().Contain(8, "without the opening factor the newer message ranks first").And.NotContain(1);
        undivided.Messages.Select(m => m.Content).Should().ContainMatch("*kitchen*", "with no system lines there are no sessions, and the rule does nothing")
            .And.NotContain(m => m.Contains("garden", StringComparison.Ordinal));
    }

    [Fact]
    public void Compress_LeavesOutHedgesAndDiscourseMarkers_KeepingTheFact()
    {
        var messages = Conversation(10, "I'm gonna maybe visit the Louvre in Paris next month, btw. Anyway, I booked a hotel near the Seine.");
        var budget = Units(messages[^2..]) + 1 + 80; // the newest turn, and about the fact message condensed

        var result = new MessageCompressor(new ImportanceEvaluator()).Compress(messages, budget);

        var fact = result.Messages[result.SourceIndexes.ToList().IndexOf(0)].Content;
        fact.Should().Contain("Louvre").And.Contain("Paris").And.Contain("Seine");
        fact.Split(' ').Select(TextSignals.WordKey).Should().NotContain(["gonna", "btw", "anyway"]);
        fact.Split(' ').Select(TextSignals.WordKey).Should().Contain("maybe", "the visit is uncertain, and the condensed fact must still say so");
        TextSignals.IsHedge("gonna").Should().BeTrue();
        TextSignals.IsHedge("probably").Should().BeFalse();
        TextSignals.IsHedge("paris").Should().BeFalse();
    }

    [Fact]
    public void Condense_LeavesOutFunctionWordsAndBarePunctuation()
    {
        TextSignals.Condense("I took the first step - I applied to adoption agencies!").Should().Be("took first step applied adoption agencies");
        TextSignals.Condense("Oh, wow!").Should().Be("Oh, wow!", "a sentence with nothing left keeps its words");
        TextSignals.IsDescription("The lake froze in March.").Should().BeTrue();
        TextSignals.IsDescription("I saw the lake freeze.").Should().BeFalse();
        TextSignals.IsDescription("Did the lake freeze?").Should().BeFalse();
    }

    [Fact]
    public void Compress_LeavesOutTheNamesThatAddressTheOtherSpeaker()
    {
        var messages = WithFillers(
        [
            new(ChatMessage.UserRole, "Hey Gina! I opened my dance studio downtown on Friday.") { Name = "Jon" },
            new(ChatMessage.AssistantRole, "Congrats, Jon! I sold the blue bicycle to Priya yesterday.") { Name = "Gina" },
        ], 10, firstName: "Jon", secondName: "Gina");
        var budget = Units(messages[^2..]) + 1 + 110; // the newest turn, and the two statements condensed (about 95 units with their labels)

        var result = new MessageCompressor(new ImportanceEvaluator()).Compress(messages, budget);

        var first = result.Messages[result.SourceIndexes.ToList().IndexOf(0)].Content;
        var second = result.Messages[result.SourceIndexes.ToList().IndexOf(1)].Content;
        first.Should().Contain("studio").And.Contain("Friday").And.NotContain("Gina");
        second.Should().Contain("Priya", "a name that is not a speaker's stays").And.Contain("bicycle").And.NotContain("Jon");
        result.Messages.Zip(result.SourceIndexes).Should().OnlyContain(p => p.First.Name == messages[p.Second].Name, "who said what is kept");
    }
}
