using System.Net.Http.Json;
using CloudMemory.BuildingBlocks.Invocation;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Feedback;
using CloudMemory.Conversations.Text;

namespace CloudMemory.Context.Features.Query;

/// <summary>
/// <c>relevantExperiences</c> of QueryMemoryContext: asks the feedback app (service invocation,
/// with the caller's own credential headers, so the feedback app checks the same identity) for
/// past experiences of a task like this one, and keeps what fits a small token budget. The context
/// answer never fails because of it: with the feedback app away the list is empty.
/// </summary>
public sealed class RelevantExperienceLookup(IServiceInvoker invoker, ILogger<RelevantExperienceLookup> logger)
{
    /// <summary>App id of the feedback service.</summary>
    public const string FeedbackAppId = "feedback";

    /// <summary>Default token budget of the experiences.</summary>
    public const int DefaultMaxTokens = 200;

    /// <summary>Largest accepted <c>maxExperienceTokens</c>.</summary>
    public const int MaxTokensLimit = 10_000;

    private const int TopK = 5;

    /// <summary>Similar experiences for the request's task (its <c>taskContext</c>, else the query as the task's description).</summary>
    public async Task<IReadOnlyList<RelevantExperience>> FindAsync(HttpContext caller, MemoryQueryRequest request, CancellationToken cancellationToken)
    {
        var maxTokens = request.MaxExperienceTokens ?? DefaultMaxTokens;
        var task = request.TaskContext ?? (string.IsNullOrWhiteSpace(request.Query) ? null : new TaskContext(Description: request.Query));
        if (task is null)
        {
            return [];
        }
        SimilarExperiences? found;
        try
        {
            using var call = new HttpRequestMessage(HttpMethod.Post, "v1/experiences/search")
            {
                Content = JsonContent.Create(new SearchExperiencesRequest(task, TopK: TopK), options: ContractsJson.Options),
            };
            using var response = await invoker.InvokeAsync(FeedbackAppId, call.WithIdentityOf(caller), cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                logger.LogWarning("Experience search answered {Status}; the context goes without experiences", (int)response.StatusCode);
                return [];
            }
            found = await response.Content.ReadFromJsonAsync<SimilarExperiences>(ContractsJson.Options, cancellationToken);
        }
        catch (Exception ex) when (ex is HttpRequestException or InvalidOperationException or System.Text.Json.JsonException
            || (ex is TaskCanceledException && !cancellationToken.IsCancellationRequested))
        {
            logger.LogWarning(ex, "Experience search failed; the context goes without experiences");
            return [];
        }
        return Fit(found?.Items ?? [], maxTokens);
    }

    /// <summary>The best-ranked experiences whose rendered text fits <paramref name="maxTokens"/> together.</summary>
    public static IReadOnlyList<RelevantExperience> Fit(IReadOnlyList<SimilarExperience> items, int maxTokens)
    {
        var result = new List<RelevantExperience>();
        var used = 0;
        foreach (var item in items)
        {
            var worked = item.LastSuccess is { } s ? Describe(s) : null;
            var failed = item.LastFailure is { } f ? Describe(f) : null;
            var experience = new RelevantExperience(item.Pattern.Intent, Math.Round(item.Similarity, 4), Math.Round(item.SuccessRate, 4), item.Attempts,
                item.Reason, worked, failed, item.LastSuccess?.Result.TraceId, item.LastFailure?.Result.TraceId);
            var tokens = TokenEstimator.Estimate(experience.Intent + " " + experience.Reason + " " + worked + " " + failed);
            if (used + tokens > maxTokens)
            {
                break;
            }
            used += tokens;
            result.Add(experience);
        }
        return result;
    }

    // One line on a past run: its summary if it has one, else its tools and steps, plus the user's issues.
    private static string Describe(Experience run)
    {
        var what = run.Result.Summary is { Length: > 0 } summary ? summary
            : $"tools [{string.Join(", ", run.Pattern.Tools)}], steps [{string.Join(" > ", run.Pattern.Steps)}]";
        var issues = run.Feedback?.Issues is { Count: > 0 } list ? $"; issues: {string.Join(", ", list)}" : "";
        return Truncate(what, 300) + issues;
    }

    private static string Truncate(string text, int max) => text.Length <= max ? text : text[..max] + "…";
}
