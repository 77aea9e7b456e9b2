using Iris.Hosting;
using Iris.Overlay.Security;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;

namespace Iris.Tests.TestClusters;

/// <summary>Orleans' own test cluster with Iris: silos on the overlay membership (not the test cluster's), a network
/// key and discovery ports of their own, and a client finding them by beacons.</summary>
internal static class IrisTestCluster
{
    private sealed class SiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder) =>
            siloBuilder.UseIris(new IrisSiloOptions { ConfigureEndpoints = false, EchoCluster = "echo" });
    }

    private sealed class ClientConfigurator : IClientBuilderConfigurator
    {
        public void Configure(IConfiguration configuration, IClientBuilder clientBuilder) =>
            clientBuilder.UseIris(options =>
            {
                options.NetworkKey = configuration["Iris:Network:Key"];
                options.DiscoveryPort = int.Parse(configuration["Iris:Network:Discovery:Port"]!, System.Globalization.CultureInfo.InvariantCulture);
            });
    }

    public static async Task<TestCluster> DeployAsync(short silos)
    {
        var builder = new TestClusterBuilder(silos);
        builder.Options.UseTestClusterMembership = false;
        builder.ConfigureHostConfiguration(configuration => configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Iris:Network:Key"] = Convert.ToBase64String(NetworkKey.Generate().Bytes),
            ["Iris:Network:Discovery:Port"] = (48000 + (Random.Shared.Next(0, 200) * 16)).ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Iris:Network:Discovery:Scope"] = "Loopback",
            ["Iris:Overlay:ListenAddress"] = "127.0.0.1",
        }));
        builder.AddSiloBuilderConfigurator<SiloConfigurator>();
        builder.AddClientBuilderConfigurator<ClientConfigurator>();
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

    /// <summary>The services of an in-process silo.</summary>
    public static IServiceProvider Services(this SiloHandle silo) => ((InProcessSiloHandle)silo).SiloHost.Services;

    /// <summary><see cref="IIrisClient"/> of an in-process silo.</summary>
    public static IIrisClient Iris(this SiloHandle silo) => silo.Services().GetRequiredService<IIrisClient>();

    /// <summary><see cref="IIrisClient"/> of the cluster's client.</summary>
    public static IIrisClient Iris(this TestCluster cluster) => cluster.Client.ServiceProvider.GetRequiredService<IIrisClient>();
}
