namespace Iris.Chaos;

/// <summary>
/// The three phases of an <c>--overload</c> run over its <c>--seconds</c> S: before (the first quarter, no overload),
/// overload (the next half) and after (the rest, no overload again). The healthy cluster's throughput in a phase is the
/// mean of its successful requests per second over the phase's whole seconds, less the first
/// <see cref="SettleSeconds"/> (the change of phase: the overload's callers starting, or its last requests ending).
/// The unloaded throughput is the mean of the phases before and after: on a machine whose other work comes and goes,
/// that cancels a steady drift over the run, which a comparison with the phase before alone would count as the
/// overload's doing (either way). What the overload leaves behind shows in the after phase against the one before.
/// </summary>
internal sealed record OverloadPhases(int Seconds)
{
    public const int SettleSeconds = 2;

    /// <summary>The shortest run that leaves each phase at least three measured seconds.</summary>
    public const int MinimumSeconds = 4 * (SettleSeconds + 3);

    public int OverloadFrom => Seconds / 4;

    public int OverloadTo => OverloadFrom + (Seconds / 2);

    /// <summary>Mean successes per second of the healthy cluster before, during and after the overload; the ratio of
    /// the overload phase's to the unloaded phases' mean, and of the phase after to the phase before.</summary>
    public HealthyThroughput Measure(IReadOnlyList<int> succeededPerSecond)
    {
        var before = Mean(succeededPerSecond, 0, OverloadFrom);
        var during = Mean(succeededPerSecond, OverloadFrom, OverloadTo);
        var after = Mean(succeededPerSecond, OverloadTo, Seconds);
        return new HealthyThroughput(Math.Round(before, 1), Math.Round(during, 1), Math.Round(after, 1), Ratio(during, (before + after) / 2), Ratio(after, before));
    }

    /// <summary>Whether <paramref name="seconds"/> into the load falls in the overload phase.</summary>
    public bool InOverload(double seconds) => seconds >= OverloadFrom && seconds < OverloadTo;

    private static double Mean(IReadOnlyList<int> perSecond, int from, int to)
    {
        var measured = perSecond.Skip(from + SettleSeconds).Take(Math.Max(0, to - from - SettleSeconds)).ToArray();
        return measured.Length == 0 ? 0 : measured.Average();
    }

    private static double Ratio(double value, double baseline) => baseline > 0 ? Math.Round(value / baseline, 3) : 0;
}

/// <summary>The healthy cluster's mean successes per second in each phase of an overload run; <c>Ratio</c> is the
/// overload phase's over the mean of the phases before and after (the report's <c>healthyThroughputRatio</c>),
/// <c>AfterRatio</c> the phase after over the phase before (near 1 when the machine's other work did not change and
/// the overload left nothing behind; far from 1, the ratio is as unsure as the machine was unsteady).</summary>
internal sealed record HealthyThroughput(double Before, double Overload, double After, double Ratio, double AfterRatio);
