using System.Globalization;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Feedback;
using CloudMemory.Feedback.Features.Feedback;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace CloudMemory.Feedback.Features.Analysis;

/// <summary>Loads a period's feedback and analyzes it.</summary>
public sealed class FeedbackAnalysisService(IFeedbackStore store, IOptions<AnalysisOptions> options, TimeProvider time)
{
    private const int PageSize = 1000;

    /// <summary>Records of the period (newest first) and whether the cap cut them.</summary>
    public async Task<(List<FeedbackRecord> Records, bool Truncated)> LoadAsync(string tenantId, FeedbackQuery query, string? stepType, CancellationToken cancellationToken)
    {
        var max = options.Value.MaxRecords;
        var records = new List<FeedbackRecord>();
        long? before = null;
        while (true)
        {
            var page = await store.ListAsync(tenantId, query, before, PageSize, cancellationToken);
            records.AddRange(page.Select(p => p.Record).Where(r => stepType is null || r.StepType == stepType));
            if (records.Count >= max)
            {
                return (records.Take(max).ToList(), true);
            }
            if (page.Count < PageSize)
            {
                return (records, false);
            }
            before = page[^1].Sequence;
        }
    }

    /// <summary>The configs of a tenant by name (its own over the built-in ones).</summary>
    public async Task<Func<string, FeedbackConfig?>> ConfigsAsync(string tenantId, CancellationToken cancellationToken)
    {
        var own = (await store.ListConfigsAsync(tenantId, cancellationToken)).ToDictionary(c => c.Name, StringComparer.Ordinal);
        return name => own.GetValueOrDefault(name) ?? FeedbackConfigs.FindBuiltIn(name);
    }

    /// <summary>Analyzes the tenant's feedback of [since, until) for an agent and/or step type.</summary>
    public async Task<FeedbackAnalysis> AnalyzeAsync(string tenantId, string? agentId, string? stepType, DateTimeOffset? since, DateTimeOffset? until, TimeSpan window, CancellationToken cancellationToken)
    {
        var end = until ?? time.GetUtcNow();
        var start = since ?? end - TimeSpan.FromDays(7);
        if (start >= end)
        {
            throw new ProblemException(400, "invalid-period", "'since' must be before 'until'.");
        }
        if ((end - start) / window > 1000)
        {
            throw new ProblemException(400, "invalid-window", "The period holds more than 1000 windows; use a larger 'window'.");
        }
        var (records, truncated) = await LoadAsync(tenantId, new FeedbackQuery(AgentId: agentId, Since: start, Until: end), stepType, cancellationToken);
        return FeedbackAnalyzer.Analyze(records, await ConfigsAsync(tenantId, cancellationToken), agentId, stepType, start, end, window, truncated, options.Value);
    }
}

/// <summary><c>GET /v1/feedback/analysis</c>.</summary>
public static class AnalysisEndpoints
{
    /// <summary>Maps the route.</summary>
    public static IEndpointRouteBuilder MapFeedbackAnalysis(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/v1/feedback/analysis", AnalyzeAsync).WithTags("Feedback");
        return endpoints;
    }

    /// <summary><c>GET /v1/feedback/analysis?agentId=&amp;stepType=&amp;since=&amp;until=&amp;window=1d</c> (window: <c>30m</c>, <c>6h</c>, <c>1d</c>, <c>7d</c>).</summary>
    public static async Task<Ok<FeedbackAnalysis>> AnalyzeAsync(HttpContext http, FeedbackAnalysisService analysis, CancellationToken cancellationToken,
        string? agentId = null, string? stepType = null, DateTimeOffset? since = null, DateTimeOffset? until = null, string? window = null)
    {
        var tenant = Tenant.From(http);
        return TypedResults.Ok(await analysis.AnalyzeAsync(tenant,
            agentId is null ? null : Ids.Require(agentId, "agentId"), stepType is null ? null : Ids.Require(stepType, "stepType"),
            since, until, ParseWindow(window), cancellationToken));
    }

    /// <summary>Parses <c>30m</c>, <c>6h</c>, <c>1d</c>; throws a 400 problem otherwise.</summary>
    public static TimeSpan ParseWindow(string? window)
    {
        if (string.IsNullOrEmpty(window))
        {
            return TimeSpan.FromDays(1);
        }
        if (window.Length >= 2 && int.TryParse(window.AsSpan(0, window.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0)
        {
            switch (window[^1])
            {
                case 'm':
                    return TimeSpan.FromMinutes(n);
                case 'h':
                    return TimeSpan.FromHours(n);
                case 'd':
                    return TimeSpan.FromDays(n);
            }
        }
        throw new ProblemException(400, "invalid-window", "'window' must be a positive number followed by m, h or d (e.g. 1d).");
    }
}
