namespace Iris.Chaos;

/// <summary>
/// The phases of an <c>--overload</c> run: a warm-up of <see cref="WarmUpSeconds"/>, not measured (on a busy machine the
/// healthy cluster's throughput climbs for 15 to 20 s after the load starts, as the JIT compiler catches up), with
/// the healthy load and a burst of the overload from <see cref="BurstFrom"/> to <see cref="BurstTo"/> (so the overload's
/// own code is compiled by the time it is measured), then over <c>--seconds</c> S: before (the first quarter, no overload), overload (the
/// next half) and after (the rest, no overload again). The healthy cluster's throughput in a phase is the
/// mean of its successful requests per second over the phase's whole seconds, less the first
/// <see cref="SettleSeconds"/> (the change of phase: the overload's callers starting, or its last requests ending).
/// The ratio compares the overload phase with the phase before; the phase after, against the one before, says whether
/// the comparison can be trusted: near 1 when neither the machine's other work nor anything the overload left behind
/// changed the healthy cluster's throughput.
/// </summary>
internal sealed record OverloadPhases(int Seconds)
{
    public const int SettleSeconds = 2;

    public const int WarmUpSeconds = 20;

    public const int BurstFrom = 3;

    public const int BurstTo = 8;

    /// <summary>The shortest run that leaves each phase at least three measured seconds.</summary>
    public const int MinimumSeconds = 4 * (SettleSeconds + 3);

    public int BeforeFrom => WarmUpSeconds;

    public int OverloadFrom => BeforeFrom + (Seconds / 4);

    public int OverloadTo => OverloadFrom + (Seconds / 2);

    /// <summary>When the load stops, in seconds since it started.</summary>
    public int End => WarmUpSeconds + Seconds;

    /// <summary>Mean successes per second of the healthy cluster before, during and after the overload, and the ratios
    /// of the last two to the first.</summary>
    public HealthyThroughput Measure(IReadOnlyList<int> succeededPerSecond)
    {
        var before = Mean(succeededPerSecond, BeforeFrom, OverloadFrom);
        var during = Mean(succeededPerSecond, OverloadFrom, OverloadTo);
        var after = Mean(succeededPerSecond, OverloadTo, End);
        return new HealthyThroughput(Math.Round(before, 1), Math.Round(during, 1), Math.Round(after, 1), Ratio(during, before), Ratio(after, before));
    }

    private static double Mean(IReadOnlyList<int> perSecond, int from, int to)
    {
        var measured = perSecond.Skip(from + SettleSeconds).Take(Math.Max(0, to - from - SettleSeconds)).ToArray();
        return measured.Length == 0 ? 0 : measured.Average();
    }

    private static double Ratio(double value, double baseline) => baseline > 0 ? Math.Round(value / baseline, 3) : 0;
}

/// <summary>The healthy cluster's mean successes per second in each phase of an overload run; <c>Ratio</c> is the
/// overload phase's over the phase before (the report's <c>healthyThroughputRatio</c>), <c>AfterRatio</c> the phase
/// after over the phase before (near 1 when the machine's other work did not change and the overload left nothing
/// behind; far from 1, the ratio is as unsure as the machine was unsteady).</summary>
internal sealed record HealthyThroughput(double Before, double Overload, double After, double Ratio, double AfterRatio);
