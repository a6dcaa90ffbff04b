using System.Net;
using System.Net.Http.Json;
using CloudMemory.Contracts;
using CloudMemory.Context.Features.Memories;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.Context.Tests.Memories;

public sealed class MemoryTtlTests
{
    [Fact]
    public async Task Get_AfterTtl_Returns404()
    {
        var time = new ManualTime(new DateTimeOffset(2026, 3, 1, 8, 0, 0, TimeSpan.Zero));
        await using var app = await MemoryApp.StartAsync(configure: s => s.AddSingleton<TimeProvider>(time));
        var response = await app.Client.PostAsJsonAsync("/v1/memories", new CreateMemoryRequest("short lived note", TtlSeconds: 60), ContractsJson.Options);
        var entry = (await response.Content.ReadFromJsonAsync<MemoryEntry>(ContractsJson.Options))!;
        entry.ExpiresAt.Should().Be(time.GetUtcNow().AddSeconds(60));

        time.Advance(TimeSpan.FromSeconds(59));
        (await app.Client.GetAsync($"/v1/memories/{entry.Id}")).StatusCode.Should().Be(HttpStatusCode.OK);
        time.Advance(TimeSpan.FromSeconds(1));
        (await app.Client.GetAsync($"/v1/memories/{entry.Id}")).StatusCode.Should().Be(HttpStatusCode.NotFound);
    }
}
