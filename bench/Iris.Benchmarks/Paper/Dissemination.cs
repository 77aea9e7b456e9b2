using System.Diagnostics;
using System.Globalization;
using Iris.Overlay.Security;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Iris.Benchmarks.Paper;

/// <summary>
/// Broadcast and publish/subscribe on Iris: 4 <see cref="BenchSilo"/> processes, each with one member of the
/// cluster and one subscriber of the topic, and an Orleans client in this process sending. A cell sends a fixed number
/// of messages from one sender that keeps as many unaccepted as the NATS publisher may keep undelivered (4,096
/// messages or 1 MiB: <see cref="NatsWorkloads.InFlight"/>; each <c>BroadcastAsync</c>/<c>PublishAsync</c> returns
/// once a rendezvous accepted it) and ends when every member has received every message; deliveries/s counts each
/// delivery to each member.
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
    /// Broadcasts and publishes 20,000 messages of 16 B each at least once, then again until the runtime's background
    /// compiler in these processes (the harness included) used less than <see cref="Compilation.SettledShare"/> of a
    /// core over one round, or <paramref name="most"/> has passed. Returns that share of the last round.
    /// </summary>
    public Task<double> WarmUpAsync(TimeSpan most) => Compilation.SettleAsync(
        async () =>
        {
            await MeasureAsync(broadcast: true, 16, 20_000);
            await MeasureAsync(broadcast: false, 16, 20_000);
        },
        DateTime.UtcNow,
        most,
        () => _silos.Select(s => s.Id).Append(Environment.ProcessId),
        "iris dissemination");

    /// <summary>Sends <paramref name="messages"/> broadcasts (or publications) of <paramref name="payload"/> bytes
    /// and measures their delivery to every member (subscriber).</summary>
    public async Task<Measurement> MeasureAsync(bool broadcast, int payload, int messages)
    {
        var iris = _client.Services.GetRequiredService<IIrisClient>();
        var expected = (long)messages * _silos.Count;
        foreach (var silo in _silos)
        {
            await silo.AskAsync("reset", "RESET", TimeSpan.FromSeconds(10));
        }

        var cpuBefore = Cpu();
        var started = Stopwatch.GetTimestamp();
        // The window: the last InFlight sends, oldest first; a send waits for the one it replaces to be accepted (which
        // throws should it have failed). Nothing per message but the message and Iris' own task.
        var window = new Task[NatsWorkloads.InFlight(payload)];
        for (var i = 0; i < messages; i++)
        {
            var slot = i % window.Length;
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

        var kind = broadcast ? "broadcast" : "publish";
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

        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var cpu = Cpu() - cpuBefore;
        var latencies = new List<(double P50, double P99)>();
        foreach (var silo in _silos)
        {
            var line = await silo.AskAsync($"latency {kind}", "LATENCY ", TimeSpan.FromSeconds(10));
            var fields = line.Split(' ').Skip(1).Select(f => double.Parse(f[(f.IndexOf('=') + 1)..], CultureInfo.InvariantCulture)).ToArray();
            latencies.Add((fields[0], fields[1]));
        }

        // Each member's own percentiles: the median of their p50s, the highest p99.
        var p50s = latencies.Select(l => l.P50).Order().ToArray();
        return new Measurement(
            delivered / seconds,
            delivered * (double)payload / 1e6 / seconds,
            p50s[p50s.Length / 2],
            latencies.Max(l => l.P99),
            cpu.TotalMicroseconds / delivered);
    }

    /// <summary>Streams messages of <paramref name="payload"/> bytes (at least 16: a timestamp and a sequence number) one
    /// way through one tunnel to a member for <paramref name="duration"/>, then closes it; the cell ends when the member
    /// has taken every message, in order.</summary>
    public async Task<Measurement> StreamAsync(int payload, TimeSpan duration)
    {
        var iris = _client.Services.GetRequiredService<IIrisClient>();
        foreach (var silo in _silos)
        {
            await silo.AskAsync("reset", "RESET", TimeSpan.FromSeconds(10));
        }

        var message = new byte[Math.Max(payload, 16)];
        var cpuBefore = Cpu();
        var started = Stopwatch.GetTimestamp();
        var end = started + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        long sent = 0;
        await using (var tunnel = await iris.OpenTunnelAsync(BenchSilo.Cluster, TimeSpan.FromSeconds(30)))
        {
            while (Stopwatch.GetTimestamp() < end)
            {
                // The tunnel copies a message before SendAsync returns: one buffer, its header rewritten.
                BenchSilo.Stamp(message);
                BitConverter.TryWriteBytes(message.AsSpan(8), sent);
                await tunnel.SendAsync(message);
                sent++;
            }

            await tunnel.CloseAsync();
        }

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        long delivered;
        while ((delivered = await DeliveredAsync("tunnel")) < sent)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"tunnel: {delivered} of {sent} messages taken after 60 s\nsilo output:\n{string.Join("\n---\n", _silos.Select(silo => silo.Log))}");
            }

            await Task.Delay(20);
        }

        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var cpu = Cpu() - cpuBefore;
        if (delivered != sent || await DeliveredAsync("reordered") != 0)
        {
            throw new InvalidOperationException($"tunnel: {sent} messages sent, {delivered} taken, {await DeliveredAsync("reordered")} out of order or lost");
        }

        // One member took the tunnel: its percentiles (the others have none).
        (double P50, double P99) latency = default;
        foreach (var silo in _silos)
        {
            var line = await silo.AskAsync("latency tunnel", "LATENCY ", TimeSpan.FromSeconds(10));
            var fields = line.Split(' ').Skip(1).Select(f => double.Parse(f[(f.IndexOf('=') + 1)..], CultureInfo.InvariantCulture)).ToArray();
            latency = fields[1] > latency.P99 ? (fields[0], fields[1]) : latency;
        }

        return new Measurement(sent / seconds, sent * (double)payload / 1e6 / seconds, latency.P50, latency.P99, cpu.TotalMicroseconds / sent);
    }

    private async Task<long> DeliveredAsync(string kind)
    {
        long total = 0;
        foreach (var silo in _silos)
        {
            var line = await silo.AskAsync("counts", "COUNTS ", TimeSpan.FromSeconds(10));
            var field = line.Split(' ').First(f => f.StartsWith(kind + "=", StringComparison.Ordinal));
            total += long.Parse(field[(kind.Length + 1)..], CultureInfo.InvariantCulture);
        }

        return total;
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
