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

/// <summary>
/// Plain Orleans silos for the baseline: processes of this program (<c>orleans-silo</c>), localhost clustering (the
/// first silo is the primary), no Iris, Orleans' default connections (no encryption). The same number of silo
/// processes as the Iris side, on loopback.
/// </summary>
internal static class OrleansBaseline
{
    /// <summary>Entry of a baseline silo process: <c>orleans-silo &lt;silo port&gt; &lt;gateway port&gt; &lt;primary silo port&gt;</c>.
    /// Prints "READY" once started and runs until its input closes.</summary>
    public static async Task RunSiloAsync(string[] args)
    {
        var (siloPort, gatewayPort, primary) = (int.Parse(args[1]), int.Parse(args[2]), int.Parse(args[3]));
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.UseOrleans(silo => silo
            .UseLocalhostClustering(siloPort, gatewayPort, new IPEndPoint(IPAddress.Loopback, primary), serviceId: "bench", clusterId: "bench"));
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
        var silos = new List<ChildProcess>();
        foreach (var (silo, gateway) in ports)
        {
            silos.Add(await ChildProcess.StartAsync(dll, ["orleans-silo", $"{silo}", $"{gateway}", $"{ports[0].Silo}"], new Dictionary<string, string>(), "READY", TimeSpan.FromSeconds(60)));
        }

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
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }

    internal static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
