using System.CommandLine.Parsing;
using System.Globalization;

namespace Iris.Cli.CommandLine;

/// <summary>Durations on the command line: a number of seconds (<c>10</c>, <c>0.5</c>) or a number with a unit
/// (<c>500ms</c>, <c>2s</c>, <c>1m</c>).</summary>
internal static class Durations
{
    public static bool TryParse(string text, out TimeSpan duration)
    {
        duration = default;
        var (number, scale) = text switch
        {
            _ when text.EndsWith("ms", StringComparison.OrdinalIgnoreCase) => (text[..^2], 0.001),
            _ when text.EndsWith('s') || text.EndsWith('S') => (text[..^1], 1.0),
            _ when text.EndsWith('m') || text.EndsWith('M') => (text[..^1], 60.0),
            _ => (text, 1.0),
        };
        if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !double.IsFinite(value) || value < 0 || value * scale > TimeSpan.MaxValue.TotalSeconds / 2)
        {
            return false;
        }

        duration = TimeSpan.FromSeconds(value * scale);
        return true;
    }

    /// <summary>The parser for a duration option, refusing anything that is not a duration or is not positive.</summary>
    public static TimeSpan Parse(ArgumentResult result)
    {
        var token = result.Tokens.Count > 0 ? result.Tokens[^1].Value : string.Empty;
        if (!TryParse(token, out var duration) || duration <= TimeSpan.Zero)
        {
            result.AddError($"'{token}' is not a positive duration: give seconds (10, 0.5) or a number with a unit (500ms, 2s, 1m).");
            return default;
        }

        return duration;
    }

    /// <summary>As <see cref="Parse"/>, where zero is allowed too (a warm-up that can be left out).</summary>
    public static TimeSpan ParseOrZero(ArgumentResult result)
    {
        var token = result.Tokens.Count > 0 ? result.Tokens[^1].Value : string.Empty;
        if (!TryParse(token, out var duration))
        {
            result.AddError($"'{token}' is not a duration: give seconds (10, 0.5) or a number with a unit (500ms, 2s, 1m).");
            return default;
        }

        return duration;
    }

    /// <summary>How a duration reads in messages: 10 s, 0.5 s, 250 ms.</summary>
    public static string Describe(TimeSpan duration) => duration switch
    {
        _ when duration < TimeSpan.FromSeconds(1) => $"{duration.TotalMilliseconds.ToString("0.###", CultureInfo.InvariantCulture)} ms",
        _ when duration >= TimeSpan.FromMinutes(1) && duration.Ticks % TimeSpan.TicksPerMinute == 0 => $"{duration.TotalMinutes.ToString("0", CultureInfo.InvariantCulture)} min",
        _ => $"{duration.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s",
    };
}
