using System.Net.Http.Json;
using CloudMemory.Context.Features.Compression;
using CloudMemory.Context.Features.Memories;
using CloudMemory.Contracts;
using CloudMemory.Session.Tests.Infrastructure;

namespace CloudMemory.Compression.Tests;

/// <summary>Long-term memory compression over HTTP; run on the in-memory and the PostgreSQL memory store.</summary>
public abstract class MemoryCompressionBehaviour(LogKind kind) : IDisposable
{
    private readonly CloudMemoryFactory _factory = new(kind);

    public void Dispose()
    {
        _factory.Dispose();
        GC.SuppressFinalize(this);
    }

    private HttpClient Client(string tenant)
    {
        var client = _factory.CreateClient();
        client.DefaultRequestHeaders.Add("X-Tenant-Id", tenant);
        return client;
    }

    // 16 old chat messages (one of them a safety fact) and 4 recent facts in one context.
    private Task<(string Context, List<MemoryEntry> Old, MemoryEntry Safety)> SeedAsync(HttpClient client) => SeedAsync(client, _factory.Time.GetUtcNow());

    /// <summary>Seeds one context in the tenant of <paramref name="client"/>; <paramref name="now"/> is the app's clock.</summary>
    internal static async Task<(string Context, List<MemoryEntry> Old, MemoryEntry Safety)> SeedAsync(HttpClient client, DateTimeOffset now)
    {
        var context = "ctx-" + Guid.NewGuid().ToString("N")[..8];
        var start = now.AddDays(-120);
        var old = new List<MemoryEntry>();
        for (var i = 0; i < 16; i++)
        {
            var content = i == 3 ? "user: I am allergic to peanuts, please remember that." : $"user: okay thanks, round {i}, we talked about the garden fence.";
            var response = await client.PostAsJsonAsync("v1/memories", new CreateMemoryRequest(content, MemoryTypes.Message, ContextId: context, UserId: "u-1",
                CreatedAt: start.AddMinutes(i)), ContractsJson.Options);
            old.Add(await response.ReadAsync<MemoryEntry>());
        }
        for (var i = 0; i < 4; i++)
        {
            (await client.PostAsJsonAsync("v1/memories", new CreateMemoryRequest($"The user's daughter plays violin, fact {i}.", MemoryTypes.Semantic, ContextId: context, UserId: "u-1"),
                ContractsJson.Options)).EnsureSuccessStatusCode();
        }
        return (context, old, old[3]);
    }

    [Fact]
    public async Task Compress_BeyondTheThreshold_MergesLowImportanceEntriesIntoExpandableSummaries()
    {
        var client = Client("mc-a");
        var (context, old, safety) = await SeedAsync(client);

        var result = await (await client.PostAsJsonAsync("v1/memories/compress", new CompressMemoriesRequest(ContextId: context, Threshold: 10), ContractsJson.Options))
            .ReadAsync<CompressMemoriesResult>();

        result.Entries.Should().Be(20);
        result.Compressed.Should().BeTrue();
        var summary = result.Summaries.Should().ContainSingle().Subject;
        var merged = summary.Sources.Select(s => s.Id).ToList();
        merged.Should().HaveCount(9, "the older half (10) minus the safety fact").And.NotContain(safety.Id);
        merged.Should().BeSubsetOf(old.Select(e => e.Id));
        summary.Sources.Should().OnlyContain(s => s.Importance < 0.5 && s.Why.Length > 0);
        summary.Content.Split('\n').Should().HaveCount(9, "one line per source: nothing is silently dropped");

        var expanded = await (await client.GetAsync($"v1/memories/{summary.Id}/expand")).ReadAsync<ExpandedMemory>();
        expanded.Sources.Select(s => s.Id).Should().BeEquivalentTo(merged);
        expanded.Sources.Should().OnlyContain(s => s.Metadata[MemoryCompressor.CompressedIntoKey] == summary.Id && s.ExpiresAt != null);
        expanded.Expired.Should().BeEmpty();
        expanded.Summary.Type.Should().Be(MemoryTypes.Episodic);
        var stillSafe = await (await client.GetAsync($"v1/memories/{safety.Id}")).ReadAsync<MemoryEntry>();
        stillSafe.ExpiresAt.Should().BeNull();
        stillSafe.Metadata.Should().NotContainKey(MemoryCompressor.CompressedIntoKey);

        var again = await (await client.PostAsJsonAsync("v1/memories/compress", new CompressMemoriesRequest(ContextId: context, Threshold: 10), ContractsJson.Options))
            .ReadAsync<CompressMemoriesResult>();
        again.Summaries.Should().BeEmpty("summaries and merged entries are not merged again");
    }

    [Fact]
    public async Task Writes_BeyondTheThreshold_AreCompressedInTheBackground_WithLinksAndNothingDropped()
    {
        using var factory = new CloudMemoryFactory(kind, new Dictionary<string, string?>
        {
            ["CloudMemory:Compression:MemoryThreshold"] = "10",
            ["CloudMemory:Compression:AutoCompressInterval"] = "00:00:00.100",
        });
        var client = factory.CreateClient();
        client.DefaultRequestHeaders.Add("X-Tenant-Id", "mc-auto");

        await AssertCompressedInTheBackgroundAsync(client, factory.Time.GetUtcNow());
    }

    /// <summary>
    /// Seeds 20 entries (threshold 10 in the app's settings) and waits for the background pass:
    /// old low-importance entries merged into linked, expandable summaries, the safety fact untouched.
    /// </summary>
    internal static async Task AssertCompressedInTheBackgroundAsync(HttpClient client, DateTimeOffset now)
    {
        var (context, old, safety) = await SeedAsync(client, now);

        // The writes may straddle passes (each pass compresses the older half of what is there): wait
        // until a summary exists and two polls half a second apart agree.
        List<MemoryEntry> summaries = [];
        var previous = "";
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            var items = (await (await client.GetAsync($"v1/memories?contextId={context}&limit=100")).ReadAsync<MemoryList>()).Items;
            summaries = items.Where(e => e.Metadata.ContainsKey(MemoryCompressor.SourcesKey)).OrderBy(e => e.Id, StringComparer.Ordinal).ToList();
            var current = string.Join(";", summaries.Select(e => e.Metadata[MemoryCompressor.SourcesKey]));
            if (summaries.Count > 0 && current == previous)
            {
                break;
            }
            previous = current;
            await Task.Delay(500);
        }
        summaries.Should().NotBeEmpty("20 entries are beyond the threshold of 10: the background pass compresses them without a request");
        var merged = summaries.SelectMany(s => s.Metadata[MemoryCompressor.SourcesKey].Split(',')).ToList();
        merged.Should().OnlyHaveUniqueItems().And.BeSubsetOf(old.Select(e => e.Id), "old low-importance messages are merged").And.NotContain(safety.Id);
        merged.Count.Should().BeInRange(4, 9, "at most the older half (10) minus the safety fact");
        foreach (var entry in old)
        {
            var current = await (await client.GetAsync($"v1/memories/{entry.Id}")).ReadAsync<MemoryEntry>(); // nothing deleted
            if (merged.Contains(entry.Id))
            {
                summaries.Should().Contain(s => s.Id == current.Metadata[MemoryCompressor.CompressedIntoKey], "each source links to its summary");
                current.ExpiresAt.Should().NotBeNull("merged sources are retained, then expire");
            }
        }
        var expanded = await (await client.GetAsync($"v1/memories/{summaries[0].Id}/expand")).ReadAsync<ExpandedMemory>();
        expanded.Sources.Should().NotBeEmpty().And.OnlyContain(s => merged.Contains(s.Id));
        (await (await client.GetAsync($"v1/memories/{safety.Id}")).ReadAsync<MemoryEntry>()).Metadata.Should().NotContainKey(MemoryCompressor.CompressedIntoKey);
    }

    [Fact]
    public async Task Compress_AtOrBelowTheThreshold_ChangesNothing()
    {
        var client = Client("mc-b");
        var (context, old, _) = await SeedAsync(client);

        var result = await (await client.PostAsJsonAsync("v1/memories/compress", new CompressMemoriesRequest(ContextId: context), ContractsJson.Options))
            .ReadAsync<CompressMemoriesResult>();

        result.Compressed.Should().BeFalse();
        result.Threshold.Should().Be(1000);
        (await (await client.GetAsync($"v1/memories/{old[0].Id}")).ReadAsync<MemoryEntry>()).ExpiresAt.Should().BeNull();
    }

    [Fact]
    public async Task CompressAndExpand_BadInputAndOtherTenants_AnswerProblems()
    {
        var client = Client("mc-c");
        var (context, _, _) = await SeedAsync(client);
        var result = await (await client.PostAsJsonAsync("v1/memories/compress", new CompressMemoriesRequest(ContextId: context, Threshold: 10), ContractsJson.Options))
            .ReadAsync<CompressMemoriesResult>();

        (await (await client.PostAsJsonAsync("v1/memories/compress", new CompressMemoriesRequest(), ContractsJson.Options)).ProblemAsync(400))
            .GetProperty("code").GetString().Should().Be("invalid-scope");
        (await (await client.PostAsJsonAsync("v1/memories/compress", new CompressMemoriesRequest(ContextId: context, Threshold: 0), ContractsJson.Options)).ProblemAsync(400))
            .GetProperty("code").GetString().Should().Be("invalid-threshold");
        (await (await Client("mc-other").GetAsync($"v1/memories/{result.Summaries[0].Id}/expand")).ProblemAsync(404))
            .GetProperty("code").GetString().Should().Be("summary-not-found");
        (await (await Client("mc-other").PostAsJsonAsync("v1/memories/compress", new CompressMemoriesRequest(ContextId: context, Threshold: 1), ContractsJson.Options))
            .ReadAsync<CompressMemoriesResult>()).Entries.Should().Be(0, "another tenant sees none of these entries");
    }
}

public sealed class InMemoryMemoryCompressionBehaviour() : MemoryCompressionBehaviour(LogKind.InMemory);

public sealed class PostgresMemoryCompressionBehaviour() : MemoryCompressionBehaviour(LogKind.Postgres);
