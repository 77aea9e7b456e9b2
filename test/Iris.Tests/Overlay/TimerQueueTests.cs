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
}
