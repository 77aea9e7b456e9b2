namespace Iris.Chaos;

/// <summary>The silo processes of the run: kills one at random (seeded) every so often and starts its replacement at
/// once.</summary>
internal sealed class SiloFleet(ChaosNetwork network, TextWriter progress)
{
    private readonly List<ChildProcess> _live = [];
    private readonly List<Task> _replacements = [];

    public List<KillRecord> Kills { get; } = [];

    public void Add(ChildProcess silo)
    {
        lock (_live)
        {
            _live.Add(silo);
        }
    }

    public async Task RunKillsAsync(RunClock clock, int seconds, int every, Random random, CancellationToken stop)
    {
        for (var at = every; at < seconds; at += every)
        {
            await clock.DelayUntilAsync(at, stop).ConfigureAwait(false);
            ChildProcess victim;
            lock (_live)
            {
                if (_live.Count == 0)
                {
                    continue;
                }

                victim = _live[random.Next(_live.Count)];
                _live.Remove(victim);
            }

            var record = new KillRecord(clock.Seconds, victim.Name);
            victim.Kill();
            Kills.Add(record);
            progress.WriteLine($"[{clock.Seconds,6:F1}s] killed {victim.Name} (pid {victim.Id}); starting a replacement");
            _replacements.Add(ReplaceAsync(record, clock, stop));
        }
    }

    /// <summary>Waits for the replacements still starting, up to <paramref name="limit"/>.</summary>
    public async Task SettleAsync(TimeSpan limit)
    {
        try
        {
            await Task.WhenAll(_replacements).WaitAsync(limit).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException or InvalidOperationException)
        {
            // A replacement that did not come up is reported by its record; the processes are killed at the end anyway.
        }
    }

    /// <summary>The silos alive now.</summary>
    public IReadOnlyList<ChildProcess> Live()
    {
        lock (_live)
        {
            return [.. _live];
        }
    }

    private async Task ReplaceAsync(KillRecord record, RunClock clock, CancellationToken stop)
    {
        try
        {
            var replacement = await network.StartSiloAsync(activeSilos: null, stop).ConfigureAwait(false);
            record.ReplacementActiveSeconds = clock.Seconds - record.AtSeconds;
            record.Replacement = replacement.Name;
            Add(replacement);
            progress.WriteLine($"[{clock.Seconds,6:F1}s] {replacement.Name} active, replacing {record.Silo}");
        }
        catch (Exception e) when (e is InvalidOperationException or OperationCanceledException)
        {
            progress.WriteLine($"[{clock.Seconds,6:F1}s] the replacement of {record.Silo} did not come up: {e.Message}");
        }
    }
}
