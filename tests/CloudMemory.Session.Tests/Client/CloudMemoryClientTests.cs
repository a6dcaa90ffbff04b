using System.Net;
using CloudMemory.Client;
using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Session.Tests.Infrastructure;

namespace CloudMemory.Session.Tests.Client;

public sealed class CloudMemoryClientTests : IDisposable
{
    private readonly CloudMemoryFactory _factory = new(LogKind.InMemory);

    public void Dispose() => _factory.Dispose();

    private CloudMemoryClient NewClient(string? agent = null, string? tenant = null)
    {
        var http = _factory.CreateClient();
        return new CloudMemoryClient(http, new CloudMemoryClientOptions { BaseAddress = http.BaseAddress, AgentId = agent, TenantId = tenant });
    }

    [Fact]
    public async Task SeedOperations_WorkEndToEnd()
    {
        var client = NewClient(agent: "triage_agent");
        await client.CreateShortMemoryAsync("client-conv", "client-user");
        await client.WriteTurnAsync("client-conv", "我头痛三天了", "请问有发热吗？", "triage_agent");
        var envelope = await client.GetShortMemoryAsync("client-conv");
        envelope.Session.GlobalState.Shared = new SharedEntities { SymptomSummary = "头痛", IntentTag = "consult" };
        var updated = await client.SetShortMemoryAsync("client-conv", envelope.Session, envelope.ETag);
        await client.WriteAgentSlotAsync("client-conv", "triage_agent", new { level = "moderate" });

        var context = await client.QueryMemoryContextAsync(new MemoryQueryRequest("client-conv", Query: "发烧38度"));
        var checkpoint = await client.CheckpointShortMemoryAsync("client-conv", "头痛三天，询问发热。", 4);
        var final = await client.FinalizeSessionMemoryAsync("client-conv");
        var log = await client.GetMessagesAsync("client-conv");

        updated.ETag.Should().NotBe(envelope.ETag);
        context.Session.GlobalState.Entities!.IntentTag.Should().Be("consult");
        context.Session.GlobalState.AgentSlots.Should().ContainKey("triage_agent");
        context.FullHistory.Should().Contain("我头痛三天了");
        checkpoint.Mode.Should().Be(MemoryMode.SummaryN);
        final.Status.Should().Be(SessionStatus.Finalized);
        log.Messages.Should().HaveCount(3);
    }

    [Fact]
    public async Task Errors_SurfaceAsCloudMemoryException_WithTheProblemCode()
    {
        var client = NewClient();
        await client.CreateShortMemoryAsync("client-conv-2", "u");
        var stale = await client.GetShortMemoryAsync("client-conv-2");
        await client.WriteTurnAsync("client-conv-2", "q", "a");

        var act = () => client.SetShortMemoryAsync("client-conv-2", stale.Session, stale.ETag);

        (await act.Should().ThrowAsync<CloudMemoryException>()).Which.Code.Should().Be("etag-mismatch");
        var missing = () => client.GetShortMemoryAsync("nobody");
        (await missing.Should().ThrowAsync<CloudMemoryException>()).Which.Status.Should().Be(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task UserProfile_CarriesIntoTheUsersNextConversation()
    {
        var client = NewClient();
        await client.CreateShortMemoryAsync("visit-1", "patient-42");
        var first = await client.GetShortMemoryAsync("visit-1");
        first.Session.UserSnapshot.Allergies.Add("penicillin");
        await client.SetShortMemoryAsync("visit-1", first.Session, first.ETag);

        var second = await client.CreateShortMemoryAsync("visit-2", "patient-42");

        second.UserSnapshot.Allergies.Should().Equal("penicillin");
    }
}
