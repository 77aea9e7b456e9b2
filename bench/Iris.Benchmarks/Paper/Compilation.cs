using System.Globalization;

namespace Iris.Benchmarks.Paper;

/// <summary>
/// How busy the .NET runtime's background compiler is in a set of processes: the CPU time of their tiered-compilation
/// threads (".NET Tiered Com…", which compile hot methods again, optimised), read from /proc. A system measured while
/// its processes still compile pays for it in every cell: on this 2-core machine, Iris' five processes spent a quarter
/// of the machine compiling 12 s into the load, plain Orleans' five under a tenth. The warm-up goes on until
/// compilation has settled in every process of the system measured (<see cref="WarmUpAsync"/>).
/// </summary>
internal static class Compilation
{
    /// <summary>Kernel clock ticks per second, in which /proc gives thread CPU times (USER_HZ: 100 on Linux).</summary>
    private const double TicksPerSecond = 100;

    /// <summary>The CPU time so far of each tiered-compilation thread of processes <paramref name="pids"/> (by process and
    /// thread id); empty where /proc cannot be read (not Linux).</summary>
    public static Dictionary<(int Pid, int Tid), long> Threads(IEnumerable<int> pids)
    {
        var ticks = new Dictionary<(int, int), long>();
        foreach (var pid in pids)
        {
            string[] threads;
            try
            {
                threads = Directory.GetDirectories($"/proc/{pid}/task");
            }
            catch (IOException)
            {
                continue;
            }
            catch (UnauthorizedAccessException)
            {
                continue;
            }

            foreach (var thread in threads)
            {
                try
                {
                    if (!File.ReadAllText(Path.Combine(thread, "comm")).StartsWith(".NET Tiered Com", StringComparison.Ordinal))
                    {
                        continue;
                    }

                    // stat: "pid (comm) state ...": utime and stime are fields 14 and 15, counted after the comm's ')'.
                    var stat = File.ReadAllText(Path.Combine(thread, "stat"));
                    var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                    ticks[(pid, int.Parse(Path.GetFileName(thread), CultureInfo.InvariantCulture))] =
                        long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
                }
                catch (IOException)
                {
                    // The thread ended meanwhile.
                }
            }
        }

        return ticks;
    }

    /// <summary>
    /// The CPU time the tiered-compilation threads of <paramref name="pids"/> used since <paramref name="before"/> (a
    /// <see cref="Threads"/> reading). The runtime ends its compilation thread when it has been idle for a while and
    /// starts another later, so a sum over the threads alive at each reading could go down; this counts each thread
    /// alive now from where it was then (from zero if it started since), and misses only the last moments of a thread
    /// that ended in between.
    /// </summary>
    public static TimeSpan Since(Dictionary<(int Pid, int Tid), long> before, IEnumerable<int> pids) =>
        TimeSpan.FromSeconds(Threads(pids).Sum(t => Math.Max(0, t.Value - before.GetValueOrDefault(t.Key))) / TicksPerSecond);

    /// <summary>
    /// Runs the warm-up load <paramref name="call"/> for at least <paramref name="least"/>, then in 2-s slices until
    /// compilation settles (see <see cref="SettleAsync"/>).
    /// </summary>
    public static async Task<double> WarmUpAsync(Func<Task> call, int callers, TimeSpan least, TimeSpan most, Func<IEnumerable<int>> pids, string system)
    {
        var started = DateTime.UtcNow;
        await Load.WarmUpAsync(call, callers, least);
        return await SettleAsync(() => Load.WarmUpAsync(call, callers, Slice), started, most, pids, system);
    }

    /// <summary>
    /// Runs <paramref name="round"/> again and again until the compilation threads of <paramref name="pids"/> (this
    /// process included by the caller) used less than <see cref="SettledShare"/> of one core during a round, or
    /// <paramref name="most"/> has passed since <paramref name="started"/> (at least one round). Returns the share of
    /// the last round; each round's is printed.
    /// </summary>
    public static async Task<double> SettleAsync(Func<Task> round, DateTime started, TimeSpan most, Func<IEnumerable<int>> pids, string system)
    {
        double share;
        do
        {
            var before = Threads(pids());
            var roundStarted = DateTime.UtcNow;
            await round();
            share = Since(before, pids()) / (DateTime.UtcNow - roundStarted);
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {system} warm-up: {(DateTime.UtcNow - started).TotalSeconds:F0} s, compiling {100 * share:F1} % of a core"));
        }
        while (share >= SettledShare && DateTime.UtcNow - started < most);

        return share;
    }

    /// <summary>Compilation counts as settled below this share of one core, summed over the system's processes.</summary>
    public const double SettledShare = 0.03;

    private static readonly TimeSpan Slice = TimeSpan.FromSeconds(2);
}
