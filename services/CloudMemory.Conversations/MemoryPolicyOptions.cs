namespace CloudMemory.Conversations;

/// <summary>Defaults of the token policy (section <c>CloudMemory:Memory</c>), seed 002 values.</summary>
public sealed class MemoryPolicyOptions
{
    /// <summary>Configuration section.</summary>
    public const string SectionName = "CloudMemory:Memory";

    /// <summary>Checkpoint when tokens / window reaches this ratio.</summary>
    public double TokenThresholdRatio { get; set; } = 0.75;

    /// <summary>Turns kept verbatim after a checkpoint.</summary>
    public int RecentTurns { get; set; } = 8;

    /// <summary>The model's context window in tokens.</summary>
    public int ModelContextWindow { get; set; } = 16000;

    /// <summary>Seed 6.1: pick threshold and window by model size and turn count unless the request says otherwise.</summary>
    public bool DynamicThresholds { get; set; }

    /// <summary>Checkpoint automatically (in the background) when a turn crosses the threshold.</summary>
    public bool AutoCheckpoint { get; set; } = true;

    /// <summary>Share of the context budget (ratio × window) a checkpoint summary may take.</summary>
    public double SummaryShare { get; set; } = 0.25;

    /// <summary>
    /// Share of the context budget a checkpoint (summary + the turns it keeps) may take, so that
    /// after it the history is well below the threshold and the next checkpoint waits for the
    /// next crossing.
    /// </summary>
    public double CheckpointShare { get; set; } = 0.5;

    /// <summary>
    /// How each message is counted when it is written (<see cref="Text.TokenCounters"/>):
    /// <c>o200k_base</c> (default), <c>cl100k_base</c>, or <c>estimate</c> (no vocabulary).
    /// Counts are stored with the messages, so changing it applies to messages written afterwards.
    /// </summary>
    public string Tokenizer { get; set; } = Text.TokenCounters.O200kBase;
}

/// <summary>The effective threshold, recent turns and window of one decision.</summary>
public sealed record MemoryPolicy(double TokenThresholdRatio, int RecentTurns, int ModelContextWindow)
{
    /// <summary>Share of the budget a summary may take.</summary>
    public double SummaryShare { get; init; } = 0.25;

    /// <summary>Share of the budget a checkpoint may take.</summary>
    public double CheckpointShare { get; init; } = 0.5;

    /// <summary>The context budget in tokens: what the returned context always fits in.</summary>
    public int BudgetTokens => Math.Max(1, (int)Math.Floor(TokenThresholdRatio * ModelContextWindow));

    /// <summary>Largest checkpoint summary in tokens.</summary>
    public int SummaryTokens => SummaryTokensOf(BudgetTokens);

    /// <summary>Largest checkpoint (summary + kept turns) in tokens.</summary>
    public int CheckpointTokens => Math.Max(1, (int)Math.Floor(CheckpointShare * BudgetTokens));

    /// <summary>The summary budget within a context budget of <paramref name="budgetTokens"/>.</summary>
    public int SummaryTokensOf(int budgetTokens) => Math.Max(1, (int)Math.Floor(SummaryShare * budgetTokens));

    /// <summary>
    /// Request overrides win; otherwise configured defaults, adjusted by the dynamic policy when it
    /// is on: small models (≤ 4k) checkpoint earlier with fewer turns, large ones (≥ 32k) later
    /// with more (seed 6.1.1); early turns use a lower ratio, long conversations a higher one (6.1.2).
    /// </summary>
    public static MemoryPolicy Resolve(MemoryPolicyOptions options, int turnCount, double? ratio = null, int? recentTurns = null, int? window = null)
    {
        var effectiveWindow = window ?? options.ModelContextWindow;
        var effectiveRatio = options.TokenThresholdRatio;
        var effectiveTurns = options.RecentTurns;
        if (options.DynamicThresholds)
        {
            (effectiveRatio, effectiveTurns) = effectiveWindow switch
            {
                <= 4096 => (0.6, 5),
                >= 32000 => (0.85, 12),
                _ => (effectiveRatio, effectiveTurns),
            };
            if (effectiveWindow is > 4096 and < 32000)
            {
                effectiveRatio = turnCount switch
                {
                    < 5 => 0.6,
                    < 20 => 0.75,
                    _ => 0.85,
                };
            }
        }
        return new MemoryPolicy(ratio ?? effectiveRatio, recentTurns ?? effectiveTurns, effectiveWindow)
        {
            SummaryShare = options.SummaryShare,
            CheckpointShare = options.CheckpointShare,
        };
    }
}
