namespace CloudMemory.Trace;

/// <summary>Settings of the trace service (<c>CloudMemory:Trace</c>).</summary>
public sealed class TraceOptions
{
    /// <summary>Configuration section.</summary>
    public const string SectionName = "CloudMemory:Trace";

    /// <summary>
    /// How long an ingest request keeps retrying a failing store before it answers 503 (nothing
    /// acknowledged). Covers a database restart or fail-over.
    /// </summary>
    public TimeSpan AckTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Most steps in one ingest request.</summary>
    public int MaxBatchSteps { get; set; } = 10_000;

    /// <summary>Most bytes of one step's inputs, outputs and metadata (JSON).</summary>
    public int MaxStepBytes { get; set; } = 256 * 1024;

    /// <summary>Most steps in one store write (group commit of concurrent requests).</summary>
    public int MaxWriteSteps { get; set; } = 5_000;

    /// <summary>Concurrent store writers.</summary>
    public int Writers { get; set; } = 2;

    /// <summary>Data-sensitivity rules applied at ingest.</summary>
    public AuditOptions Audit { get; set; } = new();

    /// <summary>Retention by age.</summary>
    public RetentionOptions Retention { get; set; } = new();
}

/// <summary>Data-sensitivity rules (<c>CloudMemory:Trace:Audit</c>). Kinds: email, phone, id_number, condition, drug, allergy.</summary>
public sealed class AuditOptions
{
    /// <summary>Comma-separated kinds replaced by <c>[REDACTED:kind]</c> before storage.</summary>
    public string Redact { get; set; } = "email,phone,id_number";

    /// <summary>Comma-separated kinds that violate policy when stored unredacted (status violation + alert).</summary>
    public string AlertOn { get; set; } = "email,phone,id_number,condition,drug,allergy";

    internal IReadOnlySet<string> RedactKinds => Split(Redact);

    internal IReadOnlySet<string> AlertKinds => Split(AlertOn);

    private static HashSet<string> Split(string list) =>
        new(list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), StringComparer.OrdinalIgnoreCase);
}

/// <summary>Retention by age (<c>CloudMemory:Trace:Retention</c>).</summary>
public sealed class RetentionOptions
{
    /// <summary>Per-tenant retention (age after which steps are deleted); other tenants keep everything or use <c>DELETE /v1/traces?olderThan=</c>.</summary>
    public Dictionary<string, TimeSpan> Tenants { get; set; } = new(StringComparer.Ordinal);

    /// <summary>How often the sweep runs.</summary>
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromHours(1);
}
