using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace Iris.Cli.CommandLine;

/// <summary>Arguments and options several commands share, each with its check.</summary>
internal static class Arguments
{
    /// <summary>The largest request timeout Iris takes (see <see cref="IClusterGrain.Request"/>).</summary>
    public static readonly TimeSpan MaxTimeout = TimeSpan.FromMinutes(10);

    public static Argument<string> Name(string name, string description)
    {
        var argument = new Argument<string>(name) { Description = description };
        argument.Validators.Add(result =>
        {
            if (string.IsNullOrWhiteSpace(result.GetValueOrDefault<string>()))
            {
                result.AddError($"The {name} name must not be empty.");
            }
        });
        return argument;
    }

    public static Argument<string> Message() => new("message") { Description = Payload.Forms, HelpName = "text|@file|-" };

    /// <summary>A duration option of at most <paramref name="max"/>; its default is applied where it is read
    /// (<c>GetValue(option) ?? default</c>), and said in <paramref name="description"/>.</summary>
    public static Option<TimeSpan?> Duration(string name, string[] aliases, string description, bool zeroAllowed = false, TimeSpan? max = null) => new(name, aliases)
    {
        Description = description,
        HelpName = "duration",
        CustomParser = result =>
        {
            TimeSpan? duration = zeroAllowed ? Durations.ParseOrZero(result) : Durations.Parse(result);
            if (duration > max)
            {
                result.AddError($"{name} must be at most {Durations.Describe(max.Value)}.");
            }

            return duration;
        },
    };

    /// <summary>A timeout of at most <see cref="MaxTimeout"/>.</summary>
    public static Option<TimeSpan?> Timeout(string description) => Duration("--timeout", ["-t"], description, max: MaxTimeout);

    /// <summary>A whole number from <paramref name="min"/> to <paramref name="max"/>, with a default shown in the help.</summary>
    public static Option<int> Integer(string name, string[] aliases, string description, int min, int max, int defaultValue)
    {
        var option = new Option<int>(name, aliases) { Description = description, HelpName = "n", DefaultValueFactory = _ => defaultValue };
        option.CustomParser = result => ParseInteger(result, name, min, max) ?? defaultValue;
        return option;
    }

    /// <summary>As <see cref="Integer"/>, for an option whose absence means something (null).</summary>
    public static Option<int?> OptionalInteger(string name, string[] aliases, string description, int min, int max) =>
        new(name, aliases) { Description = description, HelpName = "n", CustomParser = result => ParseInteger(result, name, min, max) };

    /// <summary>A count of at least one.</summary>
    public static Option<int> Count(string description, int defaultValue) => Integer("--count", ["-n"], description, 1, int.MaxValue, defaultValue);

    /// <summary>Whether a flag was given on the command line.</summary>
    public static bool Given(CommandResult command, Option<bool> flag) => command.GetResult(flag) is { Implicit: false } given && given.Tokens.All(t => !bool.TryParse(t.Value, out var value) || value);

    private static int? ParseInteger(ArgumentResult result, string name, int min, int max)
    {
        var token = result.Tokens.Count > 0 ? result.Tokens[^1].Value : string.Empty;
        if (!int.TryParse(token, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
        {
            result.AddError(max == int.MaxValue
                ? $"{name} must be a whole number of at least {min.ToString(CultureInfo.InvariantCulture)}; it is '{token}'."
                : $"{name} must be a whole number from {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}; it is '{token}'.");
            return null;
        }

        return value;
    }
}
