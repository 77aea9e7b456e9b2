using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Iris.Chaos;

/// <summary>One run: start the silos, one member process per silo and the runner's client; put requests, broadcasts
/// and tunnels on the cluster while killing a silo every so often (or, with <c>--overload</c>, while overloading other
/// clusters of the same members in the middle half of the run); then stop the load, read the members' files and
/// report.</summary>
internal sealed class ChaosRun(ChaosSettings settings, TextWriter progress)
{
    private static readonly TimeSpan SettleBroadcasts = TimeSpan.FromSeconds(3);

    // Requests give up after their timeout plus 2 s, tunnels drain for at most 10 s and close for 5: more than this is
    // a hang of the runner's client, reported rather than waited for.
    private static readonly TimeSpan LoadsStopLimit = TimeSpan.FromSeconds(30);

    /// <summary>Seconds after the overload phase that its last requests may take (timeout plus 2 s, and more).</summary>
    private const int OverloadTail = 10;

    public async Task<ChaosReport> RunAsync(CancellationToken cancellationToken)
    {
        var time = TimeProvider.System;
        var started = time.GetTimestamp();
        var directory = settings.Directory ?? Path.Combine(Path.GetTempPath(), $"iris-chaos-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Environment.ProcessId}");
        System.IO.Directory.CreateDirectory(directory);
        var network = new ChaosNetwork(directory);
        progress.WriteLine($"network: discovery ports {network.DiscoveryPort}-{network.DiscoveryPort + 15}, files in {directory}");

        var fleet = new SiloFleet(network, progress);
        for (var i = 1; i <= settings.Silos; i++)
        {
            fleet.Add(await network.StartSiloAsync(i, cancellationToken).ConfigureAwait(false));
            progress.WriteLine($"silo {i} of {settings.Silos} active ({time.GetElapsedTime(started).TotalSeconds:F1}s)");
        }

        var members = await Task.WhenAll(Enumerable.Range(1, settings.Silos).Select(i => network.StartMemberAsync(i, settings.Overload, cancellationToken))).ConfigureAwait(false);
        progress.WriteLine($"{members.Length} members registered ({time.GetElapsedTime(started).TotalSeconds:F1}s)");

        var phases = new OverloadPhases(settings.Seconds);
        var overload = settings.Overload
            ? await OverloadCallers.StartAsync(network, members.Length, settings.OverloadFactor, settings.RequestTimeout, phases.OverloadTo - phases.OverloadFrom + OverloadTail, cancellationToken).ConfigureAwait(false)
            : null;

        var slowCalls = new SlowCalls();
        using var client = await network.StartClientAsync(slowCalls, cancellationToken).ConfigureAwait(false);
        var iris = client.Services.GetRequiredService<IIrisClient>();
        await WarmUpAsync(iris, cancellationToken).ConfigureAwait(false);
        var startup = time.GetElapsedTime(started).TotalSeconds;
        progress.WriteLine($"load starts ({startup:F1}s after start)");

        var clock = new RunClock(time);
        slowCalls.Clock = clock;
        // An overload run adds a warm-up before its phases; a chaos run measures from the start.
        var loadSeconds = overload is null ? settings.Seconds : phases.End;
        var requests = new RequestLoad(iris, clock, settings.RequestTimeout, loadSeconds);
        var broadcasts = new BroadcastLoad(iris, clock, settings.BroadcastsPerSecond);
        var tunnels = new TunnelLoad(iris);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var loads = new[]
        {
            requests.RunAsync(settings.Callers, stop.Token),
            broadcasts.RunAsync(stop.Token),
            tunnels.RunAsync(settings.Tunnels, stop.Token),
        };
        var siloMemory = new MemorySampler(fleet.Live, clock);
        var memberMemory = new MemorySampler(() => [.. members.Select(m => m.Process)], clock);
        var sampling = Task.WhenAll(siloMemory.RunAsync(stop.Token), memberMemory.RunAsync(stop.Token));
        var killing = overload is null
            ? fleet.RunKillsAsync(clock, settings.Seconds, settings.KillEvery, new Random(settings.Seed), stop.Token)
            : Task.CompletedTask;
        var cpu = new CpuAccount(
            new Dictionary<string, Func<IReadOnlyList<ChildProcess>>>
            {
                ["silos"] = fleet.Live,
                ["members"] = () => [.. members.Select(m => m.Process)],
                ["overloadCallers"] = () => overload is null ? [] : [overload.Process],
            },
            clock);
        cpu.Mark();
        var overloading = overload is null ? Task.FromResult(new OverloadCallerResult([], [])) : OverloadAsync(overload, phases, clock, cpu, cancellationToken);

        var lastReported = 0;
        while (clock.Seconds < loadSeconds)
        {
            await clock.DelayUntilAsync(Math.Min(loadSeconds, lastReported + 5), cancellationToken).ConfigureAwait(false);
            lastReported = clock.Second;
            progress.WriteLine($"[{clock.Seconds,6:F1}s] requests {requests.Requests}, succeeded {requests.Succeeded}, unanswered {requests.Unanswered}, tunnels opened {tunnels.Opened}");
        }

        var (overloaded, overloadCalls) = await overloading.ConfigureAwait(false);
        cpu.Mark();
        await stop.CancelAsync().ConfigureAwait(false);
        await WithinAsync(Task.WhenAll(loads), LoadsStopLimit, "the load did not stop").ConfigureAwait(false);
        await IgnoreCancellationAsync(killing).ConfigureAwait(false);
        await sampling.ConfigureAwait(false);
        progress.WriteLine($"[{clock.Seconds,6:F1}s] load stopped; letting broadcasts settle");
        await Task.Delay(SettleBroadcasts, time, cancellationToken).ConfigureAwait(false);
        await fleet.SettleAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);

        // The members stop before their files are read; their lines were flushed when written.
        foreach (var (member, _) in members)
        {
            member.Kill();
        }

        overload?.Kill();
        var audit = ExecutionAudit.Read(
            [.. members.Select(m => m.File)], requests.SucceededIds, broadcasts.Accepted,
            overload is null ? [] : [.. members.Select(m => m.File + MemberProgram.OverloadSuffix)], overload?.RefusedFile);
        await StopQuietlyAsync(client).ConfigureAwait(false);

        var perSecond = requests.SucceededPerSecond();
        var kills = fleet.Kills.Select((kill, i) =>
        {
            var windowEnd = i + 1 < fleet.Kills.Count ? fleet.Kills[i + 1].AtSeconds : settings.Seconds;
            var outcome = Recovery.Measure(perSecond, kill.AtSeconds, windowEnd);
            return new KillSummary(
                Math.Round(kill.AtSeconds, 2), kill.Silo, kill.Replacement, Round(kill.ReplacementActiveSeconds),
                Math.Round(outcome.Baseline, 1), outcome.Lowest, Math.Round(outcome.Seconds, 2), outcome.Recovered);
        }).ToList();

        return new ChaosReport
        {
            Requests = requests.Requests,
            Succeeded = requests.Succeeded,
            FailedTyped = requests.FailedTyped.Snapshot(),
            Unanswered = requests.Unanswered,
            ExecutedTwice = audit.ExecutedTwice,
            TunnelMessagesLost = tunnels.Lost,
            TunnelMessagesReordered = tunnels.Reordered,
            TunnelsFailedWithError = tunnels.FailedWithError,
            BroadcastDuplicates = audit.BroadcastDuplicates,
            RecoverySeconds = kills.Count == 0 ? 0 : kills.Max(k => k.RecoverySeconds),
            MaxSiloMemoryMb = siloMemory.MaxMb(),
            OverloadedTyped = overload is null ? null : Sum(overloaded.Select(c => c.OverloadedTyped), nameof(IrisOverloadedException), nameof(IrisTimeoutException)),
            OverloadUnanswered = overload is null ? null : overloaded.Sum(c => c.Unanswered),
            HealthyThroughputRatio = overload is null ? null : phases.Measure(perSecond).Ratio,
            Silos = settings.Silos,
            Seconds = settings.Seconds,
            KillEvery = overload is null ? settings.KillEvery : null,
            Seed = settings.Seed,
            FailedUntyped = requests.FailedUntyped.Snapshot(),
            WrongReplies = requests.WrongReplies,
            UnansweredLateOutcomes = requests.LateOutcomes.Snapshot(),
            SucceededNotExecuted = audit.SucceededNotExecuted,
            ExecutionsRecorded = audit.ExecutionsRecorded,
            BroadcastsSent = broadcasts.Sent,
            BroadcastsAccepted = broadcasts.Accepted.Count,
            BroadcastsFailed = broadcasts.Failed.Snapshot(),
            BroadcastsUnanswered = broadcasts.Unanswered,
            BroadcastDeliveriesMissing = audit.BroadcastDeliveriesMissing,
            BroadcastMissingSamples = audit.MissingBroadcastSamples,
            BroadcastsUnansweredLateOutcomes = broadcasts.LateOutcomes.Snapshot(),
            TunnelsOpened = tunnels.Opened,
            TunnelsClosedCleanly = tunnels.ClosedCleanly,
            TunnelFailures = tunnels.Failures.Snapshot(),
            TunnelOpenFailures = tunnels.OpenFailures.Snapshot(),
            TunnelMessagesSent = tunnels.Sent,
            TunnelMessagesDuplicated = tunnels.Duplicated,
            TunnelMessagesCorrupt = tunnels.Corrupt,
            TunnelMessagesReorderedBeforeFailure = tunnels.ReorderedBeforeFailure,
            SlowCalls = slowCalls.Counts(),
            SlowCallSamples = slowCalls.Samples(),
            Kills = kills,
            Overload = overload is null ? null : new OverloadSummary
            {
                Factor = settings.OverloadFactor,
                BeforeFrom = phases.BeforeFrom,
                OverloadFrom = phases.OverloadFrom,
                OverloadTo = phases.OverloadTo,
                SettleSeconds = OverloadPhases.SettleSeconds,
                Healthy = phases.Measure(perSecond),
                Requests = overloaded.Sum(c => c.Requests),
                Succeeded = overloaded.Sum(c => c.Succeeded),
                OtherTyped = Sum(overloaded.Select(c => c.OtherTyped)),
                Untyped = Sum(overloaded.Select(c => c.Untyped)),
                WrongReplies = overloaded.Sum(c => c.WrongReplies),
                ExecutionsRecorded = audit.OverloadExecutionsRecorded,
                ExecutedTwice = audit.OverloadExecutedTwice,
                OverloadedButExecuted = audit.OverloadedButExecuted,
                Clusters = overloaded,
                Calls = overloadCalls,
                MemberCallsPerRequest = MemberCallsPerRequest(overloadCalls, overloaded.Sum(c => c.Requests)),
                SiloMemoryMb = PhaseMemory.Of(siloMemory, phases),
                MemberMemoryMb = PhaseMemory.Of(memberMemory, phases),
                SiloMemoryMbPerSecond = siloMemory.Series(),
                CpuCores = cpu.Between() is [_, var before, var during, var after] ? new PhaseCpu(before, during, after) : null,
            },
            SucceededPerSecond = perSecond,
            FailedPerSecond = requests.FailedPerSecond(),
            FailureSamples = [.. requests.FailureSamples],
            StartupSeconds = Math.Round(startup, 1),
            WallSeconds = Math.Round(time.GetElapsedTime(started).TotalSeconds, 1),
            Directory = directory,
        };
    }

    private static double? Round(double? value) => value is { } v ? Math.Round(v, 2) : null;

    /// <summary>Counts by name summed over several tallies; <paramref name="always"/> are listed even when 0.</summary>
    private static SortedDictionary<string, long> Sum(IEnumerable<SortedDictionary<string, long>> counts, params string[] always)
    {
        var sum = new SortedDictionary<string, long>(always.ToDictionary(name => name, _ => 0L), StringComparer.Ordinal);
        foreach (var (name, count) in counts.SelectMany(c => c))
        {
            sum[name] = sum.GetValueOrDefault(name) + count;
        }

        return sum;
    }

    /// <summary>Overloads the slow clusters from the start to the end of the overload phase; returns what their callers
    /// saw, once every request sent has its outcome.</summary>
    /// <summary>Calls to member hosts (<c>Request</c>, whatever their outcome) per request sent.</summary>
    private static double MemberCallsPerRequest(SortedDictionary<string, long> calls, long requests) =>
        requests == 0 ? 0 : Math.Round(calls.Where(c => c.Key.Contains(".Request ->", StringComparison.Ordinal)).Sum(c => c.Value) / (double)requests, 2);

    private async Task<OverloadCallerResult> OverloadAsync(
        OverloadCallers overload, OverloadPhases phases, RunClock clock, CpuAccount cpu, CancellationToken cancellationToken)
    {
        await clock.DelayUntilAsync(OverloadPhases.BurstFrom, cancellationToken).ConfigureAwait(false);
        await overload.StartAsync().ConfigureAwait(false);
        await clock.DelayUntilAsync(OverloadPhases.BurstTo, cancellationToken).ConfigureAwait(false);
        var burst = await overload.StopAsync(cancellationToken).ConfigureAwait(false);
        progress.WriteLine($"[{clock.Seconds,6:F1}s] warm-up burst of the overload: {burst.Clusters.Sum(c => c.Requests)} requests");
        await clock.DelayUntilAsync(phases.BeforeFrom, cancellationToken).ConfigureAwait(false);
        cpu.Mark();
        await clock.DelayUntilAsync(phases.OverloadFrom, cancellationToken).ConfigureAwait(false);
        cpu.Mark();
        await overload.StartAsync().ConfigureAwait(false);
        progress.WriteLine($"[{clock.Seconds,6:F1}s] overload starts");
        await clock.DelayUntilAsync(phases.OverloadTo, cancellationToken).ConfigureAwait(false);
        cpu.Mark();
        var results = await overload.StopAsync(cancellationToken).ConfigureAwait(false);
        progress.WriteLine($"[{clock.Seconds,6:F1}s] overload stopped: " + string.Join(", ", results.Clusters.Select(r => $"{r.Cluster} {r.Requests} requests, {r.Succeeded} succeeded, {r.OverloadedTyped.Values.Sum()} overloaded or timed out, {r.Unanswered} unanswered")));
        return results;
    }

    /// <summary>Waits until a request gets its echo, so the load starts on a cluster that serves.</summary>
    private static async Task WarmUpAsync(IIrisClient iris, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            try
            {
                await iris.RequestAsync(MemberProgram.Cluster, Ids.NewPayload(out _), TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (IrisException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(200, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task WithinAsync(Task task, TimeSpan limit, string what)
    {
        try
        {
            await task.WaitAsync(limit).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            progress.WriteLine($"{what} within {limit}; reporting what was counted");
        }
    }

    private static async Task IgnoreCancellationAsync(Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Stopped with the load.
        }
    }

    private static async Task StopQuietlyAsync(IHost client)
    {
        try
        {
            await client.StopAsync(new CancellationTokenSource(TimeSpan.FromSeconds(5)).Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or Orleans.Runtime.OrleansException)
        {
            // The silos go next anyway.
        }
    }
}
