using System.Diagnostics;
using System.Globalization;

namespace Iris.Chaos;

/// <summary>
/// Where the CPU went between marks (the phases of an overload run): the CPU time of each role's processes (silos,
/// members, overload callers) and of the runner, and of the whole machine (<c>/proc/stat</c>, so other work on it
/// shows), each as cores used on average over the phase. On a machine with few cores the healthy cluster's throughput
/// is bound by the CPU left to it, and this says who took it.
/// </summary>
internal sealed class CpuAccount(IReadOnlyDictionary<string, Func<IReadOnlyList<ChildProcess>>> roles, RunClock clock)
{
    public const string Runner = "runner";
    public const string Machine = "machine";
    private readonly List<(double At, Dictionary<string, double> Seconds)> _marks = [];

    /// <summary>Takes the CPU time of every role now.</summary>
    public void Mark()
    {
        var seconds = roles.ToDictionary(r => r.Key, r => r.Value().Sum(p => p.CpuTime()?.TotalSeconds ?? 0), StringComparer.Ordinal);
        seconds[Runner] = Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;
        if (MachineBusySeconds() is { } machine)
        {
            seconds[Machine] = machine;
        }

        lock (_marks)
        {
            _marks.Add((clock.Seconds, seconds));
        }
    }

    /// <summary>Cores used by each role between each mark and the next.</summary>
    public IReadOnlyList<SortedDictionary<string, double>> Between()
    {
        lock (_marks)
        {
            return [.. _marks.Zip(_marks.Skip(1), (from, to) => new SortedDictionary<string, double>(
                to.Seconds.Where(s => from.Seconds.ContainsKey(s.Key))
                    .ToDictionary(s => s.Key, s => Math.Round((s.Value - from.Seconds[s.Key]) / Math.Max(0.001, to.At - from.At), 2)),
                StringComparer.Ordinal))];
        }
    }

    /// <summary>CPU seconds the machine spent busy since it started (all but idle and I/O wait), or null off Linux.</summary>
    private static double? MachineBusySeconds()
    {
        try
        {
            var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries);

            // cpu user nice system idle iowait irq softirq steal ...: in clock ticks of 1/100 s.
            var ticks = fields.Skip(1).Take(8).Select(f => long.Parse(f, CultureInfo.InvariantCulture)).ToArray();
            return (ticks.Sum() - ticks[3] - ticks[4]) / 100.0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }
}
