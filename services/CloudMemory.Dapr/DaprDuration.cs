using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml;

namespace CloudMemory.Dapr;

/// <summary>
/// Durations as daprd reads and writes them for reminders and actor configuration: Go durations
/// (<c>1h2m3.5s</c>) and ISO 8601 (<c>PT1H2M</c>, with an optional repetition prefix <c>R5/</c>).
/// </summary>
public static partial class DaprDuration
{
    /// <summary>Formats as a Go duration, e.g. <c>1h30m</c>, <c>1.5s</c>, <c>0s</c>.</summary>
    public static string Format(TimeSpan value)
    {
        if (value < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(value), "durations sent to Dapr cannot be negative");
        }
        if (value == TimeSpan.Zero)
        {
            return "0s";
        }
        var text = new StringBuilder();
        var hours = (long)value.TotalHours;
        if (hours > 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"{hours}h");
        }
        if (value.Minutes > 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"{value.Minutes}m");
        }
        var seconds = value.Seconds + (value.Ticks % TimeSpan.TicksPerSecond / (decimal)TimeSpan.TicksPerSecond);
        if (seconds > 0)
        {
            text.Append(seconds.ToString("0.#######", CultureInfo.InvariantCulture)).Append('s');
        }
        return text.ToString();
    }

    /// <summary>Parses a Go or ISO 8601 duration; empty means zero (a one-shot reminder period).</summary>
    public static TimeSpan Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return TimeSpan.Zero;
        }
        text = text.Trim();
        if (text.StartsWith('R') && text.IndexOf('/', StringComparison.Ordinal) is var slash and > 0)
        {
            text = text[(slash + 1)..]; // repetitions are daprd's business; the interval is what we need
        }
        if (text.StartsWith('P'))
        {
            return XmlConvert.ToTimeSpan(text);
        }
        var match = GoDuration().Match(text);
        if (!match.Success)
        {
            throw new FormatException($"'{text}' is neither a Go nor an ISO 8601 duration");
        }
        var total = 0d;
        foreach (Capture part in match.Groups["part"].Captures)
        {
            var unitMatch = GoPart().Match(part.Value);
            var number = double.Parse(unitMatch.Groups["n"].Value, CultureInfo.InvariantCulture);
            total += number * unitMatch.Groups["u"].Value switch
            {
                "h" => TimeSpan.TicksPerHour,
                "m" => TimeSpan.TicksPerMinute,
                "s" => TimeSpan.TicksPerSecond,
                "ms" => TimeSpan.TicksPerMillisecond,
                "us" or "µs" => 10,
                "ns" => 0.01,
                _ => throw new FormatException($"unknown unit in '{text}'"),
            };
        }
        return TimeSpan.FromTicks((long)Math.Round(total));
    }

    [GeneratedRegex(@"^(?<part>\d+(\.\d+)?(h|ms|m|s|us|µs|ns))+$", RegexOptions.CultureInvariant)]
    private static partial Regex GoDuration();

    [GeneratedRegex(@"^(?<n>\d+(\.\d+)?)(?<u>h|ms|m|s|us|µs|ns)$", RegexOptions.CultureInvariant)]
    private static partial Regex GoPart();
}
