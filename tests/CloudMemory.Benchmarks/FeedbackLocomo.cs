using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using CloudMemory.BuildingBlocks.Embedded;
using CloudMemory.Context.Features.Memories;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Feedback;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.Benchmarks;

/// <summary>
/// <c>feedback --locomo DIR [--quick]</c>: does memory feedback help retrieval, and does it leave the
/// rest alone? The LoCoMo conversations are ingested as memories in the embedded host; the questions
/// (categories 1–4, in file order) are split deterministically: every even-numbered question is
/// <b>trained</b>: its top-5 hybrid hits that are not evidence get <c>helpful: false</c> and the
/// evidence turns among its top-20 get <c>helpful: true</c>, each through <c>POST /v1/feedback</c>
/// (target type memory), i.e. the feedback app, the <c>feedback-recorded</c> event and the context
/// app's tally, as an agent would. Recall@5 is measured before and after on: the trained questions
/// asked again (<b>repeated</b>); a templated rewording of each (<b>reworded</b>: "Remind me about"
/// and its content words in reverse order, stop words and question words dropped); the other
/// questions whose evidence shares a turn with a trained question's (<b>siblings</b>: real
/// paraphrases of the same evidence); and the remaining questions, sharing no evidence turn with
/// any trained one (<b>untouched</b>). Each feedback carries the trained question as its <c>query</c>
/// (query-conditioned feedback) unless <c>--without-query</c> is given.
/// </summary>
internal static class FeedbackLocomo
{
    private const string Tenant = "locomo-fb";
    private const int K = 5;
    private const int ShownForPositive = 20;

    private static readonly HashSet<string> StopWords = new(StringComparer.OrdinalIgnoreCase)
    {
        "what", "when", "where", "who", "whom", "why", "how", "which", "did", "does", "do", "is", "are", "was", "were", "the", "a", "an",
        "of", "to", "in", "on", "for", "has", "have", "had", "be", "would", "could", "might", "will", "can", "likely", "kind", "type",
    };

    public static async Task RunAsync(string dataDir, bool quick, string? feedbackWeight, bool withQuery, string? querySimilarity)
    {
        var files = Directory.GetFiles(dataDir, "*.json").Order(StringComparer.Ordinal).Take(quick ? 2 : int.MaxValue).ToList();
        await using var host = await BenchHost.StartAsync(null,
        [
            "--CloudMemory:LongTermMemory:TrackAccess=false", // usage boosts would leak between questions
            "--CloudMemory:Feedback:Learning:ScheduleInterval=00:00:00",
            .. feedbackWeight is null ? Array.Empty<string>() : [$"--CloudMemory:LongTermMemory:UserFeedbackWeight={feedbackWeight}"],
            .. querySimilarity is null ? Array.Empty<string>() : [$"--CloudMemory:LongTermMemory:UserFeedbackQuerySimilarity={querySimilarity}"],
        ]);
        var memory = host.Services.GetRequiredService<ILongTermMemory>();
        var (turns, questions) = await LocomoBenchmark.LoadAsync(memory, Tenant, files);
        await host.Services.GetRequiredService<EmbeddingPipeline>().WaitForIdleAsync();
        await host.Services.GetRequiredService<LatentSemanticIndex>().TrainAsync(Tenant);

        var trained = questions.Where((_, i) => i % 2 == 0).ToList();
        var rest = questions.Where((_, i) => i % 2 == 1).ToList();
        var trainedEvidence = trained.SelectMany(q => q.Evidence.Select(e => (q.Context, e))).ToHashSet();
        var siblings = rest.Where(q => q.Evidence.Any(e => trainedEvidence.Contains((q.Context, e)))).ToList();
        var untouched = rest.Where(q => !q.Evidence.Any(e => trainedEvidence.Contains((q.Context, e)))).ToList();
        var reworded = trained.Select(q => q with { Question = Reword(q.Question) }).ToList();
        var sets = new (string Name, List<(string Context, string Question, string Category, HashSet<string> Evidence)> Questions)[]
        {
            ("repeated", trained), ("reworded", reworded), ("siblings", siblings), ("untouched", untouched),
        };
        Console.WriteLine();
        Console.WriteLine($"memory feedback on LoCoMo ({(quick ? "quick: " : "")}{files.Count} conversations, {turns} turns as memories, {questions.Count} questions; {trained.Count} trained; UserFeedbackWeight {feedbackWeight ?? "default"}; {(withQuery ? $"feedback with its query, UserFeedbackQuerySimilarity {querySimilarity ?? "default"}" : "feedback without a query")})");

        var before = new Dictionary<string, double>();
        foreach (var (name, set) in sets)
        {
            before[name] = await RecallAsync(memory, set);
        }

        using var http = new HttpClient { BaseAddress = host.BaseAddress };
        http.DefaultRequestHeaders.Add("X-Tenant-Id", Tenant);
        int negative = 0, positive = 0;
        for (var q = 0; q < trained.Count; q++)
        {
            var (context, question, _, evidence) = trained[q];
            var hits = await SearchAsync(memory, context, question, ShownForPositive);
            foreach (var (hit, rank) in hits.Select((h, r) => (h, r)))
            {
                var right = evidence.Contains(hit.Entry.Metadata["dia_id"]);
                if (right || rank < K)
                {
                    using var response = await http.PostAsJsonAsync("/v1/feedback", new RecordFeedbackRequest($"lf-{q}-{hit.Entry.Id}", new FeedbackTarget("memory", hit.Entry.Id),
                        null, "user", "helpful", JsonSerializer.SerializeToElement(right), Query: withQuery ? question : null), ContractsJson.Options);
                    response.EnsureSuccessStatusCode();
                    _ = right ? positive++ : negative++;
                }
            }
        }
        var bus = host.Services.GetRequiredService<InMemoryEventBus>();
        while (bus.InFlight > 0)
        {
            await Task.Delay(20);
        }
        Console.WriteLine($"feedback through POST /v1/feedback: {negative} helpful=false on wrong top-{K} hits, {positive} helpful=true on evidence in the top {ShownForPositive}");
        Console.WriteLine($"{"set",-10} {"n",5} {"R@5 before",11} {"R@5 after",10} {"change",8}");
        foreach (var (name, set) in sets)
        {
            var after = await RecallAsync(memory, set);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name,-10} {set.Count,5} {before[name],11:0.000} {after,10:0.000} {after - before[name],8:+0.000;-0.000}"));
        }
    }

    /// <summary>The templated rewording: "Remind me about" and the question's content words in reverse order.</summary>
    internal static string Reword(string question)
    {
        var words = question.Split([' ', '?', ',', '.', '!'], StringSplitOptions.RemoveEmptyEntries).Where(w => !StopWords.Contains(w)).Reverse();
        return "Remind me about " + string.Join(' ', words) + "?";
    }

    private static async Task<IReadOnlyList<MemoryHit>> SearchAsync(ILongTermMemory memory, string context, string question, int topK) =>
        (await memory.SearchAsync(Tenant, new MemorySearchRequest(question, topK, SearchModes.Hybrid, null, null, new MemorySearchFilters(ContextId: context)))).Hits;

    private static async Task<double> RecallAsync(ILongTermMemory memory, List<(string Context, string Question, string Category, HashSet<string> Evidence)> set)
    {
        if (set.Count == 0)
        {
            return double.NaN;
        }
        double total = 0;
        foreach (var (context, question, _, evidence) in set)
        {
            var hits = await SearchAsync(memory, context, question, K);
            total += (double)hits.Count(h => evidence.Contains(h.Entry.Metadata["dia_id"])) / evidence.Count;
        }
        return total / set.Count;
    }
}
