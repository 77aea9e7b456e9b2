using Iris.Tests.TestClusters;
using Orleans.TestingHost;

namespace Iris.Tests.Tunnels;

/// <summary>A silo at one end of tunnels is killed: the ends in other processes fail, typed, in bounded time.</summary>
public sealed class TunnelFailureTests : IAsyncLifetime
{
    private TestCluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await IrisTestCluster.DeployAsync(3);

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task Killing_a_silo_fails_the_ends_of_its_tunnels_in_the_other_processes()
    {
        var victim = _cluster.Silos[2];

        // The client opens a tunnel to a member in the victim silo...
        var inVictim = new TunnelMember();
        await victim.Iris().RegisterAsync("served-by-victim", inVictim);
        var toVictim = await _cluster.Iris().OpenTunnelAsync("served-by-victim", TimeSpan.FromSeconds(30));
        await inVictim.NextAsync();

        // ... and the victim silo opens one to a member in the client.
        var inClient = new TunnelMember();
        await _cluster.Iris().RegisterAsync("served-by-client", inClient);
        var fromVictim = await victim.Iris().OpenTunnelAsync("served-by-client", TimeSpan.FromSeconds(30));
        var servedForVictim = await inClient.NextAsync();
        await fromVictim.SendAsync(new byte[] { 1 });
        Assert.Equal([1], await servedForVictim.ReceiveAsync());

        var openerWaits = toVictim.ReceiveAsync().AsTask();
        var memberWaits = servedForVictim.ReceiveAsync().AsTask();
        await _cluster.KillSiloAsync(victim);

        var opener = await Assert.ThrowsAsync<TunnelClosedException>(() => openerWaits.WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(TunnelCloseReason.PeerDied, opener.Reason);
        var member = await Assert.ThrowsAsync<TunnelClosedException>(() => memberWaits.WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(TunnelCloseReason.PeerDied, member.Reason);
        await Assert.ThrowsAsync<TunnelClosedException>(async () => await toVictim.SendAsync(new byte[] { 2 }));
        await Assert.ThrowsAsync<TunnelClosedException>(async () => await servedForVictim.SendAsync(new byte[] { 2 }));
    }
}
