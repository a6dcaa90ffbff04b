using CloudMemory.Contracts.Feedback;
namespace CloudMemory.Feedback.Features.Learning;

/// <summary>The few statistics the learning loop needs.</summary>
public static class Statistics
{
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
}
