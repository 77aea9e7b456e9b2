using Iris.Overlay.Timing;
using Microsoft.Extensions.Time.Testing;

namespace Iris.Tests.Overlay;

public class TimerQueueTests
{
    private static void Step(FakeTimeProvider time, int milliseconds)
    {
        for (var i = 0; i < milliseconds; i++)
        {
            time.SetUtcNow(time.GetUtcNow() + TimeSpan.FromMilliseconds(1));
        }
    }

    [Fact]
    public void Deadlines_fire_in_order_at_their_time_and_can_move_or_be_cancelled()
    {
        var time = new FakeTimeProvider();
        using var timers = new TimerQueue(time);
        var fired = new List<(string Name, long At)>();
        var a = timers.Create(() => fired.Add(("a", timers.NowMs)));
        var b = timers.Create(() => fired.Add(("b", timers.NowMs)));
        var c = timers.Create(() => fired.Add(("c", timers.NowMs)));
        a.ScheduleAt(30);
        b.ScheduleAt(10);
        c.ScheduleAt(20);
        a.ScheduleAt(25);
        c.Cancel();
        Step(time, 40);
        Assert.Equal([("b", 10L), ("a", 25L)], fired);
    }

    [Fact]
    public void A_callback_can_schedule_its_own_next_run()
    {
        var time = new FakeTimeProvider();
        using var timers = new TimerQueue(time);
        var runs = new List<long>();
        TimerQueue.Entry? entry = null;
        entry = timers.Create(() =>
        {
            runs.Add(timers.NowMs);
            entry!.ScheduleAt(timers.NowMs + 7);
        });
        entry.ScheduleAt(7);
        Step(time, 30);
        Assert.Equal([7L, 14L, 21L, 28L], runs);
    }

    [Fact]
    public void A_callback_that_throws_is_logged_and_counted_and_the_other_deadlines_still_run()
    {
        var time = new FakeTimeProvider();
        var log = new Support.ListLogger();
        using var timers = new TimerQueue(time, log);
        var runs = new List<string>();
        TimerQueue.Entry? ticking = null;
        ticking = timers.Create(() =>
        {
            runs.Add($"tick {timers.NowMs}");
            ticking!.ScheduleAt(timers.NowMs + 10);
        });
        var broken = timers.Create(() => throw new InvalidOperationException("route after stop"));
        ticking.ScheduleAt(10);
        broken.ScheduleAt(15);
        Step(time, 35);
        Assert.Equal(["tick 10", "tick 20", "tick 30"], runs);
        Assert.Equal(1, timers.Failures);
        Assert.Contains(log.Lines, l => l.StartsWith("Error", StringComparison.Ordinal) && l.Contains("InvalidOperationException", StringComparison.Ordinal));
    }
}
