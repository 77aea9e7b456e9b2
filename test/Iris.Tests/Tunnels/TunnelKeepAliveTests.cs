using System.Net;
using Iris.Protocol;
using Iris.Tunnels;
using Orleans.Runtime.Messaging;

namespace Iris.Tests.Tunnels;

/// <summary>Which failed keep-alive checks count against a tunnel's peer.</summary>
public sealed class TunnelKeepAliveTests
{
    private static readonly SiloAddress Peer = SiloAddress.New(IPAddress.Loopback, 45919, 155040282);
    private static readonly SiloAddress Dead = SiloAddress.New(IPAddress.Loopback, 42685, 155040276);

    private static Exception CouldNotConnect(SiloAddress silo) =>
        new ConnectionFailedException($"Unable to connect to {silo}, will retry after 611.1321ms");

    [Fact]
    public void A_check_that_could_not_reach_another_silo_on_the_way_is_not_held_against_the_peer()
    {
        // As seen when a silo died: the check of a peer on a live silo failed because the silo that held the member
        // host's directory entry could not be reached, until the cluster declared it dead.
        Assert.False(LocalTunnels.MayBlame(CouldNotConnect(Dead), new MemberEndpoint(Peer, 1)));

        // The form a tunnel's data call got, in a CI run where the cluster took longer than its repeats to declare the
        // dead silo dead.
        Assert.False(LocalTunnels.MayBlame(new ConnectionFailedException($"Unable to connect to endpoint {Dead}. See InnerException"), new MemberEndpoint(Peer, 1)));
        Assert.True(LocalTunnels.MayBlame(new ConnectionFailedException($"Unable to connect to endpoint {Peer}. See InnerException"), new MemberEndpoint(Peer, 1)));
    }

    [Fact]
    public void A_check_whose_placement_never_completed_is_not_held_against_the_peer()
    {
        // As seen when a silo died: Orleans kept failing to look the peer's member host up at the dead silo, which held
        // its directory entry, until the check's message expired; the check never left the caller. Once the dead silo
        // is declared dead, a check of a peer that died with it fails naming the peer's silo (placement refuses it).
        var expired = new OperationCanceledException($"Message expired before placement could complete for grain memberhost/{Peer.ToParsableString()}.");
        Assert.False(LocalTunnels.MayBlame(expired, new MemberEndpoint(Peer, 1)));
        Assert.True(LocalTunnels.MayBlame(expired, new MemberEndpoint(null, 1)));
    }

    [Fact]
    public void A_check_that_could_not_reach_the_peers_silo_or_got_no_answer_counts_as_a_miss()
    {
        Assert.True(LocalTunnels.MayBlame(CouldNotConnect(Peer), new MemberEndpoint(Peer, 1)));
        Assert.True(LocalTunnels.MayBlame(new TimeoutException("no answer"), new MemberEndpoint(Peer, 1)));
        Assert.True(LocalTunnels.MayBlame(new SiloUnavailableException("gone"), new MemberEndpoint(Peer, 1)));

        // A peer in a client process: any failure may be the peer.
        Assert.True(LocalTunnels.MayBlame(CouldNotConnect(Dead), new MemberEndpoint(null, 1)));
    }
}
