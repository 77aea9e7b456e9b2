using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Concurrency;
using Orleans.Configuration;

namespace Iris.Benchmarks.Paper;

/// <summary>The plain Orleans echo of the baseline: what a user of Orleans alone would call.</summary>
public interface IBenchEchoGrain : IGrainWithIntegerKey
{
    Task<byte[]> Echo(byte[] request);
}

/// <summary>A stateless worker that returns the request: Orleans' fastest request/reply path, one activation per
/// silo and core as needed, no placement decision after the first call.</summary>
[StatelessWorker]
public sealed class BenchEchoGrain : Grain, IBenchEchoGrain
{
    public Task<byte[]> Echo(byte[] request) => Task.FromResult(request);
}

/// <summary>The plain Orleans stream of the baseline: one-way calls to one grain, which counts them, checks their order
/// and samples their latency (timestamp in bytes 0 to 7, sequence number in bytes 8 to 15).</summary>
public interface IBenchSinkGrain : IGrainWithIntegerKey
{
    [OneWay]
    Task Take(byte[] message);

    /// <summary>Messages taken, and how many of them did not carry the next sequence number.</summary>
    Task<(long Taken, long Reordered)> Count();

    Task<(double P50, double P99)> Latency();

    Task Reset();
}

public sealed class BenchSinkGrain : Grain, IBenchSinkGrain
{
    private readonly List<double> _latencies = new(1 << 16);
    private long _taken;
    private long _reordered;
    private long _next;

    public Task Take(byte[] message)
    {
        // Counted where the order breaks, then followed from the message that broke it.
        var sequence = BitConverter.ToInt64(message, 8);
        if (sequence != _next)
        {
            _reordered++;
        }

        _next = sequence + 1;

        if (_latencies.Count < 1 << 20)
        {
            _latencies.Add(System.Diagnostics.Stopwatch.GetElapsedTime(BitConverter.ToInt64(message)).TotalMilliseconds);
        }

        _taken++;
        return Task.CompletedTask;
    }

    public Task<(long Taken, long Reordered)> Count() => Task.FromResult((_taken, _reordered));

    public Task<(double P50, double P99)> Latency()
    {
        if (_latencies.Count == 0)
        {
            return Task.FromResult((0.0, 0.0));
        }

        var sorted = _latencies.Order().ToArray();
        return Task.FromResult((sorted[sorted.Length / 2], sorted[Math.Min(sorted.Length - 1, (int)(sorted.Length * 0.99))]));
    }

    public Task Reset()
    {
        (_taken, _reordered, _next) = (0, 0, 0);
        _latencies.Clear();
        return Task.CompletedTask;
    }
}

/// <summary>
/// Plain Orleans silos for the baseline: processes of this program (<c>orleans-silo</c>), localhost clustering (the
/// first silo is the primary), no Iris, Orleans' default connections (no encryption). The same number of silo
/// processes as the Iris side, on loopback.
/// </summary>
internal static class OrleansBaseline
{
    /// <summary>Set to 1, the baseline's connections (client to gateway, silo to silo) run through Iris' secured
    /// connection (the network-key handshake, AES-GCM frames), as Iris' own do: what that costs plain Orleans alone.</summary>
    public const string SecuredVariable = "IRIS_BENCH_ORLEANS_SECURED";

    /// <summary>The network key the secured baseline's processes share, handed to its silos by the environment.</summary>
    private const string KeyVariable = "IRIS_BENCH_ORLEANS_KEY";

    private static readonly string? SecuredKey = Environment.GetEnvironmentVariable(SecuredVariable) == "1"
        ? Convert.ToBase64String(Iris.Overlay.Security.NetworkKey.Generate().Bytes)
        : null;

    /// <summary>Whether this run's baseline is secured (<see cref="SecuredVariable"/>).</summary>
    public static bool Secured => SecuredKey is not null;

    /// <summary>Entry of a baseline silo process: <c>orleans-silo &lt;silo port&gt; &lt;gateway port&gt; &lt;primary silo port&gt;</c>.
    /// Prints "READY" once started and runs until its input closes.</summary>
    public static async Task RunSiloAsync(string[] args)
    {
        var (siloPort, gatewayPort, primary) = (int.Parse(args[1]), int.Parse(args[2]), int.Parse(args[3]));
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.UseOrleans(silo => silo
            .UseLocalhostClustering(siloPort, gatewayPort, new IPEndPoint(IPAddress.Loopback, primary), serviceId: "bench", clusterId: "bench"));
        if (Environment.GetEnvironmentVariable(KeyVariable) is { } key)
        {
            builder.Services.AddSingleton(new Iris.Security.NetworkKeyProvider(() => Iris.Overlay.Security.NetworkKey.Parse(key)));
            builder.Services.Configure<Orleans.Configuration.SiloConnectionOptions>(Iris.Hosting.IrisSiloBuilderExtensions.SecureEveryConnection);
        }

        using var host = builder.Build();
        await host.StartAsync();
        Console.WriteLine("READY");
        while (await Console.In.ReadLineAsync() is not null)
        {
        }

        await host.StopAsync();
    }

    /// <summary>Starts <paramref name="count"/> baseline silos and returns them with their gateway ports.</summary>
    public static async Task<(List<ChildProcess> Silos, int[] Gateways)> StartAsync(int count)
    {
        var dll = typeof(OrleansBaseline).Assembly.Location;
        var ports = Enumerable.Range(0, count).Select(_ => (Silo: FreePort(), Gateway: FreePort())).ToArray();
        var variables = SecuredKey is { } key ? new Dictionary<string, string> { [KeyVariable] = key } : [];
        Task<ChildProcess> Start((int Silo, int Gateway) port) =>
            ChildProcess.StartAsync(dll, ["orleans-silo", $"{port.Silo}", $"{port.Gateway}", $"{ports[0].Silo}"], variables, "READY", TimeSpan.FromSeconds(60));

        // The primary first, then the others together.
        List<ChildProcess> silos = [await Start(ports[0])];
        silos.AddRange(await Task.WhenAll(ports.Skip(1).Select(Start)));

        return (silos, [.. ports.Select(p => p.Gateway)]);
    }

    /// <summary>An Orleans client of the baseline silos.</summary>
    public static async Task<IHost> ConnectAsync(int[] gateways)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.UseOrleansClient(client => client
            .UseStaticClustering([.. gateways.Select(p => new IPEndPoint(IPAddress.Loopback, p))])
            .Configure<ClusterOptions>(o => (o.ClusterId, o.ServiceId) = ("bench", "bench")));
        if (SecuredKey is { } key)
        {
            builder.Services.AddSingleton(new Iris.Security.NetworkKeyProvider(() => Iris.Overlay.Security.NetworkKey.Parse(key)));
            builder.Services.Configure<Orleans.Configuration.ClientConnectionOptions>(connections =>
                connections.ConfigureConnection(connection => Iris.Security.SecureConnectionExtensions.UseIrisSecurity(connection, initiator: true)));
        }

        var host = builder.Build();
        await host.StartAsync();
        return host;
    }

    /// <summary>Streams one-way calls of <paramref name="payload"/> bytes (at least 16) to one sink grain for
    /// <paramref name="duration"/>, kept at most about 1 MiB (and at least 64 messages) ahead of what the grain has taken,
    /// as a tunnel's window keeps its sender; the cell ends when the grain has taken them all.</summary>
    public static async Task<Measurement> StreamAsync(IGrainFactory grains, int payload, TimeSpan duration, Func<TimeSpan> cpuTime)
    {
        var sink = grains.GetGrain<IBenchSinkGrain>(payload);
        await sink.Reset();
        var ahead = Math.Max(64, (1 << 20) / Math.Max(payload, 16));
        var before = cpuTime();
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var end = started + (long)(duration.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
        long sent = 0, taken = 0;
        while (System.Diagnostics.Stopwatch.GetTimestamp() < end)
        {
            // A fresh array each: a one-way call returns before Orleans has serialized its message.
            var message = new byte[Math.Max(payload, 16)];
            BitConverter.TryWriteBytes(message, System.Diagnostics.Stopwatch.GetTimestamp());
            BitConverter.TryWriteBytes(message.AsSpan(8), sent);
            await sink.Take(message);
            sent++;
            while (sent - taken >= ahead)
            {
                taken = (await sink.Count()).Taken;
            }
        }

        (long Taken, long Reordered) count;
        while ((count = await sink.Count()).Taken < sent)
        {
            await Task.Delay(1);
        }

        var seconds = System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds;
        var cpu = cpuTime() - before;
        if (count.Reordered != 0)
        {
            Console.Error.WriteLine($"  (plain Orleans: the order of {sent} one-way calls broke {count.Reordered} times)");
        }

        var (p50, p99) = await sink.Latency();
        return new Measurement(sent / seconds, sent * (double)payload / 1e6 / seconds, p50, p99, cpu.TotalMicroseconds / sent);
    }

    internal static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
