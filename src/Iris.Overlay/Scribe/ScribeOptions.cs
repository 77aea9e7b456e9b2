using Microsoft.Extensions.Options;

namespace Iris.Overlay.Scribe;

/// <summary>Settings of Scribe trees. Bound from the <c>Iris:Overlay:Scribe</c> configuration section.</summary>
public sealed class ScribeOptions
{
    /// <summary>How often parents and children exchange heartbeats and capacity reports. Default 1 second.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Intervals of silence after which a parent or child is taken as gone. Default 3.</summary>
    public int MissCount { get; set; } = 3;

    /// <summary>How long a tree join waits for its acknowledgement before it is sent again. Default 2 seconds.</summary>
    public TimeSpan JoinTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Groups a name is split over (<c>name#0</c> … <c>name#k-1</c>), so k roots share its load. Default 4
    /// (<see cref="GroupNames.DefaultSplits"/>, which silos and clients use; other values are for the simulator).</summary>
    public int Splits { get; set; } = GroupNames.DefaultSplits;
}

/// <summary>Checks <see cref="ScribeOptions"/> at start-up.</summary>
public sealed class ScribeOptionsValidator : IValidateOptions<ScribeOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, ScribeOptions options)
    {
        var errors = new List<string>();
        if (options.HeartbeatInterval <= TimeSpan.Zero)
        {
            errors.Add($"Scribe HeartbeatInterval must be positive; it is {options.HeartbeatInterval}.");
        }

        if (options.MissCount < 1)
        {
            errors.Add($"Scribe MissCount must be at least 1; it is {options.MissCount}.");
        }

        if (options.JoinTimeout <= TimeSpan.Zero)
        {
            errors.Add($"Scribe JoinTimeout must be positive; it is {options.JoinTimeout}.");
        }

        if (options.Splits is < 1 or > 64)
        {
            errors.Add($"Scribe Splits must be from 1 to 64; it is {options.Splits}.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
