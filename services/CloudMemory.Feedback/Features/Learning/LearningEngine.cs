using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.Contracts.Feedback;
using CloudMemory.Feedback.Features.Analysis;
using CloudMemory.Feedback.Features.Feedback;
using Microsoft.Extensions.Options;

namespace CloudMemory.Feedback.Features.Learning;

/// <summary>Input of a learning cycle and of each of its activities; <c>now</c> is fixed when the cycle starts.</summary>
public sealed record LearningCycleInput(string TenantId, string AgentId, string CycleId, DateTimeOffset Now);

/// <summary>What the evaluation of the running trial found (all null when no trial runs).</summary>
public sealed record TrialEvaluation(string? StrategyId, TrialResult? Result, string? Decision);

/// <summary>What the proposal step found and did.</summary>
public sealed record ProposalOutcome(int FeedbackCount, IReadOnlyList<DetectedPattern> Patterns, IReadOnlyList<string> ProposedStrategyIds, string? TrialStrategyId, string Decision, string Summary);

/// <summary>Input of the step that writes the cycle's history record.</summary>
public sealed record RecordCycleInput(LearningCycleInput Cycle, TrialEvaluation Evaluation, ProposalOutcome? Proposal);

/// <summary>
/// The behaviour optimizer and learning engine of seed §5: evaluates the running trial (adopt
/// only with the configured confidence, roll back otherwise), proposes strategies from recent
/// feedback patterns and starts the strongest as a controlled trial, and answers which parameters a
/// conversation should use. Arms are assigned by hashing the conversation id with the strategy id.
/// </summary>
public sealed class LearningEngine(ILearningStore store, FeedbackAnalysisService analysis, IEventPublisher events, IOptions<LearningOptions> options)
{
    /// <summary>Arm of conversations that get the trial's strategy.</summary>
    public const string TreatmentArm = "treatment";

    /// <summary>Arm of conversations that keep the current strategy.</summary>
    public const string ControlArm = "control";

    private LearningOptions Options => options.Value;

    /// <summary>Deterministic arm of <paramref name="conversationId"/> in the trial of <paramref name="strategyId"/>.</summary>
    public static string ArmOf(string strategyId, string conversationId, double treatmentShare)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(strategyId + "\n" + conversationId));
        var unit = BinaryPrimitives.ReadUInt64BigEndian(hash) / (double)ulong.MaxValue;
        return unit < treatmentShare ? TreatmentArm : ControlArm;
    }

    /// <summary>The agent's current strategy; with <paramref name="conversationId"/>, including the trial when that conversation is in its treatment arm.</summary>
    public async Task<AgentStrategy> GetStrategyAsync(string tenantId, string agentId, string? conversationId, CancellationToken cancellationToken = default)
    {
        var strategies = await store.ListStrategiesAsync(tenantId, agentId, cancellationToken);
        var adopted = strategies.Where(s => s.Status == StrategyStatuses.Adopted).ToList();
        var trial = strategies.LastOrDefault(s => s.Status == StrategyStatuses.Trial);
        var parameters = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var strategy in adopted)
        {
            Merge(parameters, strategy.Parameters);
        }
        string? arm = null;
        if (trial is not null && conversationId is not null)
        {
            arm = ArmOf(trial.Id, conversationId, trial.TrialShare);
            if (arm == TreatmentArm)
            {
                Merge(parameters, trial.Parameters);
            }
        }
        return new AgentStrategy(agentId, parameters, arm, adopted, trial, strategies.Where(s => s.Status == StrategyStatuses.Proposed).ToList());
    }

    /// <summary>Measures the running trial and decides it once both arms reach the horizon (or it times out).</summary>
    public async Task<TrialEvaluation> EvaluateTrialAsync(LearningCycleInput input, CancellationToken cancellationToken = default)
    {
        var strategies = await store.ListStrategiesAsync(input.TenantId, input.AgentId, cancellationToken);
        var trial = strategies.LastOrDefault(s => s.Status == StrategyStatuses.Trial);
        if (trial is null)
        {
            return new TrialEvaluation(null, null, null);
        }
        var result = await MeasureAsync(input, trial, cancellationToken);
        if (result.Decision == CycleDecisions.TrialContinues)
        {
            return new TrialEvaluation(trial.Id, result, result.Decision);
        }
        var decided = trial with
        {
            Status = result.Decision == CycleDecisions.Adopted ? StrategyStatuses.Adopted : StrategyStatuses.Rejected,
            DecidedAt = input.Now,
            Result = result,
        };
        if (decided.Status == StrategyStatuses.Adopted)
        {
            foreach (var older in strategies.Where(s => s.Status == StrategyStatuses.Adopted && s.Type == trial.Type))
            {
                await ChangeAsync(input, older, older with { Status = StrategyStatuses.Superseded, DecidedAt = input.Now }, cancellationToken);
            }
        }
        await ChangeAsync(input, trial, decided, cancellationToken);
        return new TrialEvaluation(trial.Id, result, result.Decision);
    }

    /// <summary>Analyzes recent feedback, stores proposals and starts the strongest as a trial.</summary>
    public async Task<ProposalOutcome> ProposeAsync(LearningCycleInput input, CancellationToken cancellationToken = default)
    {
        var strategies = await store.ListStrategiesAsync(input.TenantId, input.AgentId, cancellationToken);
        if (strategies.FirstOrDefault(s => s.Status == StrategyStatuses.Trial) is { } running)
        {
            // A retried step after the trial started: report it, start nothing new.
            return new ProposalOutcome(0, [], [], running.Id, running.CycleId == input.CycleId ? CycleDecisions.TrialStarted : CycleDecisions.TrialContinues,
                $"trial {running.Id} is running");
        }
        var report = await analysis.AnalyzeAsync(input.TenantId, input.AgentId, null, input.Now - Options.Lookback, input.Now, TimeSpan.FromDays(1), cancellationToken);
        var candidates = Candidates(input, report)
            .Where(c => !strategies.Any(s => s.Type == c.Type && s.Status == StrategyStatuses.Adopted && SameParameters(s.Parameters, c.Parameters)))
            .Where(c => !strategies.Any(s => s.Type == c.Type && s.Status == StrategyStatuses.Rejected && s.DecidedAt > input.Now - Options.RejectionCooldown))
            .OrderByDescending(c => c.Evidence.Share).ThenBy(c => c.Type, StringComparer.Ordinal)
            .ToList();
        foreach (var stale in strategies.Where(s => s.Status == StrategyStatuses.Proposed && s.CycleId != input.CycleId))
        {
            await ChangeAsync(input, stale, stale with { Status = StrategyStatuses.Superseded, DecidedAt = input.Now }, cancellationToken);
        }
        if (candidates.Count == 0)
        {
            return new ProposalOutcome(report.FeedbackCount, report.Patterns, [], null, CycleDecisions.NoOpportunity,
                $"{report.FeedbackCount} feedback records; no pattern calls for a new strategy");
        }
        var trial = candidates[0] with { Status = StrategyStatuses.Trial, TrialStartedAt = input.Now };
        await ChangeAsync(input, null, trial, cancellationToken);
        foreach (var proposal in candidates.Skip(1))
        {
            await ChangeAsync(input, null, proposal, cancellationToken);
        }
        return new ProposalOutcome(report.FeedbackCount, report.Patterns, candidates.Select(c => c.Id).ToList(), trial.Id, CycleDecisions.TrialStarted,
            $"trial of {trial.Type} ({FormatParameters(trial.Parameters)}) on {trial.TrialShare:P0} of conversations: {trial.Evidence.Reason}");
    }

    /// <summary>Writes the cycle's history record (idempotent by cycle id).</summary>
    public async Task<LearningCycle> RecordAsync(RecordCycleInput input, DateTimeOffset completedAt, CancellationToken cancellationToken = default)
    {
        var decisions = new List<string>();
        var summary = new List<string>();
        if (input.Evaluation.Decision is { } evaluated)
        {
            decisions.Add(evaluated);
            summary.Add($"{input.Evaluation.StrategyId}: {input.Evaluation.Result!.Reason}");
        }
        if (input.Proposal is { } proposal)
        {
            decisions.Add(proposal.Decision);
            summary.Add(proposal.Summary);
        }
        var cycle = new LearningCycle(input.Cycle.CycleId, input.Cycle.AgentId, input.Cycle.Now, completedAt,
            input.Proposal?.FeedbackCount ?? 0, input.Proposal?.Patterns ?? [], input.Proposal?.ProposedStrategyIds ?? [],
            input.Proposal?.TrialStrategyId ?? input.Evaluation.StrategyId, input.Evaluation.Result, decisions, string.Join(" | ", summary));
        var stored = await store.InsertCycleAsync(input.Cycle.TenantId, cycle, cancellationToken);
        foreach (var decision in decisions)
        {
            FeedbackTelemetry.Cycles.Add(1, new KeyValuePair<string, object?>("decision", decision));
        }
        return stored;
    }

    private async Task<TrialResult> MeasureAsync(LearningCycleInput input, Strategy trial, CancellationToken cancellationToken)
    {
        var (records, _) = await analysis.LoadAsync(input.TenantId,
            new FeedbackQuery(AgentId: input.AgentId, Name: Options.Metric, Since: trial.TrialStartedAt, Until: input.Now), null, cancellationToken);
        var byConversation = records.Where(r => r.ConversationId is not null && r.Score is not null)
            .GroupBy(r => r.ConversationId!, StringComparer.Ordinal)
            .Select(g => (Arm: ArmOf(trial.Id, g.Key, trial.TrialShare), Score: g.Average(r => r.Score!.Value)))
            .ToList();
        var control = Arm(byConversation.Where(c => c.Arm == ControlArm).Select(c => c.Score > 0));
        var treatment = Arm(byConversation.Where(c => c.Arm == TreatmentArm).Select(c => c.Score > 0));
        var alpha = Options.Alpha;
        // The decision is one test at the horizon. Fisher's exact test holds alpha for any arm sizes
        // by construction; Mann-Whitney compares the conversations' mean scores when the metric is
        // graded rather than satisfied/not. z is reported either way.
        var (z, _) = Statistics.TwoProportionZTest(control.Successes, control.Conversations, treatment.Successes, treatment.Conversations);
        var mannWhitney = Options.Test == LearningOptions.MannWhitneyTest;
        var p = mannWhitney
            ? Statistics.MannWhitneyGreater(byConversation.Where(c => c.Arm == ControlArm).Select(c => c.Score).ToList(),
                byConversation.Where(c => c.Arm == TreatmentArm).Select(c => c.Score).ToList()).PValue
            : Statistics.OneSidedProportionTest(control.Successes, control.Conversations, treatment.Successes, treatment.Conversations);
        var testName = mannWhitney ? "mann-whitney-u (one-sided)" : "fisher-exact (one-sided)";
        var confidence = 1 - 2 * alpha;
        var (low, high) = Statistics.DifferenceInterval(control.Successes, control.Conversations, treatment.Successes, treatment.Conversations, confidence);
        var lift = treatment.Rate - control.Rate;
        var horizon = Options.MinConversationsPerArm;
        string decision, reason;
        if (Math.Min(control.Conversations, treatment.Conversations) < horizon)
        {
            var timedOut = trial.TrialStartedAt is { } started && input.Now - started >= Options.MaxTrialDuration;
            decision = timedOut ? CycleDecisions.Rejected : CycleDecisions.TrialContinues;
            reason = timedOut
                ? $"rolled back: only {control.Conversations} control / {treatment.Conversations} treatment conversations after {Options.MaxTrialDuration.TotalDays:0.#} days (needs {horizon} each)"
                : $"collecting: {control.Conversations} control / {treatment.Conversations} treatment conversations of {horizon} each";
        }
        else if (p < alpha)
        {
            decision = CycleDecisions.Adopted;
            reason = $"adopted: satisfaction {treatment.Rate:P1} vs {control.Rate:P1} (lift {lift:+0.0%;-0.0%}, {confidence:P0} CI [{low:+0.0%;-0.0%}, {high:+0.0%;-0.0%}]), one-sided p = {p:0.####} < alpha {alpha}";
        }
        else
        {
            decision = CycleDecisions.Rejected;
            reason = $"rolled back: satisfaction {treatment.Rate:P1} vs {control.Rate:P1} (lift {lift:+0.0%;-0.0%}), one-sided p = {p:0.####} >= alpha {alpha}";
        }
        return new TrialResult(Options.Metric, testName, control, treatment, Math.Round(lift, 4), Math.Round(low, 4), Math.Round(high, 4),
            confidence, Math.Round(z, 4), Math.Round(p, 6), alpha, decision, reason);
    }

    private static ArmResult Arm(IEnumerable<bool> outcomes)
    {
        var list = outcomes.ToList();
        var successes = list.Count(o => o);
        return new ArmResult(list.Count, successes, list.Count == 0 ? 0 : Math.Round((double)successes / list.Count, 4));
    }

    private IEnumerable<Strategy> Candidates(LearningCycleInput input, FeedbackAnalysis report)
    {
        Strategy Make(DetectedPattern pattern, string type, string action, Dictionary<string, double> parameters) =>
            new(StrategyId(input, type), input.AgentId, type, action, parameters,
                new StrategyEvidence(pattern.Name, pattern.Evidence, pattern.Share, report.FeedbackCount, pattern.Reason),
                StrategyStatuses.Proposed, Options.TrialShare, input.CycleId, input.Now);
        foreach (var pattern in report.Patterns.Where(p => p.Detected))
        {
            switch (pattern.Name)
            {
                case FeedbackAnalyzer.ResponseTooLong:
                    yield return Make(pattern, StrategyTypes.ResponseLength, "limit_response_length",
                        new() { ["maxLength"] = report.PreferredLength ?? Options.DefaultMaxLength });
                    break;
                case FeedbackAnalyzer.AccuracyIssues:
                    yield return Make(pattern, StrategyTypes.AccuracyVerification, "enhance_verification_steps", new() { ["verificationThreshold"] = 0.9 });
                    // Keeping more of the conversation verbatim is CloudMemory's own lever against mistakes.
                    yield return Make(pattern with { Share = pattern.Share * 0.5 }, StrategyTypes.SummaryParameters, "keep_more_context",
                        new() { ["recentTurns"] = 8, ["tokenThresholdRatio"] = 0.85 });
                    break;
                case FeedbackAnalyzer.SpeedConcerns:
                    yield return Make(pattern, StrategyTypes.ToolSpeed, "optimize_tool_selection", new() { ["preferFastTools"] = 1 });
                    break;
            }
        }
    }

    private async Task ChangeAsync(LearningCycleInput input, Strategy? before, Strategy after, CancellationToken cancellationToken)
    {
        await store.UpsertStrategyAsync(input.TenantId, after, cancellationToken);
        if (before?.Status == after.Status)
        {
            return;
        }
        await events.PublishAsync(FeedbackTopics.StrategyChanged, FeedbackTopics.StrategyChangedType,
            new StrategyChanged(input.TenantId, after.AgentId, after.Id, after.Type, after.Status, before?.Status, after.Parameters, input.CycleId, input.Now.ToUnixTimeSeconds()),
            new PublishOptions($"strategy-{input.TenantId}-{after.Id}-{after.Status}", after.AgentId, input.TenantId), cancellationToken);
    }

    private static string StrategyId(LearningCycleInput input, string type) =>
        "str-" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes($"{input.TenantId}\n{input.AgentId}\n{input.CycleId}\n{type}")), 0, 10).ToLowerInvariant();

    private static void Merge(Dictionary<string, double> into, IReadOnlyDictionary<string, double> from)
    {
        foreach (var (key, value) in from)
        {
            into[key] = value;
        }
    }

    private static bool SameParameters(IReadOnlyDictionary<string, double> a, IReadOnlyDictionary<string, double> b) =>
        a.Count == b.Count && a.All(p => b.TryGetValue(p.Key, out var v) && Math.Abs(v - p.Value) < 1e-9);

    private static string FormatParameters(IReadOnlyDictionary<string, double> parameters) =>
        string.Join(", ", parameters.Select(p => $"{p.Key}={p.Value.ToString(System.Globalization.CultureInfo.InvariantCulture)}"));
}
