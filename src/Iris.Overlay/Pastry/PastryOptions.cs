using Microsoft.Extensions.Options;

namespace Iris.Overlay.Pastry;

/// <summary>Settings of the Pastry ring. Bound from the <c>Iris:Overlay:Pastry</c> configuration section.</summary>
public sealed class PastryOptions
{
    /// <summary>Nodes kept in the leaf set, half on each side. Even, 2 to 64. Default 16.</summary>
    public int LeafSetSize { get; set; } = 16;

    /// <summary>How often a node checks on its leaf set. Default 1 second.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Heartbeat intervals of silence after which a leaf-set member is declared dead. Default 3.</summary>
    public int MissCount { get; set; } = 3;

    /// <summary>How long a hop of a routed message waits for its acknowledgement before the next hop is taken as dead
    /// and the message rerouted. Default 500 ms.</summary>
    public TimeSpan HopAckTimeout { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Times an unacknowledged hop is sent again to the same node before that node is taken as dead; covers
    /// a lost message or acknowledgement. Default 2.</summary>
    public int HopRetransmits { get; set; } = 2;

    /// <summary>How long a join waits for the root's state before it is retried. Default 5 seconds.</summary>
    public TimeSpan JoinTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>A routed message taking more hops than this is dropped as looping. Default 64.</summary>
    public int MaxHops { get; set; } = 64;

    /// <summary>Times a node tries to pass one message on (each failure removes a dead hop) before dropping it.
    /// Default 8.</summary>
    public int MaxRouteAttempts { get; set; } = 8;

    /// <summary>How long a node declared dead is remembered, so stale tables do not bring it back, and probed now and
    /// then, so a healed partition merges again. Default 10 minutes.</summary>
    public TimeSpan DeadNodeRetention { get; set; } = TimeSpan.FromMinutes(10);
}

/// <summary>Checks <see cref="PastryOptions"/> at start-up.</summary>
public sealed class PastryOptionsValidator : IValidateOptions<PastryOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, PastryOptions options)
    {
        var errors = new List<string>();
        if (options.LeafSetSize is < 2 or > 64 || options.LeafSetSize % 2 != 0)
        {
            errors.Add($"Pastry LeafSetSize must be an even number from 2 to 64; it is {options.LeafSetSize}.");
        }

        if (options.HeartbeatInterval <= TimeSpan.Zero)
        {
            errors.Add($"Pastry HeartbeatInterval must be positive; it is {options.HeartbeatInterval}.");
        }

        if (options.MissCount < 1)
        {
            errors.Add($"Pastry MissCount must be at least 1; it is {options.MissCount}.");
        }

        if (options.HopAckTimeout <= TimeSpan.Zero)
        {
            errors.Add($"Pastry HopAckTimeout must be positive; it is {options.HopAckTimeout}.");
        }

        if (options.HopRetransmits is < 0 or > 10)
        {
            errors.Add($"Pastry HopRetransmits must be from 0 to 10; it is {options.HopRetransmits}.");
        }

        if (options.JoinTimeout <= TimeSpan.Zero)
        {
            errors.Add($"Pastry JoinTimeout must be positive; it is {options.JoinTimeout}.");
        }

        if (options.MaxHops is < 1 or > 255)
        {
            errors.Add($"Pastry MaxHops must be from 1 to 255; it is {options.MaxHops}.");
        }

        if (options.MaxRouteAttempts < 1)
        {
            errors.Add($"Pastry MaxRouteAttempts must be at least 1; it is {options.MaxRouteAttempts}.");
        }

        if (options.DeadNodeRetention < TimeSpan.Zero)
        {
            errors.Add($"Pastry DeadNodeRetention must not be negative; it is {options.DeadNodeRetention}.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
