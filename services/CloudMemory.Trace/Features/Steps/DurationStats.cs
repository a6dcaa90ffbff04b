namespace CloudMemory.Trace.Features.Steps;

/// <summary>
/// A log-scale histogram of step durations of one (step type, agent) of a tenant: 64 buckets, three
/// per doubling (about ±13% resolution), so it merges by addition and answers quantiles without the
/// raw durations.
/// </summary>
public sealed record DurationStats(string StepType, string AgentId, long[] Buckets)
{
    /// <summary>Number of buckets.</summary>
    public const int BucketCount = 64;

    private const double PerDoubling = 3;

    /// <summary>Observations.</summary>
    public long Count => Buckets.Sum();

    /// <summary>The bucket of a duration.</summary>
    public static int BucketOf(double durationMs) =>
        (int)Math.Clamp(Math.Floor(Math.Log2(Math.Max(0, durationMs) + 1) * PerDoubling), 0, BucketCount - 1);

    /// <summary>Representative value (geometric middle) of a bucket.</summary>
    public static double ValueOf(int bucket) => Math.Pow(2, (bucket + 0.5) / PerDoubling) - 1;

    /// <summary>Estimated quantile <paramref name="q"/> in [0, 1].</summary>
    public double Quantile(double q)
    {
        var total = Count;
        if (total == 0)
        {
            return 0;
        }
        var rank = Math.Max(1, (long)Math.Ceiling(q * total));
        long seen = 0;
        for (var b = 0; b < BucketCount; b++)
        {
            seen += Buckets[b];
            if (seen >= rank)
            {
                return ValueOf(b);
            }
        }
        return ValueOf(BucketCount - 1);
    }

    /// <summary>
    /// Anomaly threshold p95 + k·MAD, MAD estimated as half the inter-quartile range (exact for a
    /// symmetric distribution, a robust stand-in otherwise).
    /// </summary>
    public double Threshold(double k = 3) => Quantile(0.95) + k * Math.Max(0, (Quantile(0.75) - Quantile(0.25)) / 2);
}
