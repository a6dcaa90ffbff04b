using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Traces;
using CloudMemory.Trace.Features.Steps;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Http.Metadata;

namespace CloudMemory.Trace.Features.Read;

/// <summary>Steps of a conversation.</summary>
public sealed record ContextSteps(string ContextId, IReadOnlyList<TraceStep> Steps);

/// <summary>What an agent did recently (newest first), e.g. for a context answer's <c>recent_actions</c>.</summary>
public sealed record AgentActions(string AgentId, IReadOnlyList<AgentAction> Actions);

/// <summary>One recent action.</summary>
public sealed record AgentAction(string TraceId, string StepId, int StepIndex, string? ContextId, string StepType, string Name,
    DateTimeOffset StartedAt, double DurationMs, bool Success, StepError? Error);

/// <summary>A 200 answer of <c>GET /v1/traces/{traceId}</c>: the <see cref="TraceView"/> written by <see cref="TraceViewJson"/>.</summary>
public sealed class TraceViewResult(TraceView view, IReadOnlyList<StepPayloads>? payloads) : IResult, IEndpointMetadataProvider
{
    /// <summary>The view.</summary>
    public TraceView View { get; } = view;

    /// <inheritdoc />
    public Task ExecuteAsync(HttpContext httpContext)
    {
        httpContext.Response.StatusCode = StatusCodes.Status200OK;
        httpContext.Response.ContentType = "application/json; charset=utf-8";
        return TraceViewJson.WriteAsync(httpContext.Response.BodyWriter, View, payloads, httpContext.RequestAborted);
    }

    /// <inheritdoc />
    public static void PopulateMetadata(System.Reflection.MethodInfo method, EndpointBuilder builder) =>
        builder.Metadata.Add(new ProducesResponseTypeMetadata(StatusCodes.Status200OK, typeof(TraceView), ["application/json"]));
}

/// <summary>Reads: a trace as a tree, one step, a conversation's steps, an agent's recent actions.</summary>
public static class TraceReadEndpoints
{
    /// <summary>Maps the routes.</summary>
    public static IEndpointRouteBuilder MapTraceReadEndpoints(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/v1/traces/{traceId}", GetTraceAsync).WithTags("Traces");
        endpoints.MapGet("/v1/traces/{traceId}/steps/{stepId}", GetStepAsync).WithTags("Traces");
        endpoints.MapGet("/v1/traces/{traceId}/conversation", GetConversationAsync).WithTags("Traces");
        endpoints.MapGet("/v1/conversations/{contextId}/steps", GetContextStepsAsync).WithTags("Traces");
        endpoints.MapGet("/v1/agents/{agentId}/actions", GetAgentActionsAsync).WithTags("Traces");
        return endpoints;
    }

    /// <summary><c>GET /v1/traces/{traceId}</c>: the view, its payloads copied as stored (see <see cref="TraceViewJson"/>).</summary>
    public static async Task<TraceViewResult> GetTraceAsync(HttpContext http, string traceId, ITraceStore store, CancellationToken cancellationToken)
    {
        var tenant = Tenant.From(http);
        Ids.Require(traceId, "traceId");
        var rows = await store.GetTraceRowsAsync(tenant, traceId, cancellationToken);
        return rows.Steps.Count == 0
            ? throw new ProblemException(404, "trace-not-found", $"Trace '{traceId}' has no steps.")
            : new TraceViewResult(TraceViewBuilder.Build(traceId, rows.Steps), rows.Payloads);
    }

    /// <summary>
    /// <c>GET /v1/traces/{traceId}/steps/{stepId}</c>: one step as recorded (inputs, outputs, audit),
    /// read by its key without the rest of the trace; 404 problem <c>step-not-found</c>.
    /// </summary>
    public static async Task<Ok<TraceStep>> GetStepAsync(HttpContext http, string traceId, string stepId, ITraceStore store, CancellationToken cancellationToken)
    {
        var tenant = Tenant.From(http);
        Ids.Require(traceId, "traceId");
        Ids.Require(stepId, "stepId");
        var step = await store.GetStepAsync(tenant, traceId, stepId, cancellationToken)
            ?? throw new ProblemException(404, "step-not-found", $"Trace '{traceId}' has no step '{stepId}'.");
        return TypedResults.Ok(step);
    }

    /// <summary>
    /// <c>GET /v1/traces/{traceId}/conversation</c>: the conversation the trace belongs to (what the
    /// feedback app files an experience under), without reading its steps; 404 problem <c>trace-not-found</c>.
    /// </summary>
    public static async Task<Ok<TraceConversation>> GetConversationAsync(HttpContext http, string traceId, ITraceStore store, CancellationToken cancellationToken)
    {
        var tenant = Tenant.From(http);
        Ids.Require(traceId, "traceId");
        var (found, contextId) = await store.GetTraceConversationAsync(tenant, traceId, cancellationToken);
        return found
            ? TypedResults.Ok(new TraceConversation(traceId, contextId))
            : throw new ProblemException(404, "trace-not-found", $"Trace '{traceId}' has no steps.");
    }

    /// <summary><c>GET /v1/conversations/{contextId}/steps?limit=</c> (oldest first).</summary>
    public static async Task<Ok<ContextSteps>> GetContextStepsAsync(HttpContext http, string contextId, ITraceStore store, CancellationToken cancellationToken, int? limit = null)
    {
        var tenant = Tenant.From(http);
        Ids.Require(contextId, "contextId");
        var steps = await store.GetContextStepsAsync(tenant, contextId, Limit(limit, 200, 5000), cancellationToken);
        return TypedResults.Ok(new ContextSteps(contextId, steps));
    }

    /// <summary><c>GET /v1/agents/{agentId}/actions?limit=</c> (newest first).</summary>
    public static async Task<Ok<AgentActions>> GetAgentActionsAsync(HttpContext http, string agentId, ITraceStore store, CancellationToken cancellationToken, int? limit = null)
    {
        var tenant = Tenant.From(http);
        Ids.Require(agentId, "agentId");
        var steps = await store.GetAgentStepsAsync(tenant, agentId, Limit(limit, 20, 1000), cancellationToken);
        return TypedResults.Ok(new AgentActions(agentId, [.. steps.Select(s =>
            new AgentAction(s.TraceId, s.StepId, s.StepIndex, s.ContextId, s.StepType, s.Name, s.StartedAt, s.DurationMs, s.Success, s.Error))]));
    }

    /// <summary>The steps of a trace of the request's tenant; 404 problem when it has none.</summary>
    public static async Task<IReadOnlyList<TraceStep>> LoadAsync(HttpContext http, string traceId, ITraceStore store, CancellationToken cancellationToken)
    {
        var tenant = Tenant.From(http);
        Ids.Require(traceId, "traceId");
        var steps = await store.GetTraceAsync(tenant, traceId, cancellationToken);
        return steps.Count == 0 ? throw new ProblemException(404, "trace-not-found", $"Trace '{traceId}' has no steps.") : steps;
    }

    /// <summary>A validated page size.</summary>
    public static int Limit(int? limit, int fallback, int max) => limit switch
    {
        null => fallback,
        < 1 => throw new ProblemException(400, "invalid-limit", $"'limit' must be 1-{max}."),
        _ when limit > max => throw new ProblemException(400, "invalid-limit", $"'limit' must be 1-{max}."),
        _ => limit.Value,
    };
}
