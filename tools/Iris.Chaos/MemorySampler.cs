namespace Iris.Chaos;

/// <summary>Samples the working sets of some processes every second: the largest over all of them at each sample, kept
/// with its time (seconds into the load), so a report can give the largest of the run, of a phase, and the series.</summary>
internal sealed class MemorySampler(Func<IReadOnlyList<ChildProcess>> processes, RunClock clock)
{
    private const double Mib = 1024.0 * 1024.0;
    private readonly List<(double At, double Mb)> _samples = [];

    public async Task RunAsync(CancellationToken stop)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            do
            {
                var largest = processes().Select(p => p.WorkingSet() ?? 0).DefaultIfEmpty(0).Max();
                lock (_samples)
                {
                    _samples.Add((clock.Seconds, largest / Mib));
                }
            }
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // The run is over.
        }
    }

    /// <summary>The largest working set sampled from <paramref name="from"/> to <paramref name="to"/> seconds, in MiB.</summary>
    public double MaxMb(double from = 0, double to = double.MaxValue)
    {
        lock (_samples)
        {
            return Math.Round(_samples.Where(s => s.At >= from && s.At < to).Select(s => s.Mb).DefaultIfEmpty(0).Max(), 1);
        }
    }

    /// <summary>Each sample's largest working set, in MiB, one a second.</summary>
    public IReadOnlyList<double> Series()
    {
        lock (_samples)
        {
            return [.. _samples.Select(s => Math.Round(s.Mb, 1))];
        }
    }
}
