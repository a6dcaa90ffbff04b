using System.Net;
using CloudMemory.Context.Features.Memories;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Security.Tests.Infrastructure;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.Security.Tests.Robustness;

/// <summary>The embedded in-memory stores are bounded: past a cap a write is a clear 507 and changes nothing; expired memories make room.</summary>
public sealed class StoreCapTests
{
    [Fact]
    public async Task InMemoryLog_PastItsCap_Answers507StoreFull_AndKeepsTheSession()
    {
        using var host = new SecureHost(StoreKind.InMemory, new Dictionary<string, string?>
        {
            ["CloudMemory:Embedded:MaxLogMegabytes"] = "1",
            ["CloudMemory:Memory:AutoCheckpoint"] = "false",
        });
        using var http = host.CreateClient();
        var id = SecureHost.NewId("c");
        (await http.SendAsync(Http.Request(HttpMethod.Post, "/v1/sessions", new CreateSessionRequest(id, "u")))).StatusCode.Should().Be(HttpStatusCode.Created);
        var text = new string('x', 100_000); // ~200 KB held per turn (UTF-16)

        HttpResponseMessage? refused = null;
        var accepted = 0;
        for (var i = 0; i < 20 && refused is null; i++)
        {
            var response = await http.SendAsync(Http.Request(HttpMethod.Post, $"/v1/sessions/{id}/turns", new WriteTurnRequest(null, "triage", text, "ok")));
            if (response.StatusCode == HttpStatusCode.OK)
            {
                accepted++;
            }
            else
            {
                refused = response;
            }
        }
        refused.Should().NotBeNull();
        accepted.Should().BeInRange(3, 6);
        (await refused!.ProblemCodeAsync(507)).Should().Be("store-full");
        var session = await (await http.GetAsync($"/v1/sessions/{id}")).ReadAsync<SessionValue>();
        session.FlowContext.TurnCount.Should().Be(accepted);
    }

    // About 60 KB of text per memory: a 1 MiB store takes a dozen or so.
    private static CreateMemoryRequest BigMemory(string id, int? ttlSeconds = null) =>
        new(string.Join(' ', Enumerable.Range(0, 3_000).Select(i => $"w{i % 400}x{id.Length}")), Id: id, UserId: "u", TtlSeconds: ttlSeconds);

    [Fact]
    public async Task InMemoryMemories_PastTheirCap_Answer507StoreFull_AndStoreNothing()
    {
        using var host = new SecureHost(StoreKind.InMemory, new Dictionary<string, string?> { [MemoryServiceCollectionExtensions.MaxMemoryMegabytesKey] = "1" });
        using var http = host.CreateClient();
        HttpResponseMessage? refused = null;
        string? refusedId = null;
        var accepted = new List<string>();
        for (var i = 0; i < 60 && refused is null; i++)
        {
            var id = $"m{i}";
            var response = await http.SendAsync(Http.Request(HttpMethod.Post, "/v1/memories", BigMemory(id)));
            if (response.StatusCode == HttpStatusCode.Created)
            {
                accepted.Add(id);
            }
            else
            {
                (refused, refusedId) = (response, id);
            }
        }
        refused.Should().NotBeNull("a 1 MiB store cannot hold 60 memories of 30,000 characters");
        accepted.Count.Should().BeInRange(5, 20);
        (await refused!.ProblemCodeAsync(507)).Should().Be("store-full");
        (await http.GetAsync($"/v1/memories/{refusedId}")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await http.GetAsync($"/v1/memories/{accepted[0]}")).StatusCode.Should().Be(HttpStatusCode.OK);
        var store = (InMemoryMemoryStore)host.Services.GetRequiredService<IMemoryStore>();
        store.EstimatedBytes.Should().BeLessThanOrEqualTo(1024 * 1024);
        // The vectors embedded in the background were paid for at admission: the cap still holds.
        await host.Services.GetRequiredService<EmbeddingPipeline>().WaitForIdleAsync();
        store.EstimatedBytes.Should().BeLessThanOrEqualTo(1024 * 1024);

        // Deleting makes room again.
        (await http.DeleteAsync($"/v1/memories/{accepted[0]}")).IsSuccessStatusCode.Should().BeTrue();
        (await http.SendAsync(Http.Request(HttpMethod.Post, "/v1/memories", BigMemory(refusedId!)))).StatusCode.Should().Be(HttpStatusCode.Created);
    }

    [Fact]
    public async Task InMemoryMemories_FullOfExpiredEntries_EvictsThemForANewOne()
    {
        var clock = new ManualClock();
        using var baseHost = new SecureHost(StoreKind.InMemory, new Dictionary<string, string?> { [MemoryServiceCollectionExtensions.MaxMemoryMegabytesKey] = "1" });
        using var host = baseHost.WithWebHostBuilder(b => b.ConfigureTestServices(s => s.AddSingleton<TimeProvider>(clock)));
        using var http = host.CreateClient();
        var expiring = 0;
        for (var i = 0; i < 60; i++)
        {
            var response = await http.SendAsync(Http.Request(HttpMethod.Post, "/v1/memories", BigMemory($"e{i}", ttlSeconds: 60)));
            if (response.StatusCode != HttpStatusCode.Created)
            {
                (await response.ProblemCodeAsync(507)).Should().Be("store-full");
                break;
            }
            expiring++;
        }
        expiring.Should().BeInRange(5, 20);
        clock.Advance(TimeSpan.FromMinutes(2)); // past the TTL and the eviction interval

        (await http.SendAsync(Http.Request(HttpMethod.Post, "/v1/memories", BigMemory("fresh")))).StatusCode.Should().Be(HttpStatusCode.Created);
        var store = (InMemoryMemoryStore)host.Services.GetRequiredService<IMemoryStore>();
        store.EstimatedBytes.Should().BeLessThan(200_000, "the expired entries were evicted, not just hidden");
    }

    [Fact]
    public async Task InMemoryMemoryStore_Full_RefusesWithoutChange_AndEvictsExpiredEntriesOnceTheyExpire()
    {
        var clock = new ManualClock();
        var store = new InMemoryMemoryStore { MaxBytes = 200_000, Time = clock };
        MemoryEntry Entry(string id, TimeSpan? ttl) => new(id, "t", "u", "c", null, "semantic", string.Join(' ', Enumerable.Range(0, 2_000).Select(i => $"w{i % 300}")),
            new Dictionary<string, string>(), [], clock.GetUtcNow(), clock.GetUtcNow(), 0, ttl is null ? null : clock.GetUtcNow() + ttl);
        var stored = 0;
        while (true)
        {
            var act = () => store.InsertIfAbsentAsync(Entry($"e{stored}", TimeSpan.FromMinutes(1)), "h", clock.GetUtcNow());
            if (stored > 100)
            {
                throw new InvalidOperationException("the cap never applied");
            }
            try
            {
                await act();
                stored++;
            }
            catch (CloudMemory.BuildingBlocks.Hosting.ProblemException ex)
            {
                ex.Status.Should().Be(507);
                break;
            }
        }
        stored.Should().BeGreaterThan(3);
        var full = store.EstimatedBytes;
        full.Should().BeLessThanOrEqualTo(200_000);
        (await store.GetAsync("t", $"e{stored}", clock.GetUtcNow())).Should().BeNull("the refused entry was not stored");

        clock.Advance(TimeSpan.FromMinutes(2));
        await store.InsertIfAbsentAsync(Entry("fresh", null), "h", clock.GetUtcNow());
        store.EstimatedBytes.Should().BeLessThan(full / 2, "the expired entries were evicted");
        (await store.GetAsync("t", "fresh", clock.GetUtcNow())).Should().NotBeNull();
    }

    private sealed class ManualClock : TimeProvider
    {
        private DateTimeOffset _now = DateTimeOffset.UtcNow;

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan by) => _now += by;
    }
}
