using System.Diagnostics;

namespace Iris.Benchmarks.Paper;

/// <summary>Closed-loop load: a number of callers, each making one call after another for a while; the figures of
/// the calls made, and the CPU time they cost across the processes given.</summary>
internal static class Load
{
    /// <summary>Runs <paramref name="call"/> from <paramref name="callers"/> loops, first for
    /// <paramref name="warmUp"/> unmeasured, then for <paramref name="duration"/>; <paramref name="cpuTime"/> reads the
    /// CPU time of every process involved (this one included).</summary>
    public static async Task<Measurement> MeasureAsync(Func<Task> call, int callers, int payload, TimeSpan warmUp, TimeSpan duration, Func<TimeSpan> cpuTime)
    {
        await RunAsync(call, callers, warmUp);
        var before = cpuTime();
        var started = Stopwatch.GetTimestamp();
        var latencies = await RunAsync(call, callers, duration);
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var cpu = cpuTime() - before;
        return Summarize(latencies, payload, seconds, cpu);
    }

    /// <summary>Runs <paramref name="call"/> from <paramref name="callers"/> loops for <paramref name="duration"/>,
    /// measuring nothing.</summary>
    public static Task WarmUpAsync(Func<Task> call, int callers, TimeSpan duration) => RunAsync(call, callers, duration);

    /// <summary>The measurement of <paramref name="latencies"/> (milliseconds, one per message) over
    /// <paramref name="seconds"/> that cost <paramref name="cpu"/>.</summary>
    public static Measurement Summarize(List<double> latencies, int payload, double seconds, TimeSpan cpu)
    {
        if (latencies.Count == 0)
        {
            throw new InvalidOperationException("No call completed in the measured time.");
        }

        latencies.Sort();
        var count = latencies.Count;
        return new Measurement(
            count / seconds,
            count * (double)payload / 1e6 / seconds,
            latencies[count / 2],
            latencies[Math.Min(count - 1, (int)(count * 0.99))],
            cpu.TotalMicroseconds / count);
    }

    private static async Task<List<double>> RunAsync(Func<Task> call, int callers, TimeSpan duration)
    {
        var end = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var all = new List<double>();
        await Task.WhenAll(Enumerable.Range(0, callers).Select(_ => Task.Run(async () =>
        {
            var mine = new List<double>(4096);
            while (Stopwatch.GetTimestamp() < end)
            {
                var started = Stopwatch.GetTimestamp();
                await call();
                mine.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }

            lock (all)
            {
                all.AddRange(mine);
            }
        })));
        return all;
    }
}
