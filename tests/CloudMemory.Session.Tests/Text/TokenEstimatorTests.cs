using CloudMemory.Conversations;
using CloudMemory.Conversations.Text;

namespace CloudMemory.Session.Tests.Text;

public sealed class TokenEstimatorTests
{
    [Theory]
    [InlineData("", 0)]
    [InlineData("abcd", 1)]
    [InlineData("abcde", 2)]
    [InlineData("我头痛", 3)]
    [InlineData("我头痛 abcd", 5)] // 3 CJK + 5 other characters (space included) = 12 + 5 units = 17 → 5 tokens
    [InlineData("こんにちは", 5)]
    [InlineData("안녕하세요", 5)]
    public void Estimate_CountsCjkAsOneTokenAndOtherTextAsFourCharactersPerToken(string text, int expected) =>
        TokenEstimator.Estimate(text).Should().Be(expected);

    [Fact]
    public void Units_AreAdditive_SoRunningCountsEqualARecount()
    {
        var parts = new[] { "user: 我头痛三天了", "assistant: Please rest.", "[summary] 头痛 3 days" };
        var joined = string.Join('\n', parts);
        TokenEstimator.Units(joined).Should().Be(parts.Sum(p => TokenEstimator.Units(p)) + parts.Length - 1);
    }

    [Theory]
    [InlineData(4096, 3, 0.6, 5)]
    [InlineData(32768, 30, 0.85, 12)]
    [InlineData(16000, 2, 0.6, 8)]
    [InlineData(16000, 10, 0.75, 8)]
    [InlineData(16000, 40, 0.85, 8)]
    public void DynamicPolicy_PicksThresholdAndWindowByModelSizeAndTurnCount(int window, int turns, double ratio, int recent)
    {
        var policy = MemoryPolicy.Resolve(new MemoryPolicyOptions { DynamicThresholds = true }, turns, window: window);
        policy.Should().Be(new MemoryPolicy(ratio, recent, window));
    }

    [Fact]
    public void Policy_RequestValuesWin_AndDefaultsAreTheSeeds()
    {
        MemoryPolicy.Resolve(new MemoryPolicyOptions(), 0).Should().Be(new MemoryPolicy(0.75, 8, 16000));
        MemoryPolicy.Resolve(new MemoryPolicyOptions { DynamicThresholds = true }, 50, 0.5, 3, 4096).Should().Be(new MemoryPolicy(0.5, 3, 4096));
    }
}
