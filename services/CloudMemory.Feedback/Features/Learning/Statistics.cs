using CloudMemory.Contracts.Feedback;
namespace CloudMemory.Feedback.Features.Learning;

/// <summary>The few statistics the learning loop needs.</summary>
public static class Statistics
{
    private static readonly double[] LogFactorials = BuildLogFactorials(4096);

    /// <summary>
    /// One-sided two-proportion z-test of H1: treatment rate &gt; control rate (pooled standard
    /// error). Returns z and the p-value; p = 1 when either arm is empty or the pooled rate is 0 or 1.
    /// </summary>
    public static (double Z, double PValue) TwoProportionZTest(int controlSuccesses, int controlN, int treatmentSuccesses, int treatmentN)
    {
        if (controlN == 0 || treatmentN == 0)
        {
            return (0, 1);
        }
        var pooled = (double)(controlSuccesses + treatmentSuccesses) / (controlN + treatmentN);
        var se = Math.Sqrt(pooled * (1 - pooled) * (1.0 / controlN + 1.0 / treatmentN));
        if (se == 0)
        {
            return (0, 1);
        }
        var z = ((double)treatmentSuccesses / treatmentN - (double)controlSuccesses / controlN) / se;
        return (z, 1 - NormalCdf(z));
    }

    /// <summary>
    /// One-sided p-value of H1: treatment rate &gt; control rate, by Fisher's exact test: the
    /// probability, with the successes of both arms fixed and shuffled between them at random, that
    /// the treatment arm gets at least as many as it did. Exact, so it never rejects a true null
    /// more often than the chosen level, whatever the arm sizes and the base rate (the pooled z-test's
    /// normal approximation can, slightly, at small or lopsided arms). 1 when either arm is empty.
    /// </summary>
    public static double OneSidedProportionTest(int controlSuccesses, int controlN, int treatmentSuccesses, int treatmentN)
    {
        if (controlN <= 0 || treatmentN <= 0)
        {
            return 1;
        }
        var n = controlN + treatmentN;
        var successes = controlSuccesses + treatmentSuccesses;
        var denominator = LogChoose(n, treatmentN);
        var p = 0.0;
        for (var x = treatmentSuccesses; x <= Math.Min(successes, treatmentN); x++)
        {
            p += Math.Exp(LogChoose(successes, x) + LogChoose(n - successes, treatmentN - x) - denominator);
        }
        return Math.Clamp(p, 0, 1);
    }

    /// <summary>
    /// Mann-Whitney U test of H1: treatment values tend to be larger than control values, for a
    /// continuous outcome (e.g. the mean rating of each conversation). Normal approximation with the
    /// tie correction and a continuity correction; U counts (treatment, control) pairs where the
    /// treatment value is larger, ties a half. p = 1 when either arm is empty or all values tie.
    /// </summary>
    public static (double U, double Z, double PValue) MannWhitneyGreater(IReadOnlyList<double> control, IReadOnlyList<double> treatment)
    {
        int nc = control.Count, nt = treatment.Count;
        if (nc == 0 || nt == 0)
        {
            return (0, 0, 1);
        }
        var all = control.Select(v => (Value: v, Treatment: false)).Concat(treatment.Select(v => (Value: v, Treatment: true)))
            .OrderBy(x => x.Value).ToList();
        var n = all.Count;
        double rankSumTreatment = 0, tieTerm = 0;
        for (var i = 0; i < n;)
        {
            var j = i;
            while (j + 1 < n && all[j + 1].Value == all[i].Value)
            {
                j++;
            }
            var rank = (i + j + 2) / 2.0; // average of ranks i+1 .. j+1
            double tied = j - i + 1;
            tieTerm += tied * tied * tied - tied;
            for (var k = i; k <= j; k++)
            {
                if (all[k].Treatment)
                {
                    rankSumTreatment += rank;
                }
            }
            i = j + 1;
        }
        var u = rankSumTreatment - nt * (nt + 1) / 2.0;
        var mean = nc * (double)nt / 2;
        var variance = nc * (double)nt / 12 * (n + 1 - tieTerm / ((double)n * (n - 1)));
        if (variance <= 0)
        {
            return (u, 0, 1);
        }
        var z = (u - mean - 0.5) / Math.Sqrt(variance);
        return (u, z, 1 - NormalCdf(z));
    }

    /// <summary>ln C(n, k).</summary>
    public static double LogChoose(int n, int k) =>
        k < 0 || k > n ? double.NegativeInfinity : LogFactorial(n) - LogFactorial(k) - LogFactorial(n - k);

    /// <summary>ln n! (a table of exact sums below 4096, Stirling's series above; relative error below 1e-14).</summary>
    public static double LogFactorial(int n)
    {
        if (n < LogFactorials.Length)
        {
            return LogFactorials[n];
        }
        double x = n;
        return x * Math.Log(x) - x + 0.5 * Math.Log(2 * Math.PI * x) + 1 / (12 * x) - 1 / (360 * x * x * x) + 1 / (1260 * Math.Pow(x, 5));
    }

    /// <summary>Wald interval of the difference of two proportions at <paramref name="confidence"/> (two-sided).</summary>
    public static (double Low, double High) DifferenceInterval(int controlSuccesses, int controlN, int treatmentSuccesses, int treatmentN, double confidence)
    {
        if (controlN == 0 || treatmentN == 0)
        {
            return (-1, 1);
        }
        var pc = (double)controlSuccesses / controlN;
        var pt = (double)treatmentSuccesses / treatmentN;
        var se = Math.Sqrt(pc * (1 - pc) / controlN + pt * (1 - pt) / treatmentN);
        var z = NormalQuantile(1 - (1 - confidence) / 2);
        return (pt - pc - z * se, pt - pc + z * se);
    }

    /// <summary>Standard normal CDF (Abramowitz and Stegun 7.1.26 for erf; error below 1.5e-7).</summary>
    public static double NormalCdf(double x)
    {
        var t = 1 / (1 + 0.3275911 * Math.Abs(x) / Math.Sqrt(2));
        var y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.Exp(-x * x / 2);
        return x >= 0 ? (1 + y) / 2 : (1 - y) / 2;
    }

    /// <summary>Standard normal quantile (bisection on <see cref="NormalCdf"/>; plenty for interval bounds).</summary>
    public static double NormalQuantile(double p)
    {
        double lo = -10, hi = 10;
        for (var i = 0; i < 100; i++)
        {
            var mid = (lo + hi) / 2;
            if (NormalCdf(mid) < p)
            {
                lo = mid;
            }
            else
            {
                hi = mid;
            }
        }
        return (lo + hi) / 2;
    }

    private static double[] BuildLogFactorials(int count)
    {
        var table = new double[count];
        for (var i = 2; i < count; i++)
        {
            table[i] = table[i - 1] + Math.Log(i);
        }
        return table;
    }
}
