using System.Globalization;
using Iris.Hosting;
using Iris.Overlay.Security;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Iris.Benchmarks.Paper;

/// <summary>
/// The Iris side of the paper harness: <c>Iris.Silo</c> processes of this repository's Release build on loopback, as a
/// user runs them (overlay membership, network key on, every Orleans connection secured with it), each serving the
/// echo cluster with its own in-silo member (or only the first few: <c>--echo-members</c>); and an Orleans client with
/// <c>UseIris</c> in the harness process.
/// </summary>
internal static class IrisSide
{
    public const string EchoCluster = "echo";

    /// <summary>Starts the silos, the first <paramref name="echoMembers"/> of them serving the echo cluster, and connects
    /// the harness's client; <c>Connect</c> connects another client to them, with or without one-hop requests to silos'
    /// members (<see cref="Requests.DirectRoutes"/>), for comparing the routes.</summary>
    public static async Task<(List<ChildProcess> Silos, IHost Client, Func<bool, Task<IHost>> Connect)> StartAsync(int count, int echoMembers)
    {
        var dll = Path.Combine(PaperCommand.Root, "src", "Iris.Silo", "bin", "Release", "net10.0", "Iris.Silo.dll");
        if (!File.Exists(dll))
        {
            throw new FileNotFoundException($"Build the silo first: dotnet build -c Release src/Iris.Silo ({dll} is missing).");
        }

        var key = Convert.ToBase64String(NetworkKey.Generate().Bytes);
        var discovery = 49000 + (Random.Shared.Next(0, 60) * 16);
        var environment = new Dictionary<string, string>
        {
            // Development mode binds and advertises loopback only; the key is given, as in production.
            ["DOTNET_ENVIRONMENT"] = "Development",
            ["Iris__Network__Key"] = key,
            ["Iris__Network__Discovery__Port"] = discovery.ToString(CultureInfo.InvariantCulture),
            // The messaging as it costs: without the Orleans dashboard, whose profiler times every grain call (the plain
            // Orleans baseline has none either).
            ["Iris__Http__Dashboard"] = "false",
            ["Logging__LogLevel__Default"] = "Warning",
            ["Logging__LogLevel__Iris.Hosting.SiloEndpointLogger"] = "Information",
        };
        // The first silo founds the network; the others start together and join it, each ready once it sees them all.
        Task<ChildProcess> Start(int i, string ready) => ChildProcess.StartAsync(
            dll, [], i <= echoMembers ? new Dictionary<string, string>(environment) { ["Iris__Silo__EchoCluster"] = EchoCluster } : environment, ready, TimeSpan.FromSeconds(90));
        List<ChildProcess> silos = [await Start(1, "has 1 active silos")];
        silos.AddRange(await Task.WhenAll(Enumerable.Range(2, count - 1).Select(i => Start(i, $"has {count} active silos"))));

        return (silos, await ConnectAsync(key, discovery), direct => ConnectAsync(key, discovery, direct));
    }

    /// <summary>An Orleans client with <c>UseIris</c> of the network with <paramref name="key"/>, finding its silos
    /// by the beacons on <paramref name="discovery"/>.</summary>
    public static async Task<IHost> ConnectAsync(string key, int discovery, bool direct = true)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.UseOrleansClient(orleans => orleans.UseIris(options =>
        {
            options.NetworkKey = key;
            options.DiscoveryPort = discovery;
        }));
        if (!direct)
        {
            builder.Services.RemoveAll<Requests.DirectRoutes>();
        }

        var client = builder.Build();
        await client.StartAsync();
        return client;
    }
}
