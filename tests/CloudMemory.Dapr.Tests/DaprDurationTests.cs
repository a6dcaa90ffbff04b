namespace CloudMemory.Dapr.Tests;

public sealed class DaprDurationTests
{
    [Theory]
    [InlineData(0, "0s")]
    [InlineData(5, "5s")]
    [InlineData(90, "1m30s")]
    [InlineData(3600, "1h")]
    [InlineData(9000, "2h30m")]
    [InlineData(1.5, "1.5s")]
    public void Format_WritesGoDurations(double seconds, string expected)
    {
        DaprDuration.Format(TimeSpan.FromSeconds(seconds)).Should().Be(expected);
        FakeSidecar.FakeDaprSidecar.TryParseDuration(expected, out var parsed).Should().BeTrue();
        parsed.Should().Be(TimeSpan.FromSeconds(seconds));
    }

    [Theory]
    [InlineData("2h30m", 9000)]
    [InlineData("1500ms", 1.5)]
    [InlineData("0h0m5s0ms", 5)]
    [InlineData("PT2H30M", 9000)]
    [InlineData("R5/PT1M30S", 90)]
    [InlineData("", 0)]
    public void Parse_ReadsGoAndIso8601(string text, double seconds) =>
        DaprDuration.Parse(text).Should().Be(TimeSpan.FromSeconds(seconds));
}
