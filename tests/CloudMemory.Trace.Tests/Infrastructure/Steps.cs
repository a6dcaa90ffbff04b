using System.Text.Json;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Traces;

namespace CloudMemory.Trace.Tests.Infrastructure;

/// <summary>Builders of steps for tests.</summary>
public static class Steps
{
    public static readonly DateTimeOffset T0 = new(2026, 11, 1, 9, 0, 0, TimeSpan.Zero);

    public static string NewTenant() => "t-" + Guid.NewGuid().ToString("N")[..12];

    public static string NewTrace() => "tr-" + Guid.NewGuid().ToString("N")[..12];

    public static JsonElement Json(object value) => JsonSerializer.SerializeToElement(value, ContractsJson.Options);

    /// <summary>A step starting <paramref name="startMs"/> after <see cref="T0"/>.</summary>
    public static TraceStepInput Step(string traceId, int index, string type = StepTypes.Llm, string? name = null, string agent = "planner",
        double startMs = -1, double durationMs = 10, string? parent = null, object? inputs = null, object? outputs = null,
        StepError? error = null, string? context = null, long inputTokens = 0, long outputTokens = 0, double cost = 0,
        string? retryOf = null, string? spawnedBy = null, string? delegatedTo = null, IReadOnlyList<string>? memoryIds = null) => new()
    {
        TraceId = traceId,
        StepId = $"s{index}",
        StepIndex = index,
        StepType = type,
        Name = name ?? type,
        AgentId = agent,
        StartedAt = T0.AddMilliseconds(startMs < 0 ? index * 100 : startMs),
        DurationMs = durationMs,
        ParentStepId = parent,
        Inputs = Json(inputs ?? new { n = index }),
        Outputs = Json(outputs ?? new { ok = index }),
        Error = error,
        ContextId = context,
        Usage = inputTokens + outputTokens > 0 ? new TokenUsage(inputTokens, outputTokens) : null,
        Cost = cost,
        RetryOf = retryOf,
        SpawnedBy = spawnedBy,
        DelegatedTo = delegatedTo,
        MemoryIds = memoryIds,
    };

    public static IngestStepsRequest Batch(params TraceStepInput[] steps) => new(steps);
}
