using System.Text.Json;

namespace CloudMemory.Session.Features.SharedContexts;

/// <summary>Pub/sub topic and CloudEvent type of shared-context changes.</summary>
public static class SharedContextTopics
{
    /// <summary>Every accepted change of a shared context, in sequence order per context.</summary>
    public const string Changed = "shared-context-changed";

    /// <summary>CloudEvent type of <see cref="SharedContextChanged"/>.</summary>
    public const string ChangedType = "cloudmemory.shared_context.changed.v1";
}

/// <summary>The event of one accepted change: its seq (contiguous per context), the change, and who may see it.</summary>
public sealed record SharedContextChanged(string TenantId, string ContextId, long Seq, long Version, string Kind, string Author, string? StepId,
    IReadOnlyDictionary<string, FieldDiff>? Diff, JsonElement? Detail, IReadOnlyList<string> Members, long OccurredAtMs, string? TraceId = null);

/// <summary><c>POST /v1/shared-contexts</c>.</summary>
public sealed record CreateSharedContextRequest
{
    /// <summary>Optional id (generated when absent).</summary>
    public string? Id { get; init; }

    /// <summary>open (default), sequential, parallel, hierarchical or democratic.</summary>
    public string? Mode { get; init; }

    /// <summary>Who may join (default: listed, i.e. only the members given and policy.agents).</summary>
    public SharingPolicy? Policy { get; init; }

    /// <summary>Members besides the creator (who is always an admin).</summary>
    public List<MemberSpec>? Members { get; init; }

    /// <summary>Fields and their conflict policies.</summary>
    public Dictionary<string, FieldSpec>? Fields { get; init; }

    /// <summary>Start from this conversation's GlobalState shared entities (each becomes a field).</summary>
    public string? FromConversation { get; init; }

    /// <summary>Conflict policy of the fields taken from the conversation (default last-writer-wins).</summary>
    public string? ConversationFieldConflict { get; init; }

    /// <summary>The trace the collaboration belongs to.</summary>
    public string? TraceId { get; init; }

    /// <summary>Sequential mode: the turn order (default: writers in member order).</summary>
    public List<string>? TurnOrder { get; init; }

    /// <summary>Hierarchical mode: the lead (default: the creator).</summary>
    public string? Lead { get; init; }

    /// <summary>Democratic mode rules.</summary>
    public VotingRules? Voting { get; init; }
}

/// <summary>A member in a request.</summary>
public sealed record MemberSpec(string AgentId, string? Role = null, List<string>? Fields = null);

/// <summary>A field in a create request.</summary>
public sealed record FieldSpec
{
    /// <summary>Initial value.</summary>
    public JsonElement Value { get; init; }

    /// <summary>Conflict policy (default reject).</summary>
    public string? Conflict { get; init; }

    /// <summary>Write guard.</summary>
    public FieldSchema? Schema { get; init; }

    /// <summary>Only additions allowed.</summary>
    public bool AppendOnly { get; init; }
}

/// <summary><c>PATCH /v1/shared-contexts/{id}</c>.</summary>
public sealed record UpdateSharedContextRequest
{
    /// <summary>The version the writer read.</summary>
    public long? BaseVersion { get; init; }

    /// <summary>Changes by field.</summary>
    public Dictionary<string, FieldChange>? Changes { get; init; }

    /// <summary>Trace step that made the change (default: the request's <c>X-Step-Id</c> or <c>traceparent</c>).</summary>
    public string? StepId { get; init; }

    /// <summary>Trace of <see cref="StepId"/> (default: the request's <c>X-Trace-Id</c> or <c>traceparent</c>, else the context's trace).</summary>
    public string? TraceId { get; init; }

    /// <summary>Client id of the change: a retry with the same id is applied once.</summary>
    public string? ChangeId { get; init; }

    /// <summary>Sequential mode: pass the turn token after this change.</summary>
    public bool PassTurn { get; init; }
}

/// <summary>Answer of every accepted change.</summary>
public sealed record SharedContextAck(string Id, long Version, long Seq);

/// <summary><c>PUT /v1/shared-contexts/{id}/members/{agentId}</c>.</summary>
public sealed record ChangeRoleRequest(string? Role, List<string>? Fields = null);

/// <summary><c>POST /v1/shared-contexts/{id}/rollback</c>.</summary>
public sealed record RollbackRequest(long? ToVersion, string? StepId = null, string? TraceId = null);

/// <summary><c>POST /v1/shared-contexts/{id}/claims</c>.</summary>
public sealed record ClaimRequest(List<string>? Fields, int? TtlSeconds = null);

/// <summary>A granted claim.</summary>
public sealed record ClaimReply(string ClaimId, string AgentId, IReadOnlyList<string> Fields, long ExpiresAtMs, long Seq);

/// <summary><c>POST /v1/shared-contexts/{id}/proposals</c>.</summary>
public sealed record ProposalRequest
{
    /// <summary>Optional id: a retry with the same id creates nothing new.</summary>
    public string? ProposalId { get; init; }

    /// <summary>The version the proposal is based on.</summary>
    public long? BaseVersion { get; init; }

    /// <summary>Proposed changes.</summary>
    public Dictionary<string, FieldChange>? Changes { get; init; }

    /// <summary>Democratic mode: voting time (default the context's).</summary>
    public int? DeadlineSeconds { get; init; }

    /// <summary>Trace step (default: the request's <c>X-Step-Id</c> or <c>traceparent</c>).</summary>
    public string? StepId { get; init; }

    /// <summary>Trace of <see cref="StepId"/> (default: the request's, else the context's trace).</summary>
    public string? TraceId { get; init; }
}

/// <summary><c>POST .../proposals/{proposalId}/votes</c>.</summary>
public sealed record VoteRequest(bool? Approve);

/// <summary>A page of the ordered change log.</summary>
public sealed record SharedContextChangePage(string Id, long AfterSeq, long LastSeq, IReadOnlyList<SharedContextChange> Changes);

/// <summary>The shared context as read (<c>GET</c>); with <c>?version=</c> only the fields are of that version.</summary>
public sealed record SharedContextView(
    string Id,
    string Owner,
    string Mode,
    SharingPolicy Policy,
    string Status,
    long Version,
    long Seq,
    IReadOnlyDictionary<string, SharedFieldView> Fields,
    IReadOnlyList<SharedMember> Members,
    SharedLinks Links,
    string? TurnHolder,
    IReadOnlyList<string> TurnOrder,
    string? Lead,
    VotingRules Voting,
    IReadOnlyList<FieldClaim> Claims,
    IReadOnlyList<Proposal> Proposals,
    long CreatedAt,
    long UpdatedAt);

/// <summary>A field as read.</summary>
public sealed record SharedFieldView(JsonElement Value, string Conflict, long Version, FieldSchema? Schema, bool AppendOnly);
