using System.Text;
using System.Text.Json;
using CloudMemory.BuildingBlocks.PubSub;

namespace CloudMemory.Session.Tests.Events;

/// <summary>The envelopes CloudMemory publishes, as the CloudEvents SDK writes and reads them.</summary>
public sealed class CloudEventFormatTests
{
    private static readonly DateTimeOffset At = new(2026, 1, 26, 9, 30, 0, TimeSpan.Zero);

    private static CloudEvent TurnWritten() => CloudEventFormat.Create("evt-1", "session", "cloudmemory.turn.written.v1",
        new { conversationId = "c1", turnCount = 3, userQuery = "我头痛" }, At, subject: "c1", topic: "turn-written",
        pubSubName: "pubsub", traceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", tenantId: "tenant-a");

    [Fact]
    public void Encode_WritesStructuredModeJson_WithTheExtensionAttributesAndJsonData()
    {
        var json = JsonDocument.Parse(CloudEventFormat.Encode(TurnWritten())).RootElement;

        json.GetProperty("specversion").GetString().Should().Be("1.0");
        json.GetProperty("id").GetString().Should().Be("evt-1");
        json.GetProperty("source").GetString().Should().Be("session");
        json.GetProperty("type").GetString().Should().Be("cloudmemory.turn.written.v1");
        json.GetProperty("subject").GetString().Should().Be("c1");
        json.GetProperty("datacontenttype").GetString().Should().Be("application/json");
        DateTimeOffset.Parse(json.GetProperty("time").GetString()!, System.Globalization.CultureInfo.InvariantCulture).Should().Be(At);
        json.GetProperty("topic").GetString().Should().Be("turn-written");
        json.GetProperty("pubsubname").GetString().Should().Be("pubsub");
        json.GetProperty("traceparent").GetString().Should().StartWith("00-0af7651916cd43dd8448eb211c80319c-");
        json.GetProperty("tenantid").GetString().Should().Be("tenant-a");
        json.GetProperty("data").GetProperty("userQuery").GetString().Should().Be("我头痛");
        json.GetProperty("data").GetProperty("turnCount").GetInt32().Should().Be(3);
    }

    [Fact]
    public void Decode_OfEncode_GivesTheSameEvent()
    {
        var original = TurnWritten();

        var decoded = CloudEventFormat.Decode(CloudEventFormat.Encode(original));

        decoded.Should().BeEquivalentTo(original, o => o.Excluding(e => e.Data));
        decoded.Data.GetRawText().Should().Be(original.Data.GetRawText());
    }

    [Fact]
    public void Decode_OfAnotherPublishersEnvelope_ReadsItsAttributes()
    {
        const string body = """
            {"specversion":"1.0","id":"x-9","source":"https://example.com/agents/7","type":"cloudmemory.checkpoint.created.v1",
             "time":"2026-01-26T09:30:00.5+08:00","datacontenttype":"application/json","tenantid":"t9","data":{"conversationId":"c9"}}
            """;

        var decoded = CloudEventFormat.Decode(Encoding.UTF8.GetBytes(body));

        decoded.Source.Should().Be("https://example.com/agents/7");
        decoded.Time.Should().Be(new DateTimeOffset(2026, 1, 26, 9, 30, 0, 500, TimeSpan.FromHours(8)));
        decoded.TenantId.Should().Be("t9");
        decoded.Topic.Should().BeNull();
        decoded.Data.GetProperty("conversationId").GetString().Should().Be("c9");
    }

    [Theory]
    [InlineData("""{"specversion":"1.0","source":"s","type":"t","data":{}}""")] // no id
    [InlineData("""{"specversion":"0.1","id":"1","source":"s","type":"t"}""")] // unknown spec version
    [InlineData("""{"specversion":"1.0","id":"1","type":"t"}""")] // no source
    [InlineData("""[1, 2]""")]
    public void Decode_OfAnInvalidEnvelope_Throws(string body) =>
        FluentActions.Invoking(() => CloudEventFormat.Decode(Encoding.UTF8.GetBytes(body))).Should().Throw<ArgumentException>();

    [Fact]
    public void Create_WithoutAType_Throws()
    {
        FluentActions.Invoking(() => CloudEventFormat.Create("evt-1", "session", "", new { }, At)).Should().Throw<ArgumentException>();
    }
}
