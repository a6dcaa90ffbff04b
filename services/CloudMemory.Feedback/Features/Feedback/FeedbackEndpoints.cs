using System.Globalization;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Feedback;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CloudMemory.Feedback.Features.Feedback;

/// <summary>The <c>/v1/feedback</c> endpoint group (records and configs).</summary>
public static class FeedbackEndpoints
{
    /// <summary>Page size of the feedback listing when <c>limit</c> is absent.</summary>
    public const int DefaultLimit = 50;

    /// <summary>Largest page of the feedback listing and of the learning-cycle history.</summary>
    public const int MaxLimit = 500;

    /// <summary>Maps the group.</summary>
    public static IEndpointRouteBuilder MapFeedbackRecordEndpoints(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/v1/feedback").WithTags("Feedback");
        group.MapPost("/", RecordAsync);
        group.MapGet("/", ListAsync);
        group.MapGet("/configs", ListConfigsAsync);
        group.MapGet("/configs/{name}", GetConfigAsync);
        group.MapPut("/configs/{name}", PutConfigAsync);
        return endpoints;
    }

    /// <summary><c>POST /v1/feedback</c>: 201 new, 200 on an idempotent repeat, 409 when the id holds other content.</summary>
    public static async Task<Results<Created<FeedbackRecord>, Ok<FeedbackRecord>>> RecordAsync(HttpContext http, RecordFeedbackRequest? request, FeedbackRecorder recorder,
        Traces.TraceReader traces, CancellationToken cancellationToken)
    {
        var tenant = Tenant.From(http);
        // A memory retrieved by a traced step: the step's query conditions the feedback's effect on retrieval.
        var stepQuery = request is { Query: null, TraceId: { } traceId, StepId: { } stepId, Target.Type: FeedbackTargetTypes.Memory }
            ? await traces.StepQueryAsync(http, traceId, stepId, cancellationToken)
            : null;
        var (record, created) = await recorder.RecordAsync(tenant, request, stepQuery, cancellationToken);
        return created ? TypedResults.Created($"/v1/feedback?targetType={record.Target.Type}&targetId={record.Target.Id}", record) : TypedResults.Ok(record);
    }

    /// <summary><c>GET /v1/feedback?targetType=&amp;targetId=&amp;agentId=&amp;name=&amp;kind=&amp;conversationId=&amp;since=&amp;until=&amp;cursor=&amp;limit=</c>, newest first.</summary>
    public static async Task<Ok<FeedbackPage>> ListAsync(HttpContext http, IFeedbackStore store, CancellationToken cancellationToken,
        string? targetType = null, string? targetId = null, string? agentId = null, string? name = null, string? kind = null,
        string? conversationId = null, DateTimeOffset? since = null, DateTimeOffset? until = null, string? cursor = null, int? limit = null)
    {
        var tenant = Tenant.From(http);
        if (targetType is not null && !FeedbackTargetTypes.All.Contains(targetType))
        {
            throw new ProblemException(400, "invalid-target-type", $"'targetType' must be one of {string.Join(", ", FeedbackTargetTypes.All)}.");
        }
        if (kind is not null && !FeedbackKinds.All.Contains(kind))
        {
            throw new ProblemException(400, "invalid-kind", $"'kind' must be one of {string.Join(", ", FeedbackKinds.All)}.");
        }
        var size = Paging.Limit(limit, DefaultLimit, MaxLimit);
        var before = Paging.After(cursor, FeedbackCursor.TryDecode);
        var query = new FeedbackQuery(targetType, Optional(targetId, "targetId"), Optional(agentId, "agentId"), Optional(name, "name"), kind,
            Optional(conversationId, "conversationId"), since, until);
        // One extra row tells whether another page exists.
        var rows = await store.ListAsync(tenant, query, before?.Sequence, size + 1, cancellationToken);
        var page = rows.Take(size).ToList();
        var next = rows.Count > size ? new FeedbackCursor(page[^1].Sequence).Encode() : null;
        return TypedResults.Ok(new FeedbackPage(page.Select(r => r.Record).ToList(), next));
    }

    /// <summary><c>GET /v1/feedback/configs</c>.</summary>
    public static async Task<Ok<FeedbackConfigList>> ListConfigsAsync(HttpContext http, IFeedbackStore store, CancellationToken cancellationToken)
    {
        var own = await store.ListConfigsAsync(Tenant.From(http), cancellationToken);
        var names = own.Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
        var all = own.Concat(FeedbackConfigs.BuiltIn.Where(c => !names.Contains(c.Name))).OrderBy(c => c.Name, StringComparer.Ordinal).ToList();
        return TypedResults.Ok(new FeedbackConfigList(all));
    }

    /// <summary><c>GET /v1/feedback/configs/{name}</c>.</summary>
    public static async Task<Results<Ok<FeedbackConfig>, ProblemHttpResult>> GetConfigAsync(HttpContext http, string name, FeedbackRecorder recorder, CancellationToken cancellationToken) =>
        await recorder.ResolveConfigAsync(Tenant.From(http), Ids.Require(name, "name"), cancellationToken) is { } config
            ? TypedResults.Ok(config)
            : Problems.NotFound("feedback-config-not-found", $"No feedback config named '{name}'.");

    /// <summary><c>PUT /v1/feedback/configs/{name}</c>: creates or replaces the tenant's config.</summary>
    public static async Task<Ok<FeedbackConfig>> PutConfigAsync(HttpContext http, string name, FeedbackConfig? config, IFeedbackStore store, CancellationToken cancellationToken)
    {
        var tenant = Tenant.From(http);
        var valid = FeedbackConfigs.Validate(name, config);
        await store.UpsertConfigAsync(tenant, valid, cancellationToken);
        return TypedResults.Ok(valid);
    }

    private static string? Optional(string? value, string name) => value is null ? null : Ids.Require(value, name);
}

/// <summary>A feedback listing's cursor: the feed position of the last record of a page (the next page starts below it).</summary>
public sealed record FeedbackCursor(long Sequence)
{
    /// <summary>The <c>nextCursor</c> text.</summary>
    public string Encode() => Sequence.ToString(CultureInfo.InvariantCulture);

    /// <summary>The cursor <paramref name="text"/> encodes, or null when it is not one <see cref="Encode"/> wrote.</summary>
    public static FeedbackCursor? TryDecode(string text) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var sequence) && sequence > 0 ? new FeedbackCursor(sequence) : null;
}
