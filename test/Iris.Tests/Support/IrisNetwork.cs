using Iris.Hosting;
using Iris.Overlay.Security;
using Microsoft.Extensions.Hosting;

namespace Iris.Tests.Support;

/// <summary>An Iris network of a test's own: a fresh network key and a discovery port range no other test uses, with
/// helpers to start silo processes and Orleans clients on it.</summary>
internal sealed class IrisNetwork(int portBase)
{
    public string Key { get; } = Convert.ToBase64String(NetworkKey.Generate().Bytes);

    public int DiscoveryPort { get; } = portBase + (Random.Shared.Next(0, 300) * 16);

    /// <summary>Environment of a development silo on this network, plus <paramref name="extra"/> settings.</summary>
    public Dictionary<string, string> SiloSettings(params (string Name, string Value)[] extra)
    {
        var settings = new Dictionary<string, string>
        {
            ["DOTNET_ENVIRONMENT"] = "Development",
            ["Iris__Network__Key"] = Key,
            ["Iris__Network__Discovery__Port"] = DiscoveryPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        foreach (var (name, value) in extra)
        {
            settings[name] = value;
        }

        return settings;
    }

    /// <summary>Starts an Iris.Silo process and waits until its Orleans cluster has <paramref name="activeSilos"/>.</summary>
    public async Task<ChildProcess> StartSiloAsync(int activeSilos, params (string Name, string Value)[] extra)
    {
        var silo = ChildProcess.Start("dotnet", [RepositoryPaths.Program("src", "Iris.Silo")], SiloSettings(extra));
        await silo.WaitForAsync(l => l.Any(x => x.Contains($"has {activeSilos} active silos", StringComparison.Ordinal)), TimeSpan.FromSeconds(60), $"{activeSilos} active silos");
        return silo;
    }

    /// <summary>Starts an Orleans client process serving <paramref name="cluster"/> with an echo member
    /// (Iris.Member.TestHost) and waits until the member is registered.</summary>
    public async Task<ChildProcess> StartMemberAsync(string cluster)
    {
        var member = ChildProcess.Start("dotnet", [RepositoryPaths.Program("test", "Iris.Member.TestHost"), cluster], new Dictionary<string, string>
        {
            ["DOTNET_ENVIRONMENT"] = "Development",
            ["Iris__Client__NetworkKey"] = Key,
            ["Iris__Client__DiscoveryPort"] = DiscoveryPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        await member.WaitForAsync(l => l.Contains("READY"), TimeSpan.FromSeconds(60), "the member registered");
        return member;
    }

    /// <summary>A started Orleans client of this network, finding gateways by beacons.</summary>
    public async Task<IHost> StartClientAsync()
    {
        var client = Host.CreateDefaultBuilder()
            .UseOrleansClient(orleans => orleans.UseIris(options =>
            {
                options.NetworkKey = Key;
                options.DiscoveryPort = DiscoveryPort;
            }))
            .Build();
        await client.StartAsync();
        return client;
    }
}
