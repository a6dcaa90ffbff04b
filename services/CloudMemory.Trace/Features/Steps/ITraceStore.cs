using CloudMemory.Contracts.Traces;

namespace CloudMemory.Trace.Features.Steps;

/// <summary>A memory entry (checkpoint, long-term memory, shared-state change) produced by a step, recorded by the service that made it.</summary>
public readonly record struct MemoryLink(string MemoryId, string TraceId, string StepId);

/// <summary>A step with its tenant and the indexed sensitivity bits, as handed to a store.</summary>
public readonly record struct TenantStep(string TenantId, TraceStep Step, int SensitivityFlags);

/// <summary>
/// The raw JSON of a step's inputs, outputs and metadata as stored (empty when absent), for answers
/// that copy them out unparsed. Each was valid JSON when the step was ingested.
/// </summary>
public readonly record struct StepPayloads(ReadOnlyMemory<byte> Inputs, ReadOnlyMemory<byte> Outputs, ReadOnlyMemory<byte> Metadata);

/// <summary>
/// A trace read for its tree view: the steps ordered by step index, and, when the store read them
/// without parsing their payloads (<see cref="TraceStep.Inputs"/>, <see cref="TraceStep.Outputs"/>
/// and <see cref="TraceStep.Metadata"/> null), those payloads raw at the same positions.
/// </summary>
public sealed record TraceRows(IReadOnlyList<TraceStep> Steps, IReadOnlyList<StepPayloads>? Payloads);

/// <summary>
/// Durable trace steps. Appends are idempotent by (tenant, traceId, stepId); every read is scoped to
/// one tenant. Duration statistics per (step type, agent) are kept up to date by appends, so that
/// anomaly thresholds never need a rescan of history.
/// </summary>
public interface ITraceStore
{
    /// <summary>Stores the steps not already stored (one transaction); returns, per position, whether it was new.</summary>
    Task<bool[]> AppendAsync(IReadOnlyList<TenantStep> steps, CancellationToken cancellationToken = default);

    /// <summary>The steps of a trace ordered by step index (empty when unknown).</summary>
    Task<IReadOnlyList<TraceStep>> GetTraceAsync(string tenantId, string traceId, CancellationToken cancellationToken = default);

    /// <summary>The steps of a trace ordered by step index, their payloads possibly left raw (empty when unknown).</summary>
    Task<TraceRows> GetTraceRowsAsync(string tenantId, string traceId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Whether the tenant has the trace, and its conversation: the context id of its first step (by
    /// index) that names one, or null when none does. Reads no step, only that id.
    /// </summary>
    Task<(bool Found, string? ContextId)> GetTraceConversationAsync(string tenantId, string traceId, CancellationToken cancellationToken = default);

    /// <summary>One step of a trace, or null when the tenant has no such step.</summary>
    Task<TraceStep?> GetStepAsync(string tenantId, string traceId, string stepId, CancellationToken cancellationToken = default);

    /// <summary>The highest step index of a trace, or null when it has none.</summary>
    Task<int?> GetMaxStepIndexAsync(string tenantId, string traceId, CancellationToken cancellationToken = default);

    /// <summary>The steps of a conversation, oldest first, the most recent <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<TraceStep>> GetContextStepsAsync(string tenantId, string contextId, int limit, CancellationToken cancellationToken = default);

    /// <summary>The most recent steps of an agent, newest first.</summary>
    Task<IReadOnlyList<TraceStep>> GetAgentStepsAsync(string tenantId, string agentId, int limit, CancellationToken cancellationToken = default);

    /// <summary>Records that steps produced memory entries (idempotent; the step may arrive later).</summary>
    Task LinkMemoriesAsync(string tenantId, IReadOnlyList<MemoryLink> links, CancellationToken cancellationToken = default);

    /// <summary>The steps linked to a memory entry (by their <c>memoryIds</c> or by <see cref="LinkMemoriesAsync"/>), oldest first.</summary>
    Task<IReadOnlyList<TraceStep>> GetMemoryProvenanceAsync(string tenantId, string memoryId, CancellationToken cancellationToken = default);

    /// <summary>Steps with sensitive data started in [from, to), oldest first.</summary>
    Task<IReadOnlyList<TraceStep>> GetSensitiveStepsAsync(string tenantId, DateTimeOffset from, DateTimeOffset to, int limit, CancellationToken cancellationToken = default);

    /// <summary>The last successful step of the same signature started before <paramref name="before"/>.</summary>
    Task<TraceStep?> FindLastSuccessAsync(string tenantId, string agentId, string stepType, string name, DateTimeOffset before, CancellationToken cancellationToken = default);

    /// <summary>Duration histograms of the tenant per (step type, agent).</summary>
    Task<IReadOnlyList<DurationStats>> GetDurationStatsAsync(string tenantId, CancellationToken cancellationToken = default);

    /// <summary>Deletes the tenant's steps started before <paramref name="cutoff"/>; returns how many.</summary>
    Task<long> DeleteOlderThanAsync(string tenantId, DateTimeOffset cutoff, CancellationToken cancellationToken = default);

    /// <summary>Deletes the tenant's steps of the conversations <paramref name="contextIds"/> (erasure); returns how many.</summary>
    Task<long> DeleteContextsAsync(string tenantId, IReadOnlyCollection<string> contextIds, CancellationToken cancellationToken = default);
}
