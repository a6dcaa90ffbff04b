using Microsoft.Extensions.Configuration;

namespace CloudMemory.Dapr.Tests;

public sealed class RuntimeSelectionTests
{
    private static CloudMemoryRuntime Resolve(params (string Key, string Value)[] settings) =>
        CloudMemoryRuntimeExtensions.ResolveRuntime(new ConfigurationBuilder()
            .AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value))).Build());

    [Fact]
    public void NoSettings_IsEmbedded() => Resolve().Should().Be(CloudMemoryRuntime.Embedded);

    [Fact]
    public void DaprHttpPort_MeansDapr() => Resolve(("DAPR_HTTP_PORT", "3500")).Should().Be(CloudMemoryRuntime.Dapr);

    [Fact]
    public void ExplicitSetting_Wins() =>
        Resolve(("DAPR_HTTP_PORT", "3500"), ("CloudMemory:Runtime", "embedded")).Should().Be(CloudMemoryRuntime.Embedded);

    [Fact]
    public void UnknownValue_Throws() =>
        FluentActions.Invoking(() => Resolve(("CloudMemory:Runtime", "kubernetes"))).Should().Throw<InvalidOperationException>();

    [Fact]
    public void Options_ReadDaprEnvironment()
    {
        var options = DaprOptions.FromConfiguration(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["DAPR_HTTP_PORT"] = "3511",
            ["DAPR_API_TOKEN"] = "t1",
            ["APP_API_TOKEN"] = "t2",
            ["APP_ID"] = "session",
        }).Build());
        options.HttpEndpoint.Should().Be(new Uri("http://127.0.0.1:3511/"));
        options.ApiToken.Should().Be("t1");
        options.AppApiToken.Should().Be("t2");
        options.AppId.Should().Be("session");
    }
}
