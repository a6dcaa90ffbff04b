using System.Globalization;
using System.Text.Json;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Feedback;

namespace CloudMemory.Feedback.Features.Feedback;

/// <summary>
/// Feedback names and their value rules. A name must have a config (built in or defined by the
/// tenant) so names do not proliferate; the config validates a value and normalizes it to a score
/// in [-1, 1] that analysis, the learning loop and memory ranking all read the same way.
/// </summary>
public static class FeedbackConfigs
{
    /// <summary>Configs every tenant has; a tenant may redefine them.</summary>
    public static IReadOnlyList<FeedbackConfig> BuiltIn { get; } =
    [
        new("rating", FeedbackValueTypes.Numeric, 1, 5, Description: "User rating, 1 (worst) to 5 (best)."),
        new("thumbs", FeedbackValueTypes.Boolean, Description: "Thumbs up (true) or down (false)."),
        new("helpful", FeedbackValueTypes.Boolean, Description: "Was it helpful (memory entries: was it the right thing to recall)."),
        new("quality", FeedbackValueTypes.Categorical, Values: ["good", "acceptable", "poor"], Description: "Coarse quality label."),
        new("comment", FeedbackValueTypes.Text, Description: "Free-text comment."),
        new("retry", FeedbackValueTypes.Boolean, HigherIsBetter: false, Description: "Implicit: the user retried the turn."),
        new("correction", FeedbackValueTypes.Boolean, HigherIsBetter: false, Description: "Implicit: the user corrected the answer."),
        new("abandoned", FeedbackValueTypes.Boolean, HigherIsBetter: false, Description: "Implicit: the user abandoned the conversation."),
        new("latency_ms", FeedbackValueTypes.Numeric, 0, null, HigherIsBetter: false, Description: "System: response latency in milliseconds."),
        new("anomaly", FeedbackValueTypes.Text, Description: "System: a detected anomaly."),
    ];

    private static readonly Dictionary<string, FeedbackConfig> BuiltInByName = BuiltIn.ToDictionary(c => c.Name, StringComparer.Ordinal);

    /// <summary>The built-in config of <paramref name="name"/>, or null.</summary>
    public static FeedbackConfig? FindBuiltIn(string name) => BuiltInByName.GetValueOrDefault(name);

    /// <summary>Throws a 400 problem when <paramref name="config"/> is not a usable definition.</summary>
    public static FeedbackConfig Validate(string name, FeedbackConfig? config)
    {
        Ids.Require(name, "name");
        if (config is null)
        {
            throw new ProblemException(400, "missing-body", "A feedback config is required.");
        }
        if (config.Name is { Length: > 0 } && config.Name != name)
        {
            throw new ProblemException(400, "name-mismatch", $"The body names '{config.Name}' but the route names '{name}'.");
        }
        if (!FeedbackValueTypes.All.Contains(config.Type ?? ""))
        {
            throw new ProblemException(400, "invalid-config-type", $"'type' must be one of {string.Join(", ", FeedbackValueTypes.All)}.");
        }
        if (config.Type == FeedbackValueTypes.Categorical && (config.Values is not { Count: > 0 } || config.Values.Distinct(StringComparer.Ordinal).Count() != config.Values.Count || config.Values.Any(string.IsNullOrWhiteSpace)))
        {
            throw new ProblemException(400, "invalid-config-values", "A categorical config needs 'values': distinct, non-empty, best first.");
        }
        if (config is { Min: { } min, Max: { } max } && (!(min < max) || !double.IsFinite(min) || !double.IsFinite(max)))
        {
            throw new ProblemException(400, "invalid-config-range", "'min' must be below 'max'.");
        }
        return config with
        {
            Name = name,
            Values = config.Type == FeedbackValueTypes.Categorical ? config.Values : null,
            Min = config.Type == FeedbackValueTypes.Numeric ? config.Min : null,
            Max = config.Type == FeedbackValueTypes.Numeric ? config.Max : null,
        };
    }

    /// <summary>
    /// Validates <paramref name="value"/> against <paramref name="config"/> and returns its score in
    /// [-1, 1] (null when the value has no polarity: text, or a number without both bounds).
    /// Throws a 400 problem with code <c>invalid-feedback-value</c> otherwise.
    /// </summary>
    public static double? Score(FeedbackConfig config, JsonElement value)
    {
        switch (config.Type)
        {
            case FeedbackValueTypes.Numeric:
                if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out var number) || !double.IsFinite(number))
                {
                    throw Invalid(config, "a number");
                }
                if ((config.Min is { } lo && number < lo) || (config.Max is { } hi && number > hi))
                {
                    throw Invalid(config, $"a number in [{Format(config.Min)}, {Format(config.Max)}]");
                }
                if (config is not { Min: { } min, Max: { } max })
                {
                    return null;
                }
                var scaled = 2 * (number - min) / (max - min) - 1;
                return Orient(config, scaled);
            case FeedbackValueTypes.Boolean:
                if (value.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                {
                    throw Invalid(config, "true or false");
                }
                return Orient(config, value.GetBoolean() ? 1 : -1);
            case FeedbackValueTypes.Categorical:
                var values = config.Values ?? [];
                var index = value.ValueKind == JsonValueKind.String ? IndexOf(values, value.GetString()!) : -1;
                if (index < 0)
                {
                    throw Invalid(config, $"one of {string.Join(", ", values)}");
                }
                return values.Count == 1 ? 0 : 1 - 2.0 * index / (values.Count - 1);
            default:
                if (value.ValueKind != JsonValueKind.String || value.GetString()!.Length > 10_000)
                {
                    throw Invalid(config, "a string of at most 10000 characters");
                }
                return null;
        }
    }

    private static int IndexOf(IReadOnlyList<string> values, string value)
    {
        for (var i = 0; i < values.Count; i++)
        {
            if (string.Equals(values[i], value, StringComparison.Ordinal))
            {
                return i;
            }
        }
        return -1;
    }

    private static double Orient(FeedbackConfig config, double score) => Math.Round(config.HigherIsBetter ? score : -score, 6);

    private static string Format(double? bound) => bound?.ToString(CultureInfo.InvariantCulture) ?? "any";

    private static ProblemException Invalid(FeedbackConfig config, string expected) =>
        new(400, "invalid-feedback-value", $"'value' of '{config.Name}' ({config.Type}) must be {expected}.");
}
