using System.Diagnostics;
using Iris.Hosting;
using Iris.Overlay;
using Iris.Overlay.Discovery;
using Iris.Overlay.Security;
using Iris.Overlay.Transport;
using Iris.Security;
using Microsoft.Extensions.Options;

namespace Iris.Tests.Cli;

/// <summary>The client's gateway list from beacons can start listening before Orleans asks, as the iris command does
/// to connect quickly: beacons heard in the meantime count.</summary>
public sealed class EarlyDiscoveryTests
{
    [Fact]
    public async Task A_gateway_heard_by_a_listener_started_early_is_the_one_orleans_gets_after_initializing_again()
    {
        var key = NetworkKey.Generate();
        var port = 52000 + (Random.Shared.Next(0, 200) * 16);
        var options = new IrisClientOptions { NetworkKey = Convert.ToBase64String(key.Bytes), DiscoveryPort = port };
        await using var provider = new IrisGatewayListProvider(Options.Create(options), new NetworkKeyProvider(() => key), TimeProvider.System);

        // Started early, as soon as the client's host is built; then a node beacons once (and not again for an hour), so
        // only a listener that was running then knows of it.
        await provider.InitializeGatewayListProvider();
        var self = new NodeHandle(NodeKey.FromName("early-node"), new NodeAddress("tcp://127.0.0.1:1"));
        await using var node = BeaconDiscovery.Start(
            DiscoveryScope.Loopback, self, key, new DiscoveryOptions { Port = port, BeaconInterval = TimeSpan.FromHours(1) }, gateway: "127.0.0.1:30999");

        Assert.NotEmpty(await provider.GetGateways());

        // Orleans initializes the provider when the client starts, then asks for gateways: the early listener is kept.
        await provider.InitializeGatewayListProvider();
        var clock = Stopwatch.StartNew();
        var gateways = await provider.GetGateways();
        Assert.Equal([new Uri("gwy.tcp://127.0.0.1:30999/0")], gateways);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4), $"the gateway came after {clock.Elapsed}, not from the listener that heard it");
    }
}
