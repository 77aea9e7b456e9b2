namespace Iris.Chaos;

/// <summary>How long request throughput took to come back after a kill.</summary>
internal static class Recovery
{
    private const int BaselineSeconds = 10;
    private const double Back = 0.9;

    /// <summary>Baseline: the mean successes per second over the (up to) 10 whole seconds before the kill. The
    /// throughput has dipped when a second after the kill falls under 90 % of it, and is back at the start of the
    /// first later second at 90 % or more; recovery is that moment minus the kill's time, 0 when it never dipped.
    /// Seconds are looked at until the next kill or the end of the load; not back by then counts the whole window,
    /// with <c>Recovered</c> false.</summary>
    public static KillOutcome Measure(int[] succeededPerSecond, double killAt, double windowEnd)
    {
        var killSecond = (int)Math.Floor(killAt);
        var from = Math.Max(0, killSecond - BaselineSeconds);
        var baseline = killSecond > from ? succeededPerSecond[from..killSecond].Average() : 0;
        var threshold = Back * baseline;
        var end = Math.Min(succeededPerSecond.Length, (int)Math.Floor(windowEnd));
        var after = succeededPerSecond[Math.Min(killSecond, end)..end];
        var lowest = after.Length > 0 ? after.Min() : 0;

        var dip = Array.FindIndex(after, c => c < threshold);
        if (dip < 0)
        {
            return new KillOutcome(baseline, lowest, 0, Recovered: true);
        }

        var back = Array.FindIndex(after, dip + 1, c => c >= threshold);
        return back < 0
            ? new KillOutcome(baseline, lowest, end - killAt, Recovered: false)
            : new KillOutcome(baseline, lowest, Math.Max(0, killSecond + back - killAt), Recovered: true);
    }
}
