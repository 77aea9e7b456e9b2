using Iris.Grains.Members;
using Iris.Protocol;
using Iris.Requests;
using Iris.Tests.Support;
using Iris.Tests.TestClusters;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Services;
using Orleans.TestingHost;

namespace Iris.Tests.Requests;

/// <summary>Three silos over real sockets and a client that found their gateways by beacons.</summary>
public sealed class DirectRouteCluster : IAsyncLifetime
{
    public TestCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync() => Cluster = await IrisTestCluster.DeployAsync(3, tcp: true);

    public async Task DisposeAsync() => await Cluster.DisposeAsync();
}

/// <summary>What the tests of the one-hop route share: the requests the silos' member host services served.</summary>
internal static class OneHop
{
    public static long Served(TestCluster cluster) =>
        cluster.Silos.Sum(s => s.Services().GetServices<IGrainService>().OfType<MemberHostService>().Single().Requests);

    /// <summary>The client reads its gateway list in the background: its first requests may go through the member host
    /// grain. Requests until one is served by a member host service.</summary>
    public static Task UntilServedDirectlyAsync(TestCluster cluster, string name) => Eventually.HoldsAsync(
        async () =>
        {
            var before = Served(cluster);
            await cluster.Iris().RequestAsync(name, [1], TimeSpan.FromSeconds(10));
            return Served(cluster) > before;
        },
        "a request served by the member host service");

    /// <summary>Until <paramref name="count"/> requests in a row are all served directly: every member's silo is usable
    /// as a direct route (each gateway is used only once it has been listed for a refresh period, and they were listed
    /// at different moments), not just the first member's.</summary>
    public static Task UntilAllServedDirectlyAsync(TestCluster cluster, string name, int count) => Eventually.HoldsAsync(
        async () =>
        {
            var before = Served(cluster);
            for (var i = 0; i < count; i++)
            {
                await cluster.Iris().RequestAsync(name, [1], TimeSpan.FromSeconds(10));
            }

            return Served(cluster) == before + count;
        },
        $"{count} requests in a row served by the member host services");
}

/// <summary>An Orleans client's requests to a silo's members go to that silo in one hop (<see cref="DirectRoutes"/>).</summary>
public sealed class DirectRouteTests(DirectRouteCluster fixture) : IClassFixture<DirectRouteCluster>
{
    private TestCluster Cluster => fixture.Cluster;

    private static string Name(string what) => $"{what}-{Guid.NewGuid():N}";

    private long Served() => OneHop.Served(Cluster);

    private Task UntilServedDirectlyAsync(string name) => OneHop.UntilServedDirectlyAsync(Cluster, name);

    private sealed class Counting : IClusterHandler
    {
        public int Requests;

        public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Requests);
            return Task.FromResult(request);
        }

        public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken) => Task.CompletedTask;

        public Task HandleTunnelAsync(ITunnel tunnel, CancellationToken cancellationToken) => throw new InvalidOperationException("requests only");
    }

    [Fact]
    public async Task A_clients_requests_go_to_the_members_silo_over_its_own_gateway_connection()
    {
        var name = Name("direct");
        var members = new[] { new Counting(), new Counting() };
        await using var first = await Cluster.Silos[1].Iris().RegisterAsync(name, members[0]);
        await using var second = await Cluster.Silos[2].Iris().RegisterAsync(name, members[1]);

        // Both members' silos usable as direct routes (one being usable is not enough: requests go to both).
        await OneHop.UntilAllServedDirectlyAsync(Cluster, name, 10);

        // Served by the service of the member's own silo: a call for a gateway address that reached another gateway
        // could not be forwarded to it, so every one of these went on the client's connection to the member's silo.
        var served = Served();
        var ran = members.Sum(m => m.Requests);
        for (var i = 0; i < 30; i++)
        {
            Assert.Equal([2, (byte)i], await Cluster.Iris().RequestAsync(name, [2, (byte)i], TimeSpan.FromSeconds(10)));
        }

        Assert.Equal(served + 30, Served());
        Assert.Equal(ran + 30, members.Sum(m => m.Requests));
    }

    private sealed class Collecting : IClusterHandler
    {
        public readonly List<byte[]> Taken = [];

        public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken) => Task.FromResult(request);

        public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken) => Task.CompletedTask;

        public async Task HandleTunnelAsync(ITunnel tunnel, CancellationToken cancellationToken)
        {
            await foreach (var message in tunnel.ReadAllAsync(cancellationToken))
            {
                lock (Taken)
                {
                    Taken.Add(message);
                }
            }
        }
    }

    [Fact]
    public async Task A_clients_tunnel_carries_its_frames_to_the_members_silo_over_its_own_gateway_connection()
    {
        var name = Name("tunnel");
        var member = new Collecting();
        await using var registration = await Cluster.Silos[1].Iris().RegisterAsync(name, member);
        await OneHop.UntilAllServedDirectlyAsync(Cluster, name, 5);

        // The frames and the credit of a client's tunnel to a silo's member go as its requests do: each call is taken
        // by the member host service of the member's silo, on the client's connection to that silo's gateway.
        var service = Cluster.Silos[1].Services().GetServices<IGrainService>().OfType<MemberHostService>().Single();
        var before = service.TunnelCalls;
        await using (var tunnel = await Cluster.Iris().OpenTunnelAsync(name, TimeSpan.FromSeconds(10)))
        {
            for (var i = 0; i < 200; i++)
            {
                await tunnel.SendAsync(new byte[1000].Select((_, j) => (byte)(i + j)).ToArray());
            }

            await tunnel.CloseAsync();
        }

        await Eventually.SettlesAtAsync(() => { lock (member.Taken) { return member.Taken.Count; } }, 200, "every message taken");
        Assert.All(member.Taken.Select((m, i) => (m, i)), x => Assert.Equal((byte)x.i, x.m[0]));
        Assert.True(service.TunnelCalls > before, "no tunnel call came to the member host service of the member's silo");

        // A call for an earlier incarnation of the silo at the same endpoint finds no tunnel there.
        var details = Cluster.Silos[1].Services().GetRequiredService<ILocalSiloDetails>();
        var direct = Cluster.Client.GetGrain<IMemberHostService>(
            SystemTargetGrainId.CreateGrainServiceGrainId(DirectRoutes.TypeCode, null!, details.GatewayAddress!));
        var earlier = SiloAddress.New(details.SiloAddress.Endpoint, details.SiloAddress.Generation - 1);
        Assert.Equal(TunnelStatus.Unknown, await direct.TunnelData(earlier, "client/nobody", Guid.NewGuid(), []));
        Assert.Equal(TunnelStatus.Unknown, await direct.TunnelCredit(earlier, "client/nobody", Guid.NewGuid(), 0));
    }

    [Fact]
    public async Task A_request_for_a_silo_that_is_no_longer_at_the_endpoint_is_refused_before_it_runs()
    {
        var name = Name("restarted");
        var member = new Counting();
        await using var registration = await Cluster.Silos[1].Iris().RegisterAsync(name, member);
        var details = Cluster.Silos[1].Services().GetRequiredService<ILocalSiloDetails>();
        var service = Cluster.Client.GetGrain<IMemberHostService>(
            SystemTargetGrainId.CreateGrainServiceGrainId(DirectRoutes.TypeCode, null!, details.GatewayAddress!));

        // The silo as it is now: runs.
        var answer = await service.Request(details.SiloAddress, Guid.NewGuid(), name, [3], TimeSpan.FromSeconds(5));
        Assert.Equal([3], answer.Data);

        // An earlier incarnation of the silo at the same endpoint: refused, not run.
        var earlier = SiloAddress.New(details.SiloAddress.Endpoint, details.SiloAddress.Generation - 1);
        var refusal = await Assert.ThrowsAsync<MemberRefusedException>(() => service.Request(earlier, Guid.NewGuid(), name, [4], TimeSpan.FromSeconds(5)));
        Assert.Equal(MemberReplyStatus.NotHere, refusal.Status);
        Assert.Equal(1, member.Requests);
    }

    [Fact]
    public async Task A_direct_call_whose_answer_was_lost_is_repeated_through_the_member_host_grain_and_runs_once()
    {
        var name = Name("direct-lost");
        var member = new Counting();
        // On a silo of its own among these tests: its gateway is passed over for a while.
        await using var registration = await Cluster.Silos[0].Iris().RegisterAsync(name, member);
        await UntilServedDirectlyAsync(name);

        var served = Served();
        var ran = member.Requests;
        LostAnswers.Arm("Request", name, count: 1);
        Assert.Equal([5], await Cluster.Iris().RequestAsync(name, [5], TimeSpan.FromSeconds(10)));
        Assert.Equal(0, LostAnswers.Remaining("Request", name));
        Assert.Equal(ran + 1, member.Requests);
        Assert.Equal(served + 1, Served());

        // The gateway is passed over for a while: the next request goes through the grain.
        Assert.Equal([6], await Cluster.Iris().RequestAsync(name, [6], TimeSpan.FromSeconds(10)));
        Assert.Equal(ran + 2, member.Requests);
        Assert.Equal(served + 1, Served());
    }
}
