using CloudMemory.BuildingBlocks.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;
using CloudMemory.Contracts.Feedback;

namespace CloudMemory.Feedback.Features.Experiences;

/// <summary>Records experiences and finds similar past ones (seed §5 ExperienceDatabase).</summary>
public sealed class ExperienceService(IExperienceStore store, TimeProvider time)
{
    /// <summary>Default similarity threshold (seed: 0.7).</summary>
    public const double DefaultMinSimilarity = 0.7;

    private const int DefaultTopK = 5;
    private const int MaxTopK = 50;
    private const int MaxCandidates = 5000;
    private const int MaxListItems = 50;
    private const int MaxItemLength = 200;

    /// <summary>Stores an experience; a repeated id returns the stored one.</summary>
    public async Task<(Experience Experience, bool Created)> RecordAsync(string tenantId, RecordExperienceRequest? request, CancellationToken cancellationToken = default)
    {
        if (request is null)
        {
            throw new ProblemException(400, "missing-body", "An experience body is required.");
        }
        var id = request.Id is null ? "exp-" + Guid.NewGuid().ToString("N") : Ids.Require(request.Id, "id");
        var context = ValidateContext(request.TaskContext);
        var result = request.Result ?? throw new ProblemException(400, "missing-result", "'result' {success, traceId?, durationMs?, cost?} is required.");
        if (result.Success is null)
        {
            throw new ProblemException(400, "missing-success", "'result.success' is required.");
        }
        if (result.TraceId is not null)
        {
            Ids.Require(result.TraceId, "traceId");
        }
        if (result.DurationMs is { } d && (!double.IsFinite(d) || d < 0) || result.Cost is { } c && (!double.IsFinite(c) || c < 0))
        {
            throw new ProblemException(400, "invalid-result", "'durationMs' and 'cost' must be finite and not negative.");
        }
        if (request.Feedback?.Rating is { } rating && (!double.IsFinite(rating) || rating < 1 || rating > 5))
        {
            throw new ProblemException(400, "invalid-rating", "'feedback.rating' must be 1..5.");
        }
        var agentId = request.AgentId is null ? null : Ids.Require(request.AgentId, "agentId");
        var conversationId = request.ConversationId is null ? null : Ids.Require(request.ConversationId, "conversationId");
        var userId = request.UserId is null ? null : Ids.Require(request.UserId, "userId");
        var experience = new Experience(id, agentId, context, result, request.Feedback, TaskPatterns.Extract(context), time.GetUtcNow(), conversationId, userId);
        return await store.InsertIfAbsentAsync(tenantId, experience, cancellationToken);
    }

    /// <summary>Similar past patterns with at least the requested similarity, ranked by similarity × smoothed success rate.</summary>
    public async Task<SimilarExperiences> SearchAsync(string tenantId, SearchExperiencesRequest? request, CancellationToken cancellationToken = default)
    {
        using var activity = FeedbackTelemetry.Source.StartActivity("experiences.search");
        if (request is null)
        {
            throw new ProblemException(400, "missing-body", "A search body is required.");
        }
        var context = ValidateContext(request.TaskContext);
        var minSimilarity = request.MinSimilarity ?? DefaultMinSimilarity;
        if (minSimilarity is < 0 or > 1 || double.IsNaN(minSimilarity))
        {
            throw new ProblemException(400, "invalid-min-similarity", "'minSimilarity' must be 0..1.");
        }
        var topK = request.TopK ?? DefaultTopK;
        if (topK is < 1 or > MaxTopK)
        {
            throw new ProblemException(400, "invalid-top-k", $"'topK' must be 1..{MaxTopK}.");
        }
        var query = TaskPatterns.Extract(context);
        var candidates = await store.FindCandidatesAsync(tenantId, TaskPatterns.CandidateFilter(query, minSimilarity), MaxCandidates, cancellationToken);
        var ranked = new List<(PatternStats Stats, double Similarity, PatternMatch Match, double Rate, double Score)>();
        foreach (var candidate in candidates)
        {
            var (similarity, match) = TaskPatterns.Compare(query, candidate.Pattern);
            if (similarity < minSimilarity)
            {
                continue;
            }
            var rate = (candidate.Successes + 1.0) / (candidate.Attempts + 2.0);
            ranked.Add((candidate, similarity, match, rate, similarity * rate));
        }
        var top = ranked.OrderByDescending(r => r.Score).ThenByDescending(r => r.Similarity).ThenBy(r => r.Stats.Pattern.Key, StringComparer.Ordinal).Take(topK).ToList();
        var ids = top.SelectMany(r => new[] { r.Stats.LastSuccessId, r.Stats.LastFailureId }).OfType<string>().ToHashSet(StringComparer.Ordinal);
        var experiences = (await store.GetManyAsync(tenantId, ids, cancellationToken)).ToDictionary(e => e.Id, StringComparer.Ordinal);
        var items = top.Select(r => new SimilarExperience(r.Stats.Pattern, r.Similarity, Math.Round(r.Rate, 4), r.Stats.Attempts, r.Stats.Successes,
            r.Stats.DurationCount == 0 ? null : Math.Round(r.Stats.DurationSum / r.Stats.DurationCount, 2),
            r.Stats.CostCount == 0 ? null : Math.Round(r.Stats.CostSum / r.Stats.CostCount, 6),
            Math.Round(r.Score, 4), TaskPatterns.Reason(query, r.Stats.Pattern, r.Match, r.Stats), r.Match,
            r.Stats.LastSuccessId is { } s ? experiences.GetValueOrDefault(s) : null,
            r.Stats.LastFailureId is { } f ? experiences.GetValueOrDefault(f) : null)).ToList();
        activity?.SetTag("candidates", candidates.Count);
        return new SimilarExperiences(query, items, candidates.Count);
    }

    private static TaskContext ValidateContext(TaskContext? context)
    {
        if (context is null || (string.IsNullOrWhiteSpace(context.Description) && string.IsNullOrWhiteSpace(context.Intent)))
        {
            throw new ProblemException(400, "missing-task-context", "'taskContext' needs a 'description' or an 'intent'.");
        }
        if (context.Description is { Length: > 4000 })
        {
            throw new ProblemException(400, "invalid-task-context", "'taskContext.description' is longer than 4000 characters.");
        }
        foreach (var list in new[] { context.Entities, context.Tools, context.Steps })
        {
            if (list is not null && (list.Count > MaxListItems || list.Any(i => string.IsNullOrWhiteSpace(i) || i.Length > MaxItemLength)))
            {
                throw new ProblemException(400, "invalid-task-context", $"'entities', 'tools' and 'steps' hold at most {MaxListItems} non-empty strings of at most {MaxItemLength} characters.");
            }
        }
        return context;
    }
}

/// <summary>The <c>/v1/experiences</c> endpoint group.</summary>
public static class ExperienceEndpoints
{
    /// <summary>Maps the group.</summary>
    public static IEndpointRouteBuilder MapExperienceEndpoints(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/v1/experiences").WithTags("Experiences");
        group.MapPost("/", RecordAsync);
        group.MapPost("/search", SearchAsync);
        return endpoints;
    }

    /// <summary><c>POST /v1/experiences</c>: 201 new, 200 when the id exists.</summary>
    public static async Task<Results<Created<Experience>, Ok<Experience>>> RecordAsync(HttpContext http, RecordExperienceRequest? request, ExperienceService experiences,
        Traces.TraceReader traces, CancellationToken cancellationToken)
    {
        if (request is { ConversationId: null, Result.TraceId: { } traceId })
        {
            request = request with { ConversationId = await traces.ConversationOfAsync(http, traceId, cancellationToken) };
        }
        var (experience, created) = await experiences.RecordAsync(Tenant.From(http), request, cancellationToken);
        return created ? TypedResults.Created($"/v1/experiences/{experience.Id}", experience) : TypedResults.Ok(experience);
    }

    /// <summary><c>POST /v1/experiences/search</c>.</summary>
    public static async Task<Ok<SimilarExperiences>> SearchAsync(HttpContext http, SearchExperiencesRequest? request, ExperienceService experiences, CancellationToken cancellationToken) =>
        TypedResults.Ok(await experiences.SearchAsync(Tenant.From(http), request, cancellationToken));
}
