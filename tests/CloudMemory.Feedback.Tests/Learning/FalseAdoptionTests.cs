using System.Text.Json;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.Contracts.Feedback;
using CloudMemory.Feedback.Features.Analysis;
using CloudMemory.Feedback.Features.Feedback;
using CloudMemory.Feedback.Features.Learning;
using Microsoft.Extensions.Options;
using Xunit.Abstractions;

namespace CloudMemory.Feedback.Tests.Learning;

/// <summary>
/// When no strategy is better (A/A), the loop adopts at most at its configured error rate. Counted
/// over many seeded simulated agents, so the numbers are the same on every run (nothing timed).
/// </summary>
public sealed class FalseAdoptionTests(ITestOutputHelper output)
{
    private const string Agent = "aa-agent";

    [Fact]
    public void DecisionRule_ManySeededAaTrials_FalsePositiveRateAtMostAlpha()
    {
        const double alpha = 0.05;
        const int trials = 20_000;
        var random = new Random(11);
        var positives = 0;
        for (var t = 0; t < trials; t++)
        {
            // Arms of uneven size around the horizon, the same true rate in both.
            var rate = 0.2 + 0.6 * random.NextDouble();
            var nc = 100 + random.Next(120);
            var nt = 100 + random.Next(120);
            var sc = Bernoulli(random, nc, rate);
            var st = Bernoulli(random, nt, rate);
            positives += Statistics.OneSidedProportionTest(sc, nc, st, nt) < alpha ? 1 : 0;
        }
        var observed = (double)positives / trials;
        // Three standard errors above alpha would be a broken test; an exact test sits at or below alpha.
        observed.Should().BeLessThanOrEqualTo(alpha + 3 * Math.Sqrt(alpha * (1 - alpha) / trials), $"{positives}/{trials}");
        observed.Should().BeGreaterThan(alpha / 4, "a test that never rejects would have no power either");
    }

    [Fact]
    public void MannWhitney_ManySeededAaTrials_FalsePositiveRateAtMostAlpha()
    {
        const double alpha = 0.05;
        const int trials = 4_000;
        var random = new Random(12);
        var positives = 0;
        for (var t = 0; t < trials; t++)
        {
            // Continuous outcomes with heavy ties (ratings on a 1–5 scale), the same distribution in both arms.
            var control = Enumerable.Range(0, 100 + random.Next(60)).Select(_ => (double)(1 + random.Next(5))).ToList();
            var treatment = Enumerable.Range(0, 100 + random.Next(60)).Select(_ => (double)(1 + random.Next(5))).ToList();
            positives += Statistics.MannWhitneyGreater(control, treatment).PValue < alpha ? 1 : 0;
        }
        var observed = (double)positives / trials;
        observed.Should().BeLessThanOrEqualTo(alpha + 3 * Math.Sqrt(alpha * (1 - alpha) / trials), $"{positives}/{trials}");
    }

    [Fact]
    public void MannWhitney_ShiftedTreatment_IsDetected()
    {
        var random = new Random(13);
        var control = Enumerable.Range(0, 150).Select(_ => random.NextDouble()).ToList();
        var treatment = Enumerable.Range(0, 150).Select(_ => random.NextDouble() + 0.3).ToList();
        Statistics.MannWhitneyGreater(control, treatment).PValue.Should().BeLessThan(0.001);
        Statistics.MannWhitneyGreater(treatment, control).PValue.Should().BeGreaterThan(0.99);
    }

    [Fact]
    public async Task LearningLoop_ManySeededAaAgents_AdoptsAtMostAtAlpha()
    {
        const double alpha = 0.05;
        const int agents = 200;
        var adopted = 0;
        var decided = 0;
        var zWouldAdopt = 0;
        for (var seed = 0; seed < agents; seed++)
        {
            var (decision, result) = await SimulateAaAsync(seed, alpha);
            adopted += decision == CycleDecisions.Adopted ? 1 : 0;
            decided += decision is CycleDecisions.Adopted or CycleDecisions.Rejected ? 1 : 0;
            zWouldAdopt += result is not null && 1 - Statistics.NormalCdf(result.Z) < alpha ? 1 : 0;
        }
        output.WriteLine($"A/A: {adopted}/{decided} adopted (Fisher exact); the pooled z-test would have adopted {zWouldAdopt}");
        decided.Should().BeGreaterThan(agents * 9 / 10, "almost every simulated agent reaches a decision");
        // At the 5% level 200 agents give 10 false adoptions on average (sd 3.1); 11.7% would give 23.
        adopted.Should().BeLessThanOrEqualTo(16, $"{adopted}/{decided} false adoptions");
    }

    /// <summary>One simulated agent whose users are equally satisfied whatever the strategy; returns the trial's decision.</summary>
    private static async Task<(string? Decision, TrialResult? Result)> SimulateAaAsync(int seed, double alpha)
    {
        var random = new Random(seed);
        var time = new SimClock();
        var feedbackStore = new InMemoryFeedbackStore();
        var publisher = new NoEvents();
        var analysis = new FeedbackAnalysisService(feedbackStore, Options.Create(new AnalysisOptions()), time);
        var engine = new LearningEngine(new InMemoryLearningStore(), analysis, publisher, Options.Create(new LearningOptions { Alpha = alpha, MinConversationsPerArm = 100 }));
        var recorder = new FeedbackRecorder(feedbackStore, publisher, time);
        for (var cycle = 1; cycle <= 8; cycle++)
        {
            for (var c = 0; c < 200; c++)
            {
                var conversation = $"s{seed}-c{cycle}-{c}";
                var strategy = await engine.GetStrategyAsync("t", Agent, conversation);
                var length = strategy.Parameters.TryGetValue("maxLength", out var max) ? (int)max : 1000;
                var satisfied = random.NextDouble() < 0.5;
                var tooLong = random.NextDouble() < 0.2;
                await recorder.RecordAsync("t", new RecordFeedbackRequest(null, new FeedbackTarget("conversation", conversation), Agent, "user", "rating",
                    JsonSerializer.SerializeToElement(satisfied ? 4 + random.Next(2) : 1 + random.Next(2)), null, tooLong ? ["too long"] : null,
                    Metrics: new Dictionary<string, double> { ["responseLength"] = length }));
            }
            time.Advance(TimeSpan.FromDays(1));
            var input = new LearningCycleInput("t", Agent, $"aa-{seed}-{cycle}", time.GetUtcNow());
            var evaluation = await engine.EvaluateTrialAsync(input);
            if (evaluation.Decision is CycleDecisions.Adopted or CycleDecisions.Rejected)
            {
                return (evaluation.Decision, evaluation.Result);
            }
            if (evaluation.Decision != CycleDecisions.TrialContinues)
            {
                await engine.ProposeAsync(input);
            }
            time.Advance(TimeSpan.FromSeconds(1));
        }
        return (null, null);
    }

    private static int Bernoulli(Random random, int n, double p)
    {
        var k = 0;
        for (var i = 0; i < n; i++)
        {
            k += random.NextDouble() < p ? 1 : 0;
        }
        return k;
    }

    private sealed class SimClock : TimeProvider
    {
        private DateTimeOffset _now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan by) => _now += by;
    }

    private sealed class NoEvents : IEventPublisher
    {
        public Task<string> PublishAsync<T>(string topic, string eventType, T data, PublishOptions? options = null, CancellationToken cancellationToken = default) =>
            Task.FromResult(options?.EventId ?? Guid.NewGuid().ToString("N"));
    }
}
