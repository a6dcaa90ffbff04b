using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CloudMemory.BuildingBlocks.Hosting;

/// <summary>Options checks whose failures name the configuration key, its value and the allowed range.</summary>
public static class ConfigurationRules
{
    /// <summary>Requires <paramref name="value"/> within [<paramref name="min"/>, <paramref name="max"/>] (or (min, max] when <paramref name="minExclusive"/>).</summary>
    public static OptionsBuilder<T> ValidateRange<T>(this OptionsBuilder<T> builder, string key, Func<T, double> value, double min, double max, bool minExclusive = false)
        where T : class
    {
        builder.Services.AddSingleton<IValidateOptions<T>>(new RangeRule<T>(builder.Name, key, value, min, max, minExclusive));
        return builder;
    }

    /// <summary>Requires one of <paramref name="allowed"/> (case-sensitive).</summary>
    public static OptionsBuilder<T> ValidateOneOf<T>(this OptionsBuilder<T> builder, string key, Func<T, string?> value, params string[] allowed)
        where T : class =>
        builder.Validate(o => allowed.Contains(value(o)), $"Configuration '{key}' is not allowed; allowed: {string.Join(", ", allowed)}.");

    private sealed class RangeRule<T>(string? name, string key, Func<T, double> value, double min, double max, bool minExclusive) : IValidateOptions<T>
        where T : class
    {
        public ValidateOptionsResult Validate(string? optionsName, T options)
        {
            if (name is not null && name != optionsName)
            {
                return ValidateOptionsResult.Skip;
            }
            var actual = value(options);
            var ok = (minExclusive ? actual > min : actual >= min) && actual <= max;
            var range = $"{(minExclusive ? "(" : "[")}{Format(min)}, {Format(max)}]";
            return ok
                ? ValidateOptionsResult.Success
                : ValidateOptionsResult.Fail($"Configuration '{key}' is '{Format(actual)}'; allowed: {range}.");
        }

        private static string Format(double v) => v.ToString(CultureInfo.InvariantCulture);
    }
}
