using Iris.Chaos;

namespace Iris.Tests.Chaos;

/// <summary>The phases of the chaos runner's overload mode and the healthy cluster's throughput ratio.</summary>
public sealed class OverloadPhasesTests
{
    [Fact]
    public void A_40_second_run_warms_up_then_has_10_seconds_before_20_of_overload_and_10_after()
    {
        var phases = new OverloadPhases(40);
        Assert.Equal((20, 30, 50, 60), (phases.BeforeFrom, phases.OverloadFrom, phases.OverloadTo, phases.End));
    }

    [Fact]
    public void Each_phase_is_measured_without_its_first_seconds_and_the_ratio_is_against_the_phase_before()
    {
        // Warm-up at 1/s; then each phase starts with two odd seconds (a change of phase) that must not count.
        int[] perSecond =
        [
            .. Enumerable.Repeat(1, 20),
            5000, 5000, .. Enumerable.Repeat(1000, 8),
            0, 0, .. Enumerable.Repeat(800, 18),
            0, 0, .. Enumerable.Repeat(1100, 8),
        ];
        var healthy = new OverloadPhases(40).Measure(perSecond);
        Assert.Equal(new HealthyThroughput(1000, 800, 1100, 0.8, 1.1), healthy);
    }

    [Fact]
    public void With_nothing_before_the_ratio_is_zero_not_infinite()
    {
        var healthy = new OverloadPhases(40).Measure(new int[60]);
        Assert.Equal(0, healthy.Ratio);
        Assert.Equal(0, healthy.AfterRatio);
    }
}
