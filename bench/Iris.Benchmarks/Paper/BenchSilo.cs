using System.Diagnostics;
using System.Globalization;
using Iris.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Iris.Benchmarks.Paper;

/// <summary>
/// An Iris silo process of the paper harness for the workloads whose deliveries are counted where they arrive
/// (<c>iris-silo</c>): <c>UseIris</c> as an application embeds it (overlay membership, network key on, loopback in
/// development), one member of <see cref="Cluster"/> and one subscriber of <see cref="Topic"/>. Each delivery's latency
/// is the time since the sender's <see cref="Stopwatch"/> timestamp in the message's first 8 bytes (one monotonic clock
/// for every process of the machine). The member also takes tunnels and counts their messages, checking that each
/// carries the next sequence number of its tunnel (bytes 8 to 15). Standard input: <c>reset</c> forgets the counts;
/// <c>counts</c> prints <c>COUNTS broadcast=&lt;n&gt; publish=&lt;n&gt; tunnel=&lt;n&gt; reordered=&lt;n&gt;</c>;
/// <c>window start</c> forgets the latency samples and samples from then on, <c>window end</c> stops sampling, and
/// both print the counts as <c>counts</c> does, taken at that moment; <c>latency broadcast|publish|tunnel</c> prints
/// <c>LATENCY p50=&lt;ms&gt; p99=&lt;ms&gt;</c> of the samples (since <c>reset</c> or <c>window start</c>).
/// </summary>
internal static class BenchSilo
{
    public const string Cluster = "bench";
    public const string Topic = "bench-topic";

    public static async Task RunAsync()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { EnvironmentName = Environments.Development });
        // Warnings and errors only, one line each: what went wrong is in the process's output.
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(console => (console.SingleLine, console.TimestampFormat) = (true, "HH:mm:ss.fff "));
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        var counter = new Counter();
        builder.UseOrleans(silo => silo.UseIris(options =>
        {
            options.SiloPort = PortPicker.AnyFree();
            options.GatewayPort = PortPicker.AnyFree();
        }));
        builder.Services.AddSingleton(counter);
        using var host = builder.Build();
        await host.StartAsync();
        var iris = host.Services.GetRequiredService<IIrisClient>();
        await using var member = await iris.RegisterAsync(Cluster, counter);
        await using var subscription = await iris.SubscribeAsync(Topic, counter);
        var membership = host.Services.GetRequiredService<IClusterMembershipService>();
        Console.WriteLine("READY");
        while (await Console.In.ReadLineAsync() is { } line)
        {
            switch (line.Split(' '))
            {
                case ["reset"]:
                    counter.Reset();
                    Console.WriteLine("RESET");
                    break;
                case ["counts"]:
                    Console.WriteLine($"COUNTS {counter.Counts()}");
                    break;
                case ["window", var edge] when edge is "start" or "end":
                    counter.Sample(edge == "start");
                    Console.WriteLine($"WINDOW {counter.Counts()}");
                    break;
                case ["latency", var kind]:
                    var (p50, p99) = (kind switch { "broadcast" => counter.Broadcasts, "publish" => counter.Publications, _ => counter.TunnelMessages }).Percentiles();
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"LATENCY p50={p50:F3} p99={p99:F3}"));
                    break;
                case ["silos"]:
                    Console.WriteLine($"SILOS {membership.CurrentSnapshot.Members.Values.Count(m => m.Status == SiloStatus.Active)}");
                    break;
            }
        }

        await host.StopAsync();
    }

    /// <summary>Stamps <paramref name="message"/> with the time it is sent.</summary>
    public static void Stamp(byte[] message) => BitConverter.TryWriteBytes(message, Stopwatch.GetTimestamp());

    /// <summary>The member and subscriber: counts what arrives and samples how long it took.</summary>
    private sealed class Counter : IClusterHandler, ITopicHandler
    {
        public Deliveries Broadcasts { get; } = new();

        public Deliveries Publications { get; } = new();

        public Deliveries TunnelMessages { get; } = new();

        private long _reordered;

        /// <summary>Tunnel messages that did not carry the next sequence number of their tunnel.</summary>
        public long Reordered => Interlocked.Read(ref _reordered);

        public void Reset()
        {
            Broadcasts.Reset();
            Publications.Reset();
            TunnelMessages.Reset();
            Interlocked.Exchange(ref _reordered, 0);
        }

        /// <summary>Starts sampling latencies afresh, or stops.</summary>
        public void Sample(bool on)
        {
            Broadcasts.Sample(on);
            Publications.Sample(on);
            TunnelMessages.Sample(on);
        }

        public string Counts() =>
            $"broadcast={Broadcasts.Count} publish={Publications.Count} tunnel={TunnelMessages.Count} reordered={Reordered}";

        public async Task HandleTunnelAsync(ITunnel tunnel, CancellationToken cancellationToken)
        {
            long next = 0;
            await foreach (var message in tunnel.ReadAllAsync(cancellationToken))
            {
                TunnelMessages.Add(message);
                // Counted where the order breaks, then followed from the message that broke it.
                var sequence = message.Length < 16 ? -1 : BitConverter.ToInt64(message, 8);
                if (sequence != next)
                {
                    Interlocked.Increment(ref _reordered);
                }

                next = sequence + 1;
            }
        }

        public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken) => Task.FromResult(request);

        public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken)
        {
            Broadcasts.Add(message);
            return Task.CompletedTask;
        }

        public Task HandlePublishAsync(byte[] message, CancellationToken cancellationToken)
        {
            Publications.Add(message);
            return Task.CompletedTask;
        }
    }

    /// <summary>Deliveries of one kind: a count, and the latencies of up to a million of them, from the first taken
    /// while sampling is on.</summary>
    private sealed class Deliveries
    {
        private readonly double[] _samples = new double[1 << 20];
        private long _count;
        private long _sampled;
        private volatile bool _sampling = true;

        public long Count => Interlocked.Read(ref _count);

        public void Add(byte[] message)
        {
            Interlocked.Increment(ref _count);
            if (!_sampling)
            {
                return;
            }

            var latency = message.Length >= 8 ? Stopwatch.GetElapsedTime(BitConverter.ToInt64(message)).TotalMilliseconds : 0;
            var index = Interlocked.Increment(ref _sampled) - 1;
            if (index < _samples.Length)
            {
                _samples[index] = latency;
            }
        }

        public void Reset()
        {
            Interlocked.Exchange(ref _count, 0);
            Sample(true);
        }

        public void Sample(bool on)
        {
            _sampling = false;
            if (on)
            {
                Interlocked.Exchange(ref _sampled, 0);
                _sampling = true;
            }
        }

        public (double P50, double P99) Percentiles()
        {
            var n = (int)Math.Min(Interlocked.Read(ref _sampled), _samples.Length);
            if (n == 0)
            {
                return (0, 0);
            }

            var sorted = _samples[..n];
            Array.Sort(sorted);
            return (sorted[n / 2], sorted[Math.Min(n - 1, (int)(n * 0.99))]);
        }
    }
}
