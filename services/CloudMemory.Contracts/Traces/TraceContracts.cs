using System.Text.Json;

namespace CloudMemory.Contracts.Traces;

/// <summary>The kinds of step a trace records (wire values are lower case).</summary>
public static class StepTypes
{
    /// <summary>A model call.</summary>
    public const string Llm = "llm";

    /// <summary>A tool call.</summary>
    public const string Tool = "tool";

    /// <summary>A search or retrieval.</summary>
    public const string Retrieval = "retrieval";

    /// <summary>A memory read or write.</summary>
    public const string Memory = "memory";

    /// <summary>A choice between alternatives.</summary>
    public const string Decision = "decision";

    /// <summary>Work handed to another agent.</summary>
    public const string Handoff = "handoff";

    /// <summary>A planning step.</summary>
    public const string Plan = "plan";

    /// <summary>Anything else.</summary>
    public const string Custom = "custom";

    /// <summary>Every valid step type.</summary>
    public static IReadOnlySet<string> All { get; } = new HashSet<string>(StringComparer.Ordinal) { Llm, Tool, Retrieval, Memory, Decision, Handoff, Plan, Custom };
}

/// <summary>Why a step failed.</summary>
/// <param name="Type">Stable error type (e.g. <c>timeout</c>, an exception type).</param>
/// <param name="Message">Human-readable message.</param>
public sealed record StepError(string Type, string? Message = null);

/// <summary>Token usage of a step.</summary>
/// <param name="InputTokens">Prompt tokens.</param>
/// <param name="OutputTokens">Completion tokens.</param>
public sealed record TokenUsage(long InputTokens = 0, long OutputTokens = 0)
{
    /// <summary>Input plus output.</summary>
    public long TotalTokens => InputTokens + OutputTokens;
}

/// <summary>
/// One step of an agent execution as a writer sends it. Only <see cref="TraceId"/> and
/// <see cref="StepIndex"/> are required; <see cref="StepId"/> defaults to <c>s{stepIndex}</c>, so a
/// retried batch is idempotent either way.
/// </summary>
public sealed record TraceStepInput
{
    /// <summary>The trace (one task execution).</summary>
    public string? TraceId { get; init; }

    /// <summary>Unique within the trace; the idempotency key with the tenant and trace.</summary>
    public string? StepId { get; init; }

    /// <summary>Position in the trace (0-based).</summary>
    public int? StepIndex { get; init; }

    /// <summary>The conversation the step belongs to.</summary>
    public string? ContextId { get; init; }

    /// <summary>The agent that ran the step (default: <c>X-Agent-Id</c>, else <c>unknown</c>).</summary>
    public string? AgentId { get; init; }

    /// <summary>The enclosing step.</summary>
    public string? ParentStepId { get; init; }

    /// <summary>One of <see cref="StepTypes"/> (default custom).</summary>
    public string? StepType { get; init; }

    /// <summary>Model, tool or operation name (default: the step type).</summary>
    public string? Name { get; init; }

    /// <summary>What went in.</summary>
    public JsonElement? Inputs { get; init; }

    /// <summary>What came out.</summary>
    public JsonElement? Outputs { get; init; }

    /// <summary>Start time (default: when received).</summary>
    public DateTimeOffset? StartedAt { get; init; }

    /// <summary>Wall-clock duration in milliseconds.</summary>
    public double? DurationMs { get; init; }

    /// <summary>Whether the step succeeded (default: true unless <see cref="Error"/> is set).</summary>
    public bool? Success { get; init; }

    /// <summary>The failure, if any.</summary>
    public StepError? Error { get; init; }

    /// <summary>Token usage.</summary>
    public TokenUsage? Usage { get; init; }

    /// <summary>Cost in US dollars.</summary>
    public double? Cost { get; init; }

    /// <summary>Free tags.</summary>
    public IReadOnlyList<string>? Tags { get; init; }

    /// <summary>The step this one retries.</summary>
    public string? RetryOf { get; init; }

    /// <summary>The step (usually of another agent) that spawned this one.</summary>
    public string? SpawnedBy { get; init; }

    /// <summary>The agent this step delegated work to.</summary>
    public string? DelegatedTo { get; init; }

    /// <summary>Memory entries (checkpoints, long-term memories, shared-state keys) this step produced.</summary>
    public IReadOnlyList<string>? MemoryIds { get; init; }

    /// <summary>Other attributes (e.g. unmapped OpenTelemetry attributes).</summary>
    public JsonElement? Metadata { get; init; }
}

/// <summary>Audit of one step, computed at ingest.</summary>
/// <param name="Sensitivity">Categories found: <c>pii</c>, <c>medical</c>.</param>
/// <param name="Kinds">Finer kinds: <c>email</c>, <c>phone</c>, <c>id_number</c>, <c>payment_card</c>, <c>condition</c>, <c>drug</c>, <c>allergy</c>.</param>
/// <param name="Findings">Where each kind was found (never the value).</param>
/// <param name="Redacted">Kinds replaced before storage.</param>
/// <param name="ComplianceTags">E.g. <c>gdpr:personal-data</c>, <c>hipaa:phi</c>.</param>
/// <param name="Status"><c>compliant</c>, <c>redacted</c> or <c>violation</c>.</param>
/// <param name="Violations">The rules violated.</param>
public sealed record StepAudit(
    IReadOnlyList<string> Sensitivity,
    IReadOnlyList<string> Kinds,
    IReadOnlyList<AuditFinding> Findings,
    IReadOnlyList<string> Redacted,
    IReadOnlyList<string> ComplianceTags,
    string Status,
    IReadOnlyList<string> Violations);

/// <summary>One sensitive value found at ingest.</summary>
/// <param name="Kind">What was found.</param>
/// <param name="Path">Where, e.g. <c>inputs.messages[0].content</c>.</param>
/// <param name="Count">How many occurrences at that path.</param>
public sealed record AuditFinding(string Kind, string Path, int Count);

/// <summary>A stored step: the writer's fields, normalised, plus what the service computed at ingest.</summary>
public sealed record TraceStep
{
    /// <summary>Trace id.</summary>
    public required string TraceId { get; init; }

    /// <summary>Step id (unique in the trace).</summary>
    public required string StepId { get; init; }

    /// <summary>Position in the trace.</summary>
    public required int StepIndex { get; init; }

    /// <summary>Conversation.</summary>
    public string? ContextId { get; init; }

    /// <summary>Agent.</summary>
    public required string AgentId { get; init; }

    /// <summary>Enclosing step.</summary>
    public string? ParentStepId { get; init; }

    /// <summary>Step type.</summary>
    public required string StepType { get; init; }

    /// <summary>Name.</summary>
    public required string Name { get; init; }

    /// <summary>Inputs (after redaction).</summary>
    public JsonElement? Inputs { get; init; }

    /// <summary>Outputs (after redaction).</summary>
    public JsonElement? Outputs { get; init; }

    /// <summary>Start.</summary>
    public required DateTimeOffset StartedAt { get; init; }

    /// <summary>Duration in ms.</summary>
    public required double DurationMs { get; init; }

    /// <summary>Success.</summary>
    public required bool Success { get; init; }

    /// <summary>Failure.</summary>
    public StepError? Error { get; init; }

    /// <summary>Tokens.</summary>
    public TokenUsage? Usage { get; init; }

    /// <summary>Cost (USD).</summary>
    public double Cost { get; init; }

    /// <summary>Tags.</summary>
    public IReadOnlyList<string> Tags { get; init; } = [];

    /// <summary>Retried step.</summary>
    public string? RetryOf { get; init; }

    /// <summary>Spawning step.</summary>
    public string? SpawnedBy { get; init; }

    /// <summary>Delegated-to agent.</summary>
    public string? DelegatedTo { get; init; }

    /// <summary>Memory entries produced.</summary>
    public IReadOnlyList<string> MemoryIds { get; init; } = [];

    /// <summary>Other attributes.</summary>
    public JsonElement? Metadata { get; init; }

    /// <summary>SHA-256 of the canonical inputs as received (before redaction), for diffs.</summary>
    public required string InputHash { get; init; }

    /// <summary>SHA-256 of the canonical outputs as received.</summary>
    public required string OutputHash { get; init; }

    /// <summary>Audit at ingest.</summary>
    public required StepAudit Audit { get; init; }

    /// <summary>When the service stored it.</summary>
    public required DateTimeOffset RecordedAt { get; init; }

    /// <summary>End time.</summary>
    public DateTimeOffset EndedAt => StartedAt.AddMilliseconds(DurationMs);
}

/// <summary>Body of <c>POST /v1/traces/steps</c>.</summary>
/// <param name="Steps">1..n steps.</param>
public sealed record IngestStepsRequest(IReadOnlyList<TraceStepInput>? Steps);

/// <summary>Answer of <c>POST /v1/traces/steps</c> (202): every step is durable.</summary>
/// <param name="Accepted">Steps of the request now durable (new and already stored).</param>
/// <param name="Inserted">Steps stored by this request.</param>
/// <param name="Duplicates">Steps already stored (idempotent retries).</param>
public sealed record IngestStepsResult(int Accepted, int Inserted, int Duplicates);

/// <summary>The <c>trace-compliance-alert</c> event payload.</summary>
public sealed record TraceComplianceAlert(string TenantId, string TraceId, string StepId, int StepIndex, string AgentId, string? ContextId,
    IReadOnlyList<string> Sensitivity, IReadOnlyList<string> Kinds, IReadOnlyList<string> Violations, string Status, long OccurredAt);

/// <summary>Topics and event types of the trace service.</summary>
public static class TraceEvents
{
    /// <summary>Topic of compliance alerts.</summary>
    public const string ComplianceAlertTopic = "trace-compliance-alert";

    /// <summary>CloudEvent type of compliance alerts.</summary>
    public const string ComplianceAlertType = "cloudmemory.trace.compliance-alert.v1";
}
