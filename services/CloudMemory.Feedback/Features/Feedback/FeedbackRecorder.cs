using System.Security.Cryptography;
using System.Text.Json;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Events;
using CloudMemory.Contracts.Feedback;

namespace CloudMemory.Feedback.Features.Feedback;

/// <summary>
/// Validates, scores, stores and announces feedback. Idempotent by the caller's id: the same id
/// with the same content is a no-op (200), with other content a conflict (409).
/// </summary>
public sealed class FeedbackRecorder(IFeedbackStore store, IEventPublisher events, TimeProvider time)
{
    private const int MaxListItems = 50;
    private const int MaxItemLength = 500;
    private const int MaxTextLength = 10_000;
    private const int MaxQueryLength = 4_000;

    // Optional request fields added after feedback was first stored (see Fingerprint).
    private static readonly string[] LateFields = ["query", "traceId", "stepId"];

    /// <summary>Records <paramref name="request"/>; returns the stored record and whether it was created.</summary>
    public Task<(FeedbackRecord Record, bool Created)> RecordAsync(string tenantId, RecordFeedbackRequest? request, CancellationToken cancellationToken = default) =>
        RecordAsync(tenantId, request, null, cancellationToken);

    /// <summary>
    /// Records <paramref name="request"/> with <paramref name="stepQuery"/> (the query of the step it
    /// names, found by the caller) as its query when it has none; the idempotency fingerprint is the request's alone.
    /// </summary>
    public async Task<(FeedbackRecord Record, bool Created)> RecordAsync(string tenantId, RecordFeedbackRequest? request, string? stepQuery, CancellationToken cancellationToken = default)
    {
        if (request is null)
        {
            throw new ProblemException(400, "missing-body", "A feedback body is required.");
        }
        var record = await BuildAsync(tenantId, request, cancellationToken);
        if (record.Query is null && stepQuery is not null)
        {
            record = record with { Query = stepQuery.Length > MaxQueryLength ? stepQuery[..MaxQueryLength] : stepQuery };
        }
        var fingerprint = Fingerprint(request with { Id = record.Id });
        var (stored, storedFingerprint, created) = await store.InsertIfAbsentAsync(tenantId, record, fingerprint, cancellationToken);
        if (!created && storedFingerprint != fingerprint)
        {
            throw new ProblemException(409, "feedback-id-conflict", $"Feedback '{record.Id}' exists with different content; use a new id.");
        }
        if (created)
        {
            FeedbackTelemetry.Recorded.Add(1, new KeyValuePair<string, object?>("kind", stored.Kind));
        }
        // Also on a repeat: a retry after a failed publish delivers the event; the deterministic
        // event id lets subscribers drop the duplicate.
        await events.PublishAsync(FeedbackTopics.FeedbackRecorded, FeedbackTopics.FeedbackRecordedType,
            new FeedbackRecorded(tenantId, stored.Id, stored.Target.Type!, stored.Target.Id!, stored.AgentId, stored.ConversationId,
                stored.Kind, stored.Name, stored.Score, stored.Issues, stored.RecordedAt.ToUnixTimeSeconds(), stored.Query),
            new PublishOptions($"feedback-{tenantId}-{stored.Id}", stored.Target.Id, tenantId), cancellationToken);
        return (stored, created);
    }

    /// <summary>The config of <paramref name="name"/> for the tenant: its own, else the built-in one.</summary>
    public async Task<FeedbackConfig?> ResolveConfigAsync(string tenantId, string name, CancellationToken cancellationToken = default) =>
        await store.GetConfigAsync(tenantId, name, cancellationToken) ?? FeedbackConfigs.FindBuiltIn(name);

    private async Task<FeedbackRecord> BuildAsync(string tenantId, RecordFeedbackRequest request, CancellationToken cancellationToken)
    {
        var id = request.Id is null ? "fb-" + Guid.NewGuid().ToString("N") : Ids.Require(request.Id, "id");
        if (request.Target is null)
        {
            throw new ProblemException(400, "missing-target", "'target' {type, id} is required.");
        }
        if (!FeedbackTargetTypes.All.Contains(request.Target.Type ?? ""))
        {
            throw new ProblemException(400, "invalid-target-type", $"'target.type' must be one of {string.Join(", ", FeedbackTargetTypes.All)}.");
        }
        var targetId = Ids.Require(request.Target.Id, "target-id");
        var agentId = request.AgentId is null ? null : Ids.Require(request.AgentId, "agentId");
        if (request.Target.Type == FeedbackTargetTypes.Agent)
        {
            if (agentId is not null && agentId != targetId)
            {
                throw new ProblemException(400, "agent-mismatch", "'agentId' differs from the agent target.");
            }
            agentId = targetId;
        }
        var conversationId = request.ConversationId is null ? null : Ids.Require(request.ConversationId, "conversationId");
        if (request.Target.Type == FeedbackTargetTypes.Conversation)
        {
            if (conversationId is not null && conversationId != targetId)
            {
                throw new ProblemException(400, "conversation-mismatch", "'conversationId' differs from the conversation target.");
            }
            conversationId = targetId;
        }
        if (!FeedbackKinds.All.Contains(request.Kind ?? ""))
        {
            throw new ProblemException(400, "invalid-kind", $"'kind' must be one of {string.Join(", ", FeedbackKinds.All)}.");
        }
        var name = Ids.Require(request.Name, "name");
        var config = await ResolveConfigAsync(tenantId, name, cancellationToken)
            ?? throw new ProblemException(400, "unknown-feedback-name", $"No feedback config named '{name}'; define it with PUT /v1/feedback/configs/{name}.");
        if (request.Value.ValueKind == JsonValueKind.Undefined)
        {
            throw new ProblemException(400, "missing-value", "'value' is required.");
        }
        var score = FeedbackConfigs.Score(config, request.Value);
        var stepType = request.StepType is null ? null : Ids.Require(request.StepType, "stepType");
        var metrics = request.Metrics ?? new Dictionary<string, double>();
        if (metrics.Count > MaxListItems || metrics.Any(m => !Ids.IsValid(m.Key) || !double.IsFinite(m.Value)))
        {
            throw new ProblemException(400, "invalid-metrics", $"'metrics' holds at most {MaxListItems} finite numbers under id-like names.");
        }
        var query = request.Query is null ? null
            : string.IsNullOrWhiteSpace(request.Query) || request.Query.Length > MaxQueryLength
                ? throw new ProblemException(400, "invalid-query", $"'query' must be non-empty text of at most {MaxQueryLength} characters.")
                : request.Query;
        var traceId = request.TraceId is null ? null : Ids.Require(request.TraceId, "traceId");
        var stepId = request.StepId is null ? null : Ids.Require(request.StepId, "stepId");
        if (stepId is not null && traceId is null)
        {
            throw new ProblemException(400, "missing-trace-id", "'stepId' names a step of a trace: 'traceId' is required with it.");
        }
        var now = time.GetUtcNow();
        return new FeedbackRecord(id, new FeedbackTarget(request.Target.Type, targetId), agentId, conversationId, stepType,
            request.Kind!, name, request.Value.Clone(), score,
            Text(request.Comment, "comment"), List(request.Issues, "issues"), List(request.Suggestions, "suggestions"), Text(request.Correction, "correction"),
            metrics, request.CreatedAt ?? now, now, query, traceId, stepId);
    }

    private static IReadOnlyList<string> List(IReadOnlyList<string>? items, string field)
    {
        if (items is null)
        {
            return [];
        }
        if (items.Count > MaxListItems || items.Any(i => string.IsNullOrWhiteSpace(i) || i.Length > MaxItemLength))
        {
            throw new ProblemException(400, $"invalid-{field}", $"'{field}' holds at most {MaxListItems} non-empty strings of at most {MaxItemLength} characters.");
        }
        return items.Select(i => i.Trim()).ToList();
    }

    private static string? Text(string? text, string field) =>
        text is { Length: > MaxTextLength } ? throw new ProblemException(400, $"invalid-{field}", $"'{field}' is longer than {MaxTextLength} characters.") : text;

    // The optional fields added later leave the fingerprint of a request without them as it was, so
    // a retry of feedback stored before them is still recognized.
    private static string Fingerprint(RecordFeedbackRequest request)
    {
        var json = JsonSerializer.SerializeToNode(request, ContractsJson.Options)!.AsObject();
        foreach (var late in LateFields)
        {
            if (json[late] is null)
            {
                json.Remove(late);
            }
        }
        return Convert.ToHexString(SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(json, ContractsJson.Options)));
    }

}
