using System.Net.Http.Json;
using System.Text.Json;
using CloudMemory.BuildingBlocks.EventStream;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.BuildingBlocks.Invocation;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Erasure;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Contracts.Traces;
using CloudMemory.Conversations.Log;
using CloudMemory.Conversations.Sessions;
using Dapr.Actors.Client;
using CloudMemory.Session.Features.Sessions;
using CloudMemory.Session.Features.SharedContexts;

namespace CloudMemory.Session.Features.Erasure;

/// <summary>
/// Deletes a conversation or erases a user across the services. The other services (context,
/// trace, feedback) are separate Dapr apps: each is asked through the service invoker to erase
/// what it holds (<see cref="ErasureRights.InternalRoute"/>), with the caller's credential, so it
/// checks the same tenant and rights. Downstream stores are erased before the conversation log, so
/// a failure leaves the conversation in place and a retry finishes the job. Each erasure is audited:
/// a log line and a trace step of agent <see cref="AuditAgentId"/> (who, when, what, counts).
/// </summary>
public sealed class ErasureCoordinator(
    IConversationLog log,
    IActorProxyFactory actors,
    SharedContextStore sharedContexts,
    IServiceInvoker invoker,
    IServiceProvider services,
    TimeProvider time,
    ILogger<ErasureCoordinator> logger)
{
    /// <summary>The agent id of audit steps: <c>GET /v1/agents/cloudmemory-erasure/actions</c> lists every erasure.</summary>
    public const string AuditAgentId = "cloudmemory-erasure";

    private static readonly string[] ForwardedHeaders = ["Authorization", "X-Api-Key", Tenant.AgentHeaderName];
    private static readonly string[] Downstream = ["context", "trace", "feedback"];

    /// <summary>Deletes one conversation and what derives from it; false when it is unknown.</summary>
    public async Task<bool> DeleteConversationAsync(HttpContext http, string tenant, string conversationId, CancellationToken ct)
    {
        // Every check before the first deletion: a request refused (e.g. a bad agent id) deletes nothing.
        var agent = Tenant.AgentFrom(http);
        if (await log.GetStatsAsync(tenant, conversationId, ct) is null)
        {
            return false;
        }
        var counts = new Dictionary<string, long>();
        Add(counts, await CallAsync(http, tenant, "context", new ErasureRequest(null, [conversationId]), ct));
        // The feedback on the conversation and the experiences recorded in it (the feedback app's part).
        Add(counts, await CallAsync(http, tenant, "feedback", new ErasureRequest(null, [conversationId]), ct));
        counts[ErasureCountKeys.SharedContexts] = await DeleteSharedContextsAsync(tenant, conversationId, ct);
        var deleted = await DeleteInActorAsync(tenant, conversationId, ct);
        AddDeletion(counts, deleted);
        counts[ErasureCountKeys.Events] = RemoveEvents(tenant, e => EventReplayBuffer.DataProperty(e, "conversationId") == conversationId);
        await AuditAsync(http, tenant, agent, "delete-conversation", new { conversationId }, counts, ct);
        return true;
    }

    /// <summary>Erases everything held of <paramref name="userId"/> in every service.</summary>
    public async Task<ErasureReport> EraseUserAsync(HttpContext http, string tenant, string userId, CancellationToken ct)
    {
        var agent = Tenant.AgentFrom(http);
        var conversations = new List<string>();
        ConversationCursor? cursor = null;
        while (true)
        {
            var page = await log.ListConversationsAsync(tenant, new ConversationFilter(UserId: userId), cursor, ErasureRights.MaxConversationsPerCall, ct);
            conversations.AddRange(page.Select(c => c.ConversationId));
            if (page.Count < ErasureRights.MaxConversationsPerCall)
            {
                break;
            }
            cursor = ConversationCursor.After(page[^1]);
        }

        var counts = new Dictionary<string, long>();
        var byService = new Dictionary<string, IReadOnlyDictionary<string, long>>();
        foreach (var app in Downstream)
        {
            var serviceCounts = new Dictionary<string, long>();
            var chunks = conversations.Chunk(ErasureRights.MaxConversationsPerCall).ToList();
            if (chunks.Count == 0)
            {
                chunks.Add([]);
            }
            foreach (var chunk in chunks)
            {
                Add(serviceCounts, await CallAsync(http, tenant, app, new ErasureRequest(userId, chunk), ct));
            }
            Add(counts, serviceCounts);
            byService[app] = serviceCounts;
        }

        var sessionCounts = new Dictionary<string, long>
        {
            [ErasureCountKeys.Conversations] = 0, [ErasureCountKeys.Messages] = 0, [ErasureCountKeys.Checkpoints] = 0, [ErasureCountKeys.Sessions] = 0,
            [ErasureCountKeys.SharedContexts] = 0,
        };
        foreach (var conversationId in conversations)
        {
            sessionCounts[ErasureCountKeys.SharedContexts] += await DeleteSharedContextsAsync(tenant, conversationId, ct);
            AddDeletion(sessionCounts, await DeleteInActorAsync(tenant, conversationId, ct));
        }
        sessionCounts[ErasureCountKeys.Profiles] = await log.DeleteUserProfileAsync(tenant, userId, ct) ? 1 : 0;
        var set = conversations.ToHashSet(StringComparer.Ordinal);
        sessionCounts[ErasureCountKeys.Events] = RemoveEvents(tenant, e =>
            EventReplayBuffer.DataProperty(e, "userId") == userId || (EventReplayBuffer.DataProperty(e, "conversationId") is { } c && set.Contains(c)));
        Add(counts, sessionCounts);
        byService[SessionServiceCollectionExtensions.AppId] = sessionCounts;

        var report = new ErasureReport(userId, time.GetUtcNow(), counts, byService);
        await AuditAsync(http, tenant, agent, "erase-user", new { userId }, counts, ct);
        return report;
    }

    private async Task<ConversationDeleted> DeleteInActorAsync(string tenant, string conversationId, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        return (await actors.Conversation(tenant, conversationId).Delete(new DeleteConversationCommand(tenant, conversationId))).ValueOrProblem();
    }

    // The shared contexts created from the conversation (they copy its fields), each deleted in its own actor's turn.
    private async Task<long> DeleteSharedContextsAsync(string tenant, string conversationId, CancellationToken ct)
    {
        long deleted = 0;
        foreach (var id in await sharedContexts.LinkedAsync(tenant, conversationId, ct))
        {
            ct.ThrowIfCancellationRequested();
            var reply = await actors.SharedContext(tenant, id).Delete(new SimpleCommand(tenant, id, AuditAgentId));
            if (!reply.IsSuccess)
            {
                throw new ProblemException(reply.Status, reply.Code!, reply.Detail ?? "The shared context could not be deleted.");
            }
            deleted += reply.Value >= 0 ? 1 : 0;
        }
        await sharedContexts.UnlinkAsync(tenant, conversationId, ct);
        return deleted;
    }

    private static void AddDeletion(Dictionary<string, long> counts, ConversationDeleted deleted)
    {
        Add(counts, new Dictionary<string, long>
        {
            [ErasureCountKeys.Conversations] = deleted.Found ? 1 : 0,
            [ErasureCountKeys.Messages] = deleted.Messages,
            [ErasureCountKeys.Checkpoints] = deleted.Checkpoints,
            [ErasureCountKeys.Sessions] = deleted.Session ? 1 : 0,
        });
    }

    private long RemoveEvents(string tenant, Func<BuildingBlocks.PubSub.CloudEvent, bool> match) =>
        services.GetService<EventReplayBuffer>()?.Remove(tenant, match) ?? 0;

    private async Task<IReadOnlyDictionary<string, long>> CallAsync(HttpContext http, string tenant, string appId, ErasureRequest request, CancellationToken ct)
    {
        using var message = Forwarding(http, tenant, HttpMethod.Post, ErasureRights.InternalRoute(appId).TrimStart('/'), request);
        HttpResponseMessage response;
        try
        {
            response = await invoker.InvokeAsync(appId, message, ct);
        }
        catch (HttpRequestException ex)
        {
            throw new ProblemException(502, "erasure-incomplete", $"The {appId} service could not be reached ({ex.Message}); nothing of the conversation log was deleted, retry.");
        }
        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                var body = await response.Content.ReadAsStringAsync(ct);
                throw new ProblemException(502, "erasure-incomplete",
                    $"The {appId} service answered {(int)response.StatusCode} to the erasure ({body[..Math.Min(body.Length, 300)]}); nothing of the conversation log was deleted, retry.");
            }
            return (await response.Content.ReadFromJsonAsync<ErasureCounts>(ContractsJson.Options, ct))?.Counts ?? new Dictionary<string, long>();
        }
    }

    // Who, when, what and how much: a structured log line always, and a durable trace step (best effort: the erasure is done either way).
    private async Task AuditAsync(HttpContext http, string tenant, string? agent, string action, object subject, IReadOnlyDictionary<string, long> counts, CancellationToken ct)
    {
        var identity = Tenant.Authenticated(http);
        var by = new { agentId = agent, keyId = identity?.KeyId, admin = identity?.IsAdmin };
        var at = time.GetUtcNow();
        logger.LogWarning("Audit {Action} in tenant {Tenant} by {@By}: {@Subject} removed {@Counts}", action, tenant, by, subject, counts);
        var step = new TraceStepInput
        {
            TraceId = $"erasure-{Guid.NewGuid():N}",
            StepIndex = 0,
            AgentId = AuditAgentId,
            StepType = StepTypes.Custom,
            Name = action,
            StartedAt = at,
            Inputs = JsonSerializer.SerializeToElement(new { subject, requestedBy = by }, ContractsJson.Options),
            Outputs = JsonSerializer.SerializeToElement(new { counts }, ContractsJson.Options),
            Tags = ["audit", "erasure"],
        };
        try
        {
            using var message = Forwarding(http, tenant, HttpMethod.Post, "v1/traces/steps", new IngestStepsRequest([step]));
            message.Headers.Remove(Tenant.AgentHeaderName);
            using var response = await invoker.InvokeAsync("trace", message, ct);
            if (!response.IsSuccessStatusCode)
            {
                logger.LogError("The audit step of {Action} was refused: {Status}", action, (int)response.StatusCode);
            }
        }
        catch (Exception ex) when (ex is HttpRequestException or InvalidOperationException)
        {
            logger.LogError(ex, "The audit step of {Action} could not be stored", action);
        }
    }

    private static HttpRequestMessage Forwarding(HttpContext http, string tenant, HttpMethod method, string path, object body)
    {
        var message = new HttpRequestMessage(method, new Uri(path, UriKind.Relative)) { Content = JsonContent.Create(body, options: ContractsJson.Options) };
        message.Headers.TryAddWithoutValidation(Tenant.HeaderName, tenant);
        foreach (var header in ForwardedHeaders)
        {
            if (http.Request.Headers.TryGetValue(header, out var value) && value.Count > 0)
            {
                message.Headers.TryAddWithoutValidation(header, value.ToString());
            }
        }
        return message;
    }

    private static void Add(Dictionary<string, long> into, IReadOnlyDictionary<string, long> from)
    {
        foreach (var (key, value) in from)
        {
            into[key] = into.GetValueOrDefault(key) + value;
        }
    }
}
