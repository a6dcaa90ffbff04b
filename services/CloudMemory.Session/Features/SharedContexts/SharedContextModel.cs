using System.Text.Json;
using System.Text.Json.Serialization;

namespace CloudMemory.Session.Features.SharedContexts;

/// <summary>Names used on the wire: roles, join policies, modes, conflict policies, statuses.</summary>
public static class Shared
{
    /// <summary>Member roles, weakest first.</summary>
    public static readonly string[] Roles = ["read", "write", "admin"];

    /// <summary>Who may join: agents listed in the policy, any agent of the tenant, or only invited agents.</summary>
    public static readonly string[] JoinPolicies = ["listed", "tenant", "invitation"];

    /// <summary>Collaboration modes: <c>open</c> (writers write) and the four enforced protocols.</summary>
    public static readonly string[] Modes = ["open", "sequential", "parallel", "hierarchical", "democratic"];

    /// <summary>Per-field conflict policies.</summary>
    public static readonly string[] ConflictPolicies = ["reject", "last-writer-wins", "append", "counter", "set-union", "max", "min", "map-merge"];

    /// <summary>Rank of a role (read 0, write 1, admin 2; -1 when unknown).</summary>
    public static int Rank(string? role) => Array.IndexOf(Roles, role);
}

/// <summary>
/// One shared context as stored (one state key): header, members, fields, and the state of its
/// collaboration protocol. Only <see cref="SharedContextActor"/> writes it.
/// </summary>
public sealed class SharedContextDocument
{
    /// <summary>The shared context id.</summary>
    public string Id { get; set; } = "";

    /// <summary>Tenant.</summary>
    public string TenantId { get; set; } = "";

    /// <summary>The agent that created it (an admin).</summary>
    public string Owner { get; set; } = "";

    /// <summary>Collaboration mode (see <see cref="Shared.Modes"/>).</summary>
    public string Mode { get; set; } = "open";

    /// <summary>Who may join.</summary>
    public SharingPolicy Policy { get; set; } = new();

    /// <summary><c>open</c> or <c>closed</c>.</summary>
    public string Status { get; set; } = "open";

    /// <summary>Version of the fields document (incremented by every accepted change of a field).</summary>
    public long Version { get; set; }

    /// <summary>Sequence number of the last entry of the change log (every accepted change, of fields or membership).</summary>
    public long Seq { get; set; }

    /// <summary>Unix seconds.</summary>
    public long CreatedAt { get; set; }

    /// <summary>Unix seconds.</summary>
    public long UpdatedAt { get; set; }

    /// <summary>The fields document.</summary>
    public Dictionary<string, SharedField> Fields { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Members, including invited ones not yet joined.</summary>
    public List<SharedMember> Members { get; set; } = [];

    /// <summary>The conversation and trace this context belongs to, if any.</summary>
    public SharedLinks Links { get; set; } = new();

    /// <summary>Sequential mode: the order the turn token passes in.</summary>
    public List<string> TurnOrder { get; set; } = [];

    /// <summary>Sequential mode: the agent holding the turn token.</summary>
    public string? TurnHolder { get; set; }

    /// <summary>Hierarchical mode: the lead who approves proposals.</summary>
    public string? Lead { get; set; }

    /// <summary>Democratic mode: quorum and default deadline.</summary>
    public VotingRules Voting { get; set; } = new();

    /// <summary>Parallel mode: field claims (expired ones are ignored and pruned).</summary>
    public List<FieldClaim> Claims { get; set; } = [];

    /// <summary>Proposals (hierarchical and democratic modes): pending ones and the most recent decided ones.</summary>
    public List<Proposal> Proposals { get; set; } = [];

    /// <summary>Recently applied client change ids (idempotent retries of PATCH).</summary>
    public List<AppliedChange> Recent { get; set; } = [];

    /// <summary>Hash of the create request (an identical retry of create answers with the existing context).</summary>
    public string CreateHash { get; set; } = "";

    /// <summary>The active member <paramref name="agentId"/>, if any.</summary>
    public SharedMember? ActiveMember(string agentId) => Members.Find(m => m.AgentId == agentId && m.Status == "active");
}

/// <summary>Join policy.</summary>
public sealed class SharingPolicy
{
    /// <summary><c>listed</c>, <c>tenant</c> or <c>invitation</c>.</summary>
    public string Join { get; set; } = "listed";

    /// <summary><c>listed</c>: the agents that may join by themselves.</summary>
    public List<string> Agents { get; set; } = [];

    /// <summary>Highest role an agent may take by joining by itself (<c>read</c> or <c>write</c>).</summary>
    public string MaxJoinRole { get; set; } = "write";
}

/// <summary>A member.</summary>
public sealed class SharedMember
{
    /// <summary>Agent id.</summary>
    public string AgentId { get; set; } = "";

    /// <summary><c>read</c>, <c>write</c> or <c>admin</c>.</summary>
    public string Role { get; set; } = "read";

    /// <summary>Per-field write grants: when set, a writer may write only these fields.</summary>
    public List<string>? Fields { get; set; }

    /// <summary><c>active</c> or <c>invited</c> (must join to become active).</summary>
    public string Status { get; set; } = "active";

    /// <summary>Unix seconds.</summary>
    public long Since { get; set; }
}

/// <summary>Links of a shared context.</summary>
public sealed class SharedLinks
{
    /// <summary>The conversation it was created from or belongs to.</summary>
    public string? ConversationId { get; set; }

    /// <summary>The trace it belongs to.</summary>
    public string? TraceId { get; set; }
}

/// <summary>Democratic mode rules.</summary>
public sealed class VotingRules
{
    /// <summary>Share of the voters (active write and admin members) that must vote (0 &lt; quorum ≤ 1).</summary>
    public double Quorum { get; set; } = 0.5;

    /// <summary>Default voting time of a proposal.</summary>
    public int DeadlineSeconds { get; set; } = 300;
}

/// <summary>One field of the document.</summary>
public sealed class SharedField
{
    /// <summary>The current value.</summary>
    public JsonElement Value { get; set; }

    /// <summary>Conflict policy, fixed at creation.</summary>
    public string Conflict { get; set; } = "reject";

    /// <summary>Write guard: a JSON schema subset the value must satisfy.</summary>
    public FieldSchema? Schema { get; set; }

    /// <summary>Only <c>add</c> is allowed (safety-critical lists such as allergies).</summary>
    public bool AppendOnly { get; set; }

    /// <summary>The document version that last changed this field.</summary>
    public long Version { get; set; }

    /// <summary><c>set-union</c>: the add tags (versions) of each element, keyed by its JSON text (an observed-remove set).</summary>
    public Dictionary<string, List<long>>? Tags { get; set; }
}

/// <summary>The JSON schema subset of a write guard.</summary>
public sealed class FieldSchema
{
    /// <summary>string, number, integer, boolean, object, array or null.</summary>
    public string? Type { get; set; }

    /// <summary>Allowed values.</summary>
    public List<JsonElement>? Enum { get; set; }

    /// <summary>Maximum string length.</summary>
    public int? MaxLength { get; set; }

    /// <summary>Maximum array length.</summary>
    public int? MaxItems { get; set; }

    /// <summary>Minimum number.</summary>
    public double? Minimum { get; set; }

    /// <summary>Maximum number.</summary>
    public double? Maximum { get; set; }

    /// <summary>Schema of each array item.</summary>
    public FieldSchema? Items { get; set; }
}

/// <summary>A parallel-mode claim on fields.</summary>
public sealed class FieldClaim
{
    /// <summary>Claim id.</summary>
    public string ClaimId { get; set; } = "";

    /// <summary>Holder.</summary>
    public string AgentId { get; set; } = "";

    /// <summary>Claimed fields.</summary>
    public List<string> Fields { get; set; } = [];

    /// <summary>Unix milliseconds after which the claim no longer counts.</summary>
    public long ExpiresAtMs { get; set; }
}

/// <summary>A proposed change (hierarchical: the lead decides; democratic: the voters decide).</summary>
public sealed class Proposal
{
    /// <summary>Proposal id.</summary>
    public string ProposalId { get; set; } = "";

    /// <summary>The proposing agent.</summary>
    public string Author { get; set; } = "";

    /// <summary>The version the changes were based on.</summary>
    public long BaseVersion { get; set; }

    /// <summary>The changes.</summary>
    public Dictionary<string, FieldChange> Changes { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Trace step of the proposal.</summary>
    public string? StepId { get; set; }

    /// <summary>Trace of <see cref="StepId"/> (null: the context's trace).</summary>
    public string? TraceId { get; set; }

    /// <summary>Unix milliseconds.</summary>
    public long CreatedAtMs { get; set; }

    /// <summary>Unix milliseconds: democratic proposals are decided at the latest then.</summary>
    public long DeadlineMs { get; set; }

    /// <summary><c>pending</c>, <c>applied</c>, <c>rejected</c> or <c>failed</c> (approved but refused by a field's conflict policy or guard).</summary>
    public string Status { get; set; } = "pending";

    /// <summary>Votes by agent (true = approve).</summary>
    public Dictionary<string, bool> Votes { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Why it was rejected or failed.</summary>
    public string? Reason { get; set; }

    /// <summary>Unix milliseconds of the decision.</summary>
    public long? DecidedAtMs { get; set; }

    /// <summary>The version the applied proposal produced.</summary>
    public long? AppliedVersion { get; set; }
}

/// <summary>An applied client change id.</summary>
public sealed record AppliedChange(string ChangeId, long Version, long Seq);

/// <summary>One change of one field in a request: exactly one of the operations.</summary>
public sealed class FieldChange
{
    /// <summary>Replace the value (reject, last-writer-wins, max, min; map-merge merges an object).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public JsonElement Set { get; set; }

    /// <summary>Append (append) or add elements (set-union).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public JsonElement Add { get; set; }

    /// <summary>Remove observed elements (set-union) or keys (map-merge).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public JsonElement Remove { get; set; }

    /// <summary>Add to a counter.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public JsonElement Increment { get; set; }
}

/// <summary>One entry of the ordered change log of a shared context.</summary>
public sealed class SharedContextChange
{
    /// <summary>Per-context sequence number: 1, 2, 3… with no gaps.</summary>
    public long Seq { get; set; }

    /// <summary>The document version after this entry.</summary>
    public long Version { get; set; }

    /// <summary>created, updated, rollback, member-joined, member-invited, member-left, member-removed, role-changed, closed, turn-passed, claimed, claim-released, proposed, voted, proposal-decided.</summary>
    public string Kind { get; set; } = "";

    /// <summary>The agent whose request made the change.</summary>
    public string Author { get; set; } = "";

    /// <summary>Trace step id given with the request (body <c>stepId</c>, else its <c>X-Step-Id</c> or <c>traceparent</c>).</summary>
    public string? StepId { get; set; }

    /// <summary>Trace of <see cref="StepId"/>: the request's, else the context's (trace-linked memory).</summary>
    public string? TraceId { get; set; }

    /// <summary>Unix milliseconds.</summary>
    public long AtMs { get; set; }

    /// <summary>Field changes (before and after), when fields changed.</summary>
    public Dictionary<string, FieldDiff>? Diff { get; set; }

    /// <summary>Details of a membership, turn, claim or proposal entry.</summary>
    public JsonElement? Detail { get; set; }
}

/// <summary>A field's change in the history.</summary>
public sealed record FieldDiff(string Op, JsonElement Before, JsonElement After);
