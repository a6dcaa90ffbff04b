using CloudMemory.BuildingBlocks.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;
using CloudMemory.Contracts.Feedback;

namespace CloudMemory.Feedback.Features.Learning;

/// <summary>Strategy and learning-cycle routes.</summary>
public static class LearningEndpoints
{
    /// <summary>Maps the routes.</summary>
    public static IEndpointRouteBuilder MapLearningEndpoints(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/v1/agents/{agentId}/strategy", GetStrategyAsync).WithTags("Learning");
        endpoints.MapGet("/v1/agents/{agentId}/strategies", ListStrategiesAsync).WithTags("Learning");
        var cycles = endpoints.MapGroup("/v1/learning/cycles").WithTags("Learning");
        cycles.MapPost("/", RunCycleAsync);
        cycles.MapGet("/", ListCyclesAsync);
        cycles.MapGet("/{cycleId}", GetCycleAsync);
        return endpoints;
    }

    /// <summary><c>GET /v1/agents/{agentId}/strategy?conversationId=</c>.</summary>
    public static async Task<Ok<AgentStrategy>> GetStrategyAsync(HttpContext http, string agentId, LearningEngine engine, CancellationToken cancellationToken, string? conversationId = null) =>
        TypedResults.Ok(await engine.GetStrategyAsync(Tenant.From(http), Ids.Require(agentId, "agentId"),
            conversationId is null ? null : Ids.Require(conversationId, "conversationId"), cancellationToken));

    /// <summary><c>GET /v1/agents/{agentId}/strategies</c>: every strategy ever proposed for the agent, oldest first.</summary>
    public static async Task<Ok<IReadOnlyList<Strategy>>> ListStrategiesAsync(HttpContext http, string agentId, ILearningStore store, CancellationToken cancellationToken) =>
        TypedResults.Ok(await store.ListStrategiesAsync(Tenant.From(http), Ids.Require(agentId, "agentId"), cancellationToken));

    /// <summary><c>POST /v1/learning/cycles</c> <c>{agentId, cycleId?}</c>: runs a cycle now; 201 with the cycle, 200 when <c>cycleId</c> already ran.</summary>
    public static async Task<Results<Created<LearningCycle>, Ok<LearningCycle>>> RunCycleAsync(HttpContext http, RunLearningCycleRequest? request, LearningCycleRunner runner, TimeProvider time, CancellationToken cancellationToken)
    {
        var tenant = Tenant.From(http);
        var agentId = Ids.Require(request?.AgentId, "agentId");
        var key = request?.CycleId is { } cycleId ? Ids.Require(cycleId, "cycleId") : "m" + time.GetUtcNow().ToUnixTimeMilliseconds();
        var (cycle, created) = await runner.RunAsync(tenant, agentId, key, cancellationToken);
        return created ? TypedResults.Created($"/v1/learning/cycles/{cycle.Id}", cycle) : TypedResults.Ok(cycle);
    }

    /// <summary><c>GET /v1/learning/cycles?agentId=&amp;limit=</c>: history, newest first.</summary>
    public static async Task<Ok<LearningCyclePage>> ListCyclesAsync(HttpContext http, ILearningStore store, CancellationToken cancellationToken, string? agentId = null, int? limit = null)
    {
        var size = Paging.Limit(limit, Feedback.FeedbackEndpoints.DefaultLimit, Feedback.FeedbackEndpoints.MaxLimit);
        return TypedResults.Ok(new LearningCyclePage(await store.ListCyclesAsync(Tenant.From(http), agentId is null ? null : Ids.Require(agentId, "agentId"), size, cancellationToken)));
    }

    /// <summary><c>GET /v1/learning/cycles/{cycleId}</c>.</summary>
    public static async Task<Results<Ok<LearningCycle>, ProblemHttpResult>> GetCycleAsync(HttpContext http, string cycleId, ILearningStore store, CancellationToken cancellationToken) =>
        await store.GetCycleAsync(Tenant.From(http), cycleId, cancellationToken) is { } cycle
            ? TypedResults.Ok(cycle)
            : Problems.NotFound("learning-cycle-not-found", $"No learning cycle '{cycleId}'.");
}
