using System.Diagnostics;
using System.Globalization;
using Iris.Overlay.Security;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Iris.Benchmarks.Paper;

/// <summary>
/// Broadcast and publish/subscribe on Iris: 4 <see cref="BenchSilo"/> processes, each with one member of the
/// cluster and one subscriber of the topic, and an Orleans client in this process sending. In a cell one sender sends
/// without pause, keeping as many unaccepted as the NATS publisher may keep undelivered (4,096 messages or 1 MiB:
/// <see cref="NatsWorkloads.InFlight"/>; each <c>BroadcastAsync</c>/<c>PublishAsync</c> returns once a rendezvous
/// accepted it); after a warm-up the deliveries to every member are counted over the cell's window, as the NATS
/// fan-out's are; the cell ends when every member has received every message sent.
/// </summary>
internal sealed class Dissemination : IAsyncDisposable
{
    private readonly List<ChildProcess> _silos;
    private readonly IHost _client;

    private Dissemination(List<ChildProcess> silos, IHost client) => (_silos, _client) = (silos, client);

    public static async Task<Dissemination> StartAsync(int count)
    {
        var dll = typeof(BenchSilo).Assembly.Location;
        var key = Convert.ToBase64String(NetworkKey.Generate().Bytes);
        var discovery = 51000 + (Random.Shared.Next(0, 60) * 16);
        var environment = new Dictionary<string, string>
        {
            ["Iris__Network__Key"] = key,
            ["Iris__Network__Discovery__Port"] = discovery.ToString(CultureInfo.InvariantCulture),
        };
        // The first silo founds the network; the others start together and join it.
        Task<ChildProcess> Start() => ChildProcess.StartAsync(dll, ["iris-silo"], environment, "READY", TimeSpan.FromSeconds(90));
        List<ChildProcess> silos = [await Start()];
        silos.AddRange(await Task.WhenAll(Enumerable.Range(1, count - 1).Select(_ => Start())));

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (!(await silos[^1].AskAsync("silos", "SILOS ", TimeSpan.FromSeconds(10))).EndsWith($" {count}", StringComparison.Ordinal))
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"the {count} bench silos did not form one cluster");
            }

            await Task.Delay(500);
        }

        return new Dissemination(silos, await IrisSide.ConnectAsync(key, discovery));
    }

    public double PeakMemoryMb => _silos.Max(s => s.PeakMemoryMb);

    /// <summary>
    /// Broadcasts and publishes 20,000 messages of 16 B each, and streams 1-KiB messages through a tunnel for half a second,
    /// at least once, then again until the runtime's background
    /// compiler in these processes (the harness included) used less than <see cref="Compilation.SettledShare"/> of a
    /// core over one round, or <paramref name="most"/> has passed. Returns that share of the last round.
    /// </summary>
    public Task<double> WarmUpAsync(TimeSpan most) => Compilation.SettleAsync(
        async () =>
        {
            foreach (var broadcast in new[] { true, false })
            {
                await ResetAsync();
                var sent = await SendAsync(broadcast, 16, 20_000, CancellationToken.None);
                await DrainAsync(broadcast ? "broadcast" : "publish", sent);
            }

            // A tunnel too, for half a second: a run of the 64-KiB cells alone measured the tunnel's first calls.
            await ResetAsync();
            using var half = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
            await DrainAsync("tunnel", await StreamAsync(1024, half.Token));
        },
        DateTime.UtcNow,
        most,
        () => _silos.Select(s => s.Id).Append(Environment.ProcessId),
        "iris dissemination");

    /// <summary>
    /// Broadcasts (or publishes) messages of <paramref name="payload"/> bytes without pause, and measures their delivery
    /// to every member (subscriber) in the steady state, as the NATS fan-out is measured: after
    /// <paramref name="warmUp"/>, the deliveries, their latencies and the CPU time of every process over
    /// <paramref name="duration"/>. Then the sender stops, and the cell ends when every member has every message sent
    /// (it fails on a missing or a duplicate delivery).
    /// </summary>
    public Task<Measurement> MeasureAsync(bool broadcast, int payload, TimeSpan warmUp, TimeSpan duration) =>
        WindowAsync(broadcast ? "broadcast" : "publish", payload, warmUp, duration, stop => SendAsync(broadcast, payload, long.MaxValue, stop));

    /// <summary>
    /// Streams messages of <paramref name="payload"/> bytes (at least 16: a timestamp and a sequence number) one way
    /// through one tunnel to a member, measured as <see cref="MeasureAsync"/> measures (warm-up, then
    /// <paramref name="duration"/>), then closes it; the cell ends when the member has taken every message, in order.
    /// </summary>
    public Task<Measurement> StreamAsync(int payload, TimeSpan warmUp, TimeSpan duration) =>
        WindowAsync("tunnel", payload, warmUp, duration, stop => StreamAsync(payload, stop));

    private async Task<Measurement> WindowAsync(string kind, int payload, TimeSpan warmUp, TimeSpan duration, Func<CancellationToken, Task<long>> send)
    {
        await ResetAsync();
        using var stop = new CancellationTokenSource();
        var sending = Task.Run(() => send(stop.Token));
        try
        {
            await Task.WhenAny(sending, Task.Delay(warmUp));
            ThrowIfEnded(sending, kind);
            var (before, cpuBefore, started) = (await WindowEdgeAsync("start", kind), Cpu(), Stopwatch.GetTimestamp());
            await Task.WhenAny(sending, Task.Delay(duration));
            ThrowIfEnded(sending, kind);
            var (seconds, cpu, delivered) = (Stopwatch.GetElapsedTime(started).TotalSeconds, Cpu() - cpuBefore, await WindowEdgeAsync("end", kind) - before);
            if (delivered == 0)
            {
                throw new InvalidOperationException($"{kind}: no message was delivered in the measurement window");
            }

            var latencies = new List<(double P50, double P99)>();
            foreach (var silo in _silos)
            {
                var line = await silo.AskAsync($"latency {kind}", "LATENCY ", TimeSpan.FromSeconds(10));
                var fields = line.Split(' ').Skip(1).Select(f => double.Parse(f[(f.IndexOf('=') + 1)..], CultureInfo.InvariantCulture)).ToArray();
                // A tunnel has one member: the others have no samples.
                if (fields[1] > 0 || kind != "tunnel")
                {
                    latencies.Add((fields[0], fields[1]));
                }
            }

            await stop.CancelAsync();
            var sent = await sending;
            await DrainAsync(kind, sent);

            // Each member's own percentiles: the median of their p50s, the highest p99.
            var p50s = latencies.Select(l => l.P50).Order().ToArray();
            return new Measurement(
                delivered / seconds,
                delivered * (double)payload / 1e6 / seconds,
                p50s.Length == 0 ? 0 : p50s[p50s.Length / 2],
                latencies.Count == 0 ? 0 : latencies.Max(l => l.P99),
                cpu.TotalMicroseconds / delivered);
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAny(sending);
        }
    }

    // The sender ended before the window did: it failed (its error is the cell's), or it sent too few.
    private static void ThrowIfEnded(Task<long> sending, string kind)
    {
        if (sending.IsCompleted)
        {
            throw new InvalidOperationException($"{kind}: the sender stopped before the measurement window ended", sending.Exception?.InnerException);
        }
    }

    /// <summary>Sends up to <paramref name="messages"/> broadcasts (or publications), until <paramref name="stop"/>,
    /// keeping as many unaccepted as the NATS publisher may keep undelivered; returns how many were sent, once every
    /// one was accepted (or throws the first failure).</summary>
    private async Task<long> SendAsync(bool broadcast, int payload, long messages, CancellationToken stop)
    {
        var iris = _client.Services.GetRequiredService<IIrisClient>();
        // The window: the last InFlight sends, oldest first; a send waits for the one it replaces to be accepted (which
        // throws should it have failed). Nothing per message but the message and Iris' own task.
        var window = new Task[NatsWorkloads.InFlight(payload)];
        long sent = 0;
        for (; sent < messages && !stop.IsCancellationRequested; sent++)
        {
            var slot = (int)(sent % window.Length);
            if (window[slot] is { } oldest)
            {
                await oldest;
            }

            var message = new byte[Math.Max(payload, 8)];
            BenchSilo.Stamp(message);
            window[slot] = broadcast ? iris.BroadcastAsync(BenchSilo.Cluster, message) : iris.PublishAsync(BenchSilo.Topic, message);
        }

        // Every message accepted, or the first failure.
        await Task.WhenAll(window.Where(t => t is not null));
        return sent;
    }

    /// <summary>Streams through one tunnel until <paramref name="stop"/>, then closes it; returns how many messages were
    /// sent.</summary>
    private async Task<long> StreamAsync(int payload, CancellationToken stop)
    {
        var iris = _client.Services.GetRequiredService<IIrisClient>();
        var message = new byte[Math.Max(payload, 16)];
        long sent = 0;
        await using (var tunnel = await iris.OpenTunnelAsync(BenchSilo.Cluster, TimeSpan.FromSeconds(30)))
        {
            while (!stop.IsCancellationRequested)
            {
                // The tunnel copies a message before SendAsync returns: one buffer, its header rewritten.
                BenchSilo.Stamp(message);
                BitConverter.TryWriteBytes(message.AsSpan(8), sent);
                await tunnel.SendAsync(message);
                sent++;
            }

            await tunnel.CloseAsync();
        }

        return sent;
    }

    /// <summary>Waits until the members have every one of <paramref name="sent"/> messages (each member every
    /// broadcast and publication, one member every tunnel message, in order); fails after 60 s, or on a delivery too
    /// many.</summary>
    private async Task DrainAsync(string kind, long sent)
    {
        var expected = kind == "tunnel" ? sent : sent * _silos.Count;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        long delivered;
        while ((delivered = await DeliveredAsync(kind)) < expected)
        {
            if (DateTime.UtcNow > deadline)
            {
                var each = new List<string>();
                foreach (var silo in _silos)
                {
                    each.Add(await silo.AskAsync("counts", "COUNTS ", TimeSpan.FromSeconds(10)));
                }

                var warnings = string.Join("\n---\n", _silos.Select(silo => silo.Log));
                throw new TimeoutException($"{kind}: {delivered} of {expected} deliveries after 60 s; each member: {string.Join(" | ", each)}\nsilo output:\n{warnings}");
            }

            await Task.Delay(20);
        }

        var reordered = await DeliveredAsync("reordered");
        if (delivered != expected || (kind == "tunnel" && reordered != 0))
        {
            throw new InvalidOperationException($"{kind}: {sent} messages sent, {delivered} deliveries where {expected} were due, {reordered} tunnel messages out of order");
        }
    }

    private async Task ResetAsync()
    {
        foreach (var silo in _silos)
        {
            await silo.AskAsync("reset", "RESET", TimeSpan.FromSeconds(10));
        }
    }

    /// <summary>Starts or ends every member's latency sampling, and returns their deliveries of
    /// <paramref name="kind"/> at that moment.</summary>
    private async Task<long> WindowEdgeAsync(string edge, string kind)
    {
        long total = 0;
        foreach (var silo in _silos)
        {
            total += Field(await silo.AskAsync($"window {edge}", "WINDOW ", TimeSpan.FromSeconds(10)), kind);
        }

        return total;
    }

    private async Task<long> DeliveredAsync(string kind)
    {
        long total = 0;
        foreach (var silo in _silos)
        {
            total += Field(await silo.AskAsync("counts", "COUNTS ", TimeSpan.FromSeconds(10)), kind);
        }

        return total;
    }

    private static long Field(string line, string kind)
    {
        var field = line.Split(' ').First(f => f.StartsWith(kind + "=", StringComparison.Ordinal));
        return long.Parse(field[(kind.Length + 1)..], CultureInfo.InvariantCulture);
    }

    private TimeSpan Cpu() => Environment.CpuUsage.TotalTime + _silos.Aggregate(TimeSpan.Zero, (sum, s) => sum + s.CpuTime);

    public async ValueTask DisposeAsync()
    {
        await _client.StopAsync();
        _client.Dispose();
        foreach (var silo in _silos)
        {
            await silo.DisposeAsync();
        }
    }
}
