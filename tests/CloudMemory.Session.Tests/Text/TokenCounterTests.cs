using CloudMemory.Conversations;
using CloudMemory.Conversations.Text;
using CloudMemory.Session.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CloudMemory.Session.Tests.Text;

public sealed class TokenCounterTests
{
    [Theory]
    [InlineData(TokenCounters.O200kBase)]
    [InlineData(TokenCounters.Cl100kBase)]
    public void Units_OfATokenizer_AreItsTokenCountTimesFour(string name)
    {
        var counter = TokenCounters.Create(name);

        counter.Units("hello world").Should().Be(2 * TokenEstimator.UnitsPerToken);
        counter.Units("").Should().Be(0);
        counter.Units(null).Should().Be(0);
        counter.Name.Should().Be(name);
    }

    [Fact]
    public void Tokenizers_CountChineseDifferentlyFromTheEstimatorAndFromEachOther()
    {
        const string text = "短期记忆系统负责在单次对话会话中管理和提供对话上下文，避免超过模型上下文窗口。";

        var o200k = TokenCounters.Create(TokenCounters.O200kBase).Units(text);
        var cl100k = TokenCounters.Create(TokenCounters.Cl100kBase).Units(text);

        o200k.Should().NotBe(TokenEstimator.Units(text));
        o200k.Should().BeLessThan(cl100k, "o200k's vocabulary holds far more Chinese words");
    }

    [Fact]
    public void JoinedUnits_AreTheMessagesCountsPlusOneUnitPerSeparator()
    {
        var parts = new[] { "user: 我头痛三天了", "assistant: Please rest.", "[summary] 头痛 3 days" };
        var o200k = TokenCounters.Create(TokenCounters.O200kBase);

        o200k.JoinedUnits(parts).Should().Be(parts.Sum(o200k.Units) + 2);
        o200k.JoinedUnits([]).Should().Be(0);
        TokenCounters.Estimator.JoinedUnits(parts).Should().Be(TokenEstimator.Units(string.Join('\n', parts)));
    }

    [Fact]
    public void Create_UnknownName_Throws_AndTheSameNameIsLoadedOnce()
    {
        FluentActions.Invoking(() => TokenCounters.Create("gpt2")).Should().Throw<ArgumentException>().WithMessage("*o200k_base*");
        TokenCounters.Create(TokenCounters.O200kBase).Should().BeSameAs(TokenCounters.Create(TokenCounters.O200kBase));
    }

    [Fact]
    public void Host_CountsWithO200kByDefault_AndWithTheConfiguredTokenizer()
    {
        using var byDefault = new CloudMemoryFactory(LogKind.InMemory);
        using var cl100k = new CloudMemoryFactory(LogKind.InMemory, new Dictionary<string, string?> { ["CloudMemory:Memory:Tokenizer"] = "cl100k_base" });
        using var estimate = new CloudMemoryFactory(LogKind.InMemory, new Dictionary<string, string?> { ["CloudMemory:Memory:Tokenizer"] = "estimate" });

        byDefault.Services.GetRequiredService<ITokenCounter>().Name.Should().Be("o200k_base");
        cl100k.Services.GetRequiredService<ITokenCounter>().Name.Should().Be("cl100k_base");
        estimate.Services.GetRequiredService<ITokenCounter>().Should().BeSameAs(TokenCounters.Estimator);
    }

    [Fact]
    public async Task Host_WithAnUnknownTokenizer_RefusesToStart()
    {
        await using var app = Host.Program.Build(["--CloudMemory:Memory:Tokenizer=o100k", "--CloudMemory:Llm:Endpoint="]);

        FluentActions.Invoking(() => app.Services.GetRequiredService<IOptions<MemoryPolicyOptions>>().Value)
            .Should().Throw<OptionsValidationException>().WithMessage("*Tokenizer must be one of o200k_base, cl100k_base, estimate*");
    }
}
