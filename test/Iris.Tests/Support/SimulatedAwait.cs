using Iris.Simulator;

namespace Iris.Tests.Support;

/// <summary>Waits for a task whose work runs on a simulated ring: advances simulated time until it completes.</summary>
internal static class SimulatedAwait
{
    public static T Await<T>(this PastrySimulation ring, Task<T> task, TimeSpan? limit = null)
    {
        ring.Pump(task, limit ?? TimeSpan.FromSeconds(30));
        return task.GetAwaiter().GetResult();
    }

    public static void Await(this PastrySimulation ring, Task task, TimeSpan? limit = null)
    {
        ring.Pump(task, limit ?? TimeSpan.FromSeconds(30));
        task.GetAwaiter().GetResult();
    }

    /// <summary>Runs simulated time for <paramref name="duration"/> while <paramref name="task"/> goes on, in steps (50 ms
    /// unless <paramref name="step"/> says) that give its continuations a moment of real time; ends early when it
    /// completes.</summary>
    public static void PumpFor(this PastrySimulation ring, Task task, TimeSpan duration, TimeSpan? step = null)
    {
        var each = step ?? TimeSpan.FromMilliseconds(50);
        for (var elapsed = TimeSpan.Zero; elapsed < duration && !task.Wait(TimeSpan.FromMilliseconds(1)); elapsed += each)
        {
            ring.Run(each);
        }
    }

    /// <summary>Continuations of overlay tasks run on the thread pool, so each step gives them a moment of real
    /// time before simulated time moves on.</summary>
    public static void Pump(this PastrySimulation ring, Task task, TimeSpan limit)
    {
        for (var elapsed = TimeSpan.Zero; !task.Wait(TimeSpan.FromMilliseconds(1)); elapsed += TimeSpan.FromMilliseconds(5))
        {
            Assert.True(elapsed < limit, "the operation did not complete in simulated time");
            ring.Run(TimeSpan.FromMilliseconds(5));
        }
    }
}
