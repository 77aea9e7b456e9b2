using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Iris.Hosting;
using Iris.Overlay.Security;
using Iris.Tests.Relay;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Iris.Benchmarks;

/// <summary>
/// The relay path beside an Orleans client's, over the same silos: two Iris.Silo processes of this repository's Release
/// build on loopback (each serving the echo cluster in-silo and the relay protocol on a port of its own), an Orleans
/// client (<see cref="IIrisClient"/>) and a relay client (the test suite's client of the protocol, one connection) in
/// this process. Request/reply at 1, 16 and 128 concurrent callers (16 B), then round-trip latency of a broadcast and a
/// publication that come back to the sender (a member of its own cluster, a subscriber of its own topic), and of a
/// 16-byte tunnel message to the echo member and back. Prints one line per workload with the relay-over-Orleans ratios
/// and writes <c>bench/results/relay.json</c>.
/// </summary>
public static class RelayThroughput
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    public static async Task RunAsync(string[] args)
    {
        var seconds = RequestThroughput.Option(args, "--seconds", 5);
        var root = RequestThroughput.FindRoot();
        var silo = Path.Combine(root, "src", "Iris.Silo", "bin", "Release", "net10.0", "Iris.Silo.dll");
        if (!File.Exists(silo))
        {
            throw new FileNotFoundException($"Build the silo first: dotnet build -c Release src/Iris.Silo ({silo} is missing).");
        }

        var key = Convert.ToBase64String(NetworkKey.Generate().Bytes);
        var discovery = 49000 + (Random.Shared.Next(0, 60) * 16);
        var relayPorts = new[] { PortPicker.AnyFree(), PortPicker.AnyFree() };
        var silos = new List<Process>();
        var results = new List<object>();
        try
        {
            for (var i = 0; i < 2; i++)
            {
                silos.Add(await RequestThroughput.StartSiloAsync(silo, key, discovery, i + 1, new Dictionary<string, string> { ["Iris__Relay__Port"] = relayPorts[i].ToString(CultureInfo.InvariantCulture) }));
            }

            using var client = await RequestThroughput.StartClientAsync(key, discovery);
            var iris = client.Services.GetRequiredService<IIrisClient>();
            var relayEndpoint = new IPEndPoint(IPAddress.Loopback, relayPorts[0]);
            await using var relay = await RelayTestClient.ConnectAsync(relayEndpoint);
            var request = new byte[16];

            foreach (var callers in new[] { 1, 16, 128 })
            {
                var orleans = await MeasureAsync(() => iris.RequestAsync("echo", request, Timeout), callers, seconds);
                var relayed = await MeasureAsync(() => relay.RequestAsync("echo", request, Timeout), callers, seconds);
                results.Add(Report($"request callers={callers}", orleans, relayed));
            }

            // A broadcast and a publication that come back to their sender: both kinds of client as member and subscriber.
            var irisBroadcasts = new Inbox();
            await using (await iris.RegisterAsync("bench-relay-orleans", irisBroadcasts))
            await using (await iris.SubscribeAsync("bench-relay-orleans", irisBroadcasts))
            {
                var handler = new RelayMemberHandler();
                await using var member = await RelayTestClient.ConnectAsync(relayEndpoint, "bench-relay", handler);
                var events = System.Threading.Channels.Channel.CreateUnbounded<byte[]>();
                await member.SubscribeAsync("bench-relay", e => events.Writer.WriteAsync(e).AsTask());
                await Task.Delay(1000);
                var orleans = await RoundTripsAsync(() => iris.BroadcastAsync("bench-relay-orleans", [1]), () => irisBroadcasts.Reader.ReadAsync().AsTask(), seconds);
                var relayed = await RoundTripsAsync(() => member.BroadcastAsync("bench-relay", [1]), () => handler.Broadcasts.Reader.ReadAsync().AsTask(), seconds);
                results.Add(Report("broadcast round trip", orleans, relayed));
                orleans = await RoundTripsAsync(() => iris.PublishAsync("bench-relay-orleans", [1]), () => irisBroadcasts.Reader.ReadAsync().AsTask(), seconds);
                relayed = await RoundTripsAsync(() => member.PublishAsync("bench-relay", [1]), () => events.Reader.ReadAsync().AsTask(), seconds);
                results.Add(Report("publish round trip", orleans, relayed));
            }

            await using (var tunnel = await iris.OpenTunnelAsync("echo", Timeout))
            {
                var relayTunnel = await relay.TunnelAsync("echo", Timeout) ?? throw new InvalidOperationException("the relay could not open a tunnel to the echo cluster");
                var orleans = await RoundTripsAsync(() => tunnel.SendAsync(request).AsTask(), () => tunnel.ReceiveAsync().AsTask(), seconds);
                var relayed = await RoundTripsAsync(() => relayTunnel.SendAsync(request, Timeout), () => relayTunnel.ReceiveAsync(Timeout)!, seconds);
                results.Add(Report("tunnel round trip", orleans, relayed));
                await relayTunnel.CloseAsync();
            }

            await client.StopAsync();
            Directory.CreateDirectory(Path.Combine(root, "bench", "results"));
            File.WriteAllText(Path.Combine(root, "bench", "results", "relay.json"), JsonSerializer.Serialize(new { machine = new { Environment.ProcessorCount, os = Environment.OSVersion.ToString() }, seconds, workloads = results }, new JsonSerializerOptions { WriteIndented = true }));
        }
        finally
        {
            foreach (var process in silos)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }
        }
    }

    private static object Report(string workload, Measured orleans, Measured relayed)
    {
        var rateRatio = relayed.Rate / orleans.Rate;
        var costRatio = relayed.P50 / orleans.P50;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{workload,-24} orleans {orleans.Rate,8:F0}/s p50 {orleans.P50,6:F2} ms p99 {orleans.P99,6:F2} ms | relay {relayed.Rate,8:F0}/s p50 {relayed.P50,6:F2} ms p99 {relayed.P99,6:F2} ms | relay/orleans rate {rateRatio:F2} p50 {costRatio:F2}"));
        return new { workload, orleans, relay = relayed, relayOverOrleansRate = rateRatio, relayOverOrleansP50 = costRatio };
    }

    private static async Task<Measured> MeasureAsync(Func<Task> call, int callers, int seconds)
    {
        await RequestThroughput.RunCallersAsync(call, callers, TimeSpan.FromSeconds(1));
        var (count, latencies) = await RequestThroughput.RunCallersAsync(call, callers, TimeSpan.FromSeconds(seconds));
        return Measured.Of(count / (double)seconds, latencies);
    }

    /// <summary>Sends one message and waits for it to come back, one at a time.</summary>
    private static async Task<Measured> RoundTripsAsync(Func<Task> send, Func<Task> receive, int seconds)
    {
        var latencies = new List<double>();
        var end = Stopwatch.GetTimestamp() + (long)((seconds + 1) * Stopwatch.Frequency);
        var warm = Stopwatch.GetTimestamp() + Stopwatch.Frequency;
        while (Stopwatch.GetTimestamp() < end)
        {
            var started = Stopwatch.GetTimestamp();
            await send();
            await receive().WaitAsync(Timeout);
            if (started > warm)
            {
                latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
        }

        return Measured.Of(latencies.Count / (double)seconds, latencies);
    }

    private sealed record Measured(double Rate, double P50, double P99)
    {
        public static Measured Of(double rate, List<double> latencies)
        {
            latencies.Sort();
            return latencies.Count == 0
                ? new Measured(rate, double.NaN, double.NaN)
                : new Measured(rate, latencies[latencies.Count / 2], latencies[Math.Min(latencies.Count - 1, (int)(latencies.Count * 0.99))]);
        }
    }

    /// <summary>An Orleans-side member and subscriber that hands what arrives to the measuring loop.</summary>
    private sealed class Inbox : IClusterHandler, ITopicHandler
    {
        private readonly System.Threading.Channels.Channel<byte[]> _arrived = System.Threading.Channels.Channel.CreateUnbounded<byte[]>();

        public System.Threading.Channels.ChannelReader<byte[]> Reader => _arrived.Reader;

        public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken) => Task.FromResult(request);

        public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken) => _arrived.Writer.WriteAsync(message, cancellationToken).AsTask();

        public Task HandlePublishAsync(byte[] message, CancellationToken cancellationToken) => _arrived.Writer.WriteAsync(message, cancellationToken).AsTask();
    }
}
