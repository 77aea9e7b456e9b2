using System.Collections.Concurrent;
using Iris.Hosting;
using Iris.Overlay.Security;
using Iris.Protocol;
using Iris.Tests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;

namespace Iris.Tests.TestClusters;

/// <summary>Orleans' own test cluster, four silos on the overlay membership (not the test cluster's), and a client.</summary>
public sealed class IrisTestClusterTests : IAsyncLifetime
{
    private TestCluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await IrisTestCluster.DeployAsync(4);

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task Four_silos_form_one_cluster_on_the_overlay_and_serve_requests_from_a_client()
    {
        // GetHosts answers from one silo's own view, which Orleans calls approximate: a silo that turned active while
        // this one was still joining reaches it by gossip or at its next read of the table (TableRefreshTimeout,
        // a minute by default).
        var management = _cluster.Client.GetGrain<IManagementGrain>(0);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(75);
        var hosts = await management.GetHosts(onlyActive: true);
        while (hosts.Count < 4 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200);
            hosts = await management.GetHosts(onlyActive: true);
        }

        Assert.Equal(4, hosts.Count);
        Assert.Equal([1, 2], await _cluster.Client.GetGrain<IClusterGrain>("echo").Request([1, 2], TimeSpan.FromSeconds(5)));
        await Assert.ThrowsAsync<NoMembersException>(() => _cluster.Client.GetGrain<IClusterGrain>("nobody").Request([], TimeSpan.FromSeconds(5)));

        var iris = _cluster.Client.ServiceProvider.GetRequiredService<IIrisClient>();
        var received = 0;
        await using (await iris.SubscribeAsync("ticks", new Subscriber(() => Interlocked.Increment(ref received))))
        {
            await _cluster.Client.GetGrain<ITopicGrain>("ticks").Publish([1]);
            await Eventually.SettlesAtAsync(() => Volatile.Read(ref received), 1, "publication delivered");
        }
    }

    [Fact]
    public async Task A_split_whose_rendezvous_lists_no_member_does_not_make_the_cluster_look_empty()
    {
        // A rendezvous placed anew (the silo that held it died, or the ring moved its key's root) lists only what its
        // record and the renewals since give it; a split that lists no member says nothing of the others, with which
        // every member registered too. Seen under load: one request in four, the ones sent through that split, failed
        // with "no members" while the cluster had four.
        await using (await _cluster.Silos[0].Iris().RegisterAsync("splits", new CountingEcho(() => { })))
        {
            var keys = Audience.Cluster("splits").RendezvousKeys();
            await _cluster.Client.GetGrain<IRendezvousGrain>(keys[0]).Unregister(_cluster.Silos[0].SiloAddress.ToParsableString());
            Assert.Empty(await _cluster.Client.GetGrain<IRendezvousGrain>(keys[0]).GetMembers());

            // Past the time a process keeps a member list, so every request asks the splits as they are now.
            await Task.Delay(global::Iris.Balancing.MemberDirectory.CacheTime * 2);
            for (var i = 0; i < 2 * keys.Length; i++)
            {
                Assert.Equal([(byte)i], await _cluster.Iris().RequestAsync("splits", [(byte)i], TimeSpan.FromSeconds(10)));
                Assert.Equal([(byte)i], await _cluster.Client.GetGrain<IClusterGrain>("splits").Request([(byte)i], TimeSpan.FromSeconds(10)));
            }
        }
    }

    [Fact]
    public async Task Every_silo_reaches_a_member_hosted_by_the_client()
    {
        // A client's replies go through whichever gateway it picks; they must find the calling silo from any of them.
        var broadcasts = 0;
        await using (await _cluster.Iris().RegisterAsync("client-served", new CountingEcho(() => Interlocked.Increment(ref broadcasts))))
        {
            foreach (var silo in _cluster.Silos)
            {
                for (var i = 0; i < 10; i++)
                {
                    Assert.Equal([(byte)i], await silo.Iris().RequestAsync("client-served", [(byte)i], TimeSpan.FromSeconds(10)));
                }

                await silo.Iris().BroadcastAsync("client-served", [1]).WaitAsync(TimeSpan.FromSeconds(10));
                var expected = _cluster.Silos.IndexOf(silo) + 1;
                await Eventually.SettlesAtAsync(() => Volatile.Read(ref broadcasts), expected, "broadcast delivered");
            }
        }

        Assert.Equal(_cluster.Silos.Count, broadcasts);
    }

    [Fact]
    public async Task Broadcasts_travel_down_the_scribe_tree_to_members_on_every_silo_once()
    {
        var received = new int[_cluster.Silos.Count];
        var registrations = new List<IAsyncDisposable>();
        for (var i = 0; i < _cluster.Silos.Count; i++)
        {
            var index = i;
            registrations.Add(await _cluster.Silos[i].Iris().RegisterAsync("tree", new CountingEcho(() => Interlocked.Increment(ref received[index]))));
        }

        var trees = _cluster.Silos.Select(s => s.Services().GetRequiredService<Iris.Grains.Dissemination.ScribeDissemination>()).ToArray();
        long Tree() => trees.Sum(t => t.TreeDeliveries);
        long Direct() => trees.Sum(t => t.DirectDeliveries);

        // Every broadcast reaches every member once, through the tree or, while a branch is joining, directly;
        // once the trees have formed, the tree alone carries them.
        var sent = 0;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        var byTreeOnly = 0;
        while (byTreeOnly < 4)
        {
            Assert.True(DateTime.UtcNow < deadline, $"broadcasts still needed direct sends: {Direct()} direct, {Tree()} by tree");
            var (tree, direct) = (Tree(), Direct());
            await _cluster.Client.GetGrain<IClusterGrain>("tree").Broadcast([1]);
            sent++;
            await Eventually.SettlesAtAsync(() => received.Sum(), sent * received.Length, "broadcast delivered");
            Assert.All(received, n => Assert.Equal(sent, n));
            if (Direct() == direct && Tree() - tree == _cluster.Silos.Count)
            {
                byTreeOnly++;
            }
            else
            {
                await Task.Delay(200);
            }
        }

        foreach (var registration in registrations)
        {
            await registration.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_broadcast_after_a_silo_in_the_tree_died_reaches_every_live_member_once()
    {
        var (received, grain) = await MembersOnEverySiloAsync("survivors");

        // Let the trees form (broadcasts carried by the tree alone), then kill a silo.
        await FormTreesAsync(grain, received);
        var before = received.ToArray();
        var victim = 3;
        await _cluster.KillSiloAsync(_cluster.Silos[victim]);

        // Each broadcast from now on reaches the three live members exactly once, whatever the tree looks like.
        for (var n = 1; n <= 8; n++)
        {
            await grain.Broadcast([2]).WaitAsync(TimeSpan.FromSeconds(40));
            await Eventually.SettlesAtAsync(() => received.Where((_, i) => i != victim).Sum(), before.Where((_, i) => i != victim).Sum() + (3 * n), "broadcast delivered", TimeSpan.FromSeconds(40));
            for (var i = 0; i < received.Length; i++)
            {
                if (i != victim)
                {
                    Assert.Equal(before[i] + n, received[i]);
                }
            }
        }
    }

    [Fact]
    public async Task A_tree_hop_that_hangs_holds_up_neither_the_broadcast_nor_the_members_below_it()
    {
        var (received, grain) = await MembersOnEverySiloAsync("held");
        await FormTreesAsync(grain, received);

        // Every tree hop into every silo hangs now (as behind a silo stalled by a long pause, or a link that stopped
        // moving): the rendezvous' own silo delivers, and the members below reach their message directly, not after
        // Orleans gives up on the hop (30 s).
        var held = _cluster.Silos.Select(s => s.Services().GetRequiredService<HeldHops>()).ToArray();
        foreach (var silo in held)
        {
            silo.Hold();
        }

        try
        {
            var before = received.ToArray();
            await grain.Broadcast([2]).WaitAsync(TimeSpan.FromSeconds(10));
            await Eventually.HoldsAsync(
                () => received.Sum() >= before.Sum() + received.Length,
                () => $"broadcast delivered to {received.Sum() - before.Sum()} of {received.Length} (per silo {string.Join(", ", received)}; hops held {held.Sum(h => h.Holding)})",
                TimeSpan.FromSeconds(12));
            Assert.True(held.Sum(h => h.Holding) > 0, "no tree hop was held: the test held nothing");

            // The held hops go on once released; their copies are dropped where the message arrived already.
            foreach (var silo in held)
            {
                silo.Release();
            }

            await Eventually.HoldsAsync(() => held.Sum(h => h.Holding) == 0, "held hops released");
            await Task.Delay(TimeSpan.FromSeconds(1));
            Assert.Equal(before.Select(n => n + 1), received);
        }
        finally
        {
            foreach (var silo in held)
            {
                silo.Release();
            }
        }
    }

    [Fact]
    public async Task Broadcasts_sent_at_once_are_handed_over_together_and_each_reaches_every_member_once()
    {
        const int Count = 200;
        var received = _cluster.Silos.Select(_ => new ConcurrentDictionary<int, int>()).ToArray();
        for (var i = 0; i < _cluster.Silos.Count; i++)
        {
            var mine = received[i];
            await _cluster.Silos[i].Iris().RegisterAsync("batched", new Recording(message => mine.AddOrUpdate(BitConverter.ToInt32(message), 1, (_, n) => n + 1)));
        }

        var filters = _cluster.Silos.Select(s => s.Services().GetRequiredService<HeldHops>()).ToArray();
        var handOvers = filters.Sum(f => f.HandOvers);
        var iris = _cluster.Iris();

        // The hand-overs started meanwhile are held in the client until every broadcast is queued, however slowly
        // this loop runs next to their round trips.
        Task[] sends;
        LostAnswers.Hold("Disseminate", "batched");
        try
        {
            sends = [.. Enumerable.Range(0, Count).Select(i => iris.BroadcastAsync("batched", BitConverter.GetBytes(i)))];
        }
        finally
        {
            LostAnswers.Release("Disseminate", "batched");
        }

        await Task.WhenAll(sends).WaitAsync(TimeSpan.FromSeconds(30));

        // At most two hand-overs per name are in flight from one process: the messages sent meanwhile wait and go
        // together, and down the tree together.
        var calls = filters.Sum(f => f.HandOvers) - handOvers;
        Assert.InRange(calls, 1, Count / 2);
        await Eventually.HoldsAsync(
            () => received.All(r => r.Count == Count),
            () => $"messages per member: {string.Join(", ", received.Select(r => r.Count))} of {Count}",
            TimeSpan.FromSeconds(30));
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.All(received, r => Assert.All(r.Values, n => Assert.Equal(1, n)));
    }

    private sealed class Recording(Action<byte[]> onBroadcast) : IClusterHandler
    {
        public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken) => Task.FromResult(request);

        public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken)
        {
            onBroadcast(message);
            return Task.CompletedTask;
        }
    }

    /// <summary>Registers a member of <paramref name="cluster"/> on every silo, each counting its broadcasts in its
    /// silo's slot; returns the counts and the cluster's grain on the first silo.</summary>
    private async Task<(int[] Received, IClusterGrain Grain)> MembersOnEverySiloAsync(string cluster)
    {
        var received = new int[_cluster.Silos.Count];
        for (var i = 0; i < _cluster.Silos.Count; i++)
        {
            var index = i;
            await _cluster.Silos[i].Iris().RegisterAsync(cluster, new CountingEcho(() => Interlocked.Increment(ref received[index])));
        }

        return (received, _cluster.Silos[0].Services().GetRequiredService<IGrainFactory>().GetGrain<IClusterGrain>(cluster));
    }

    /// <summary>Broadcasts until one is carried by the trees alone (every member reached once each time).</summary>
    private async Task FormTreesAsync(IClusterGrain grain, int[] received)
    {
        var trees = _cluster.Silos.Select(s => s.Services().GetRequiredService<Iris.Grains.Dissemination.ScribeDissemination>()).ToArray();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var direct = trees.Sum(t => t.DirectDeliveries);
            var delivered = received.Sum();
            await grain.Broadcast([1]);
            await Eventually.HoldsAsync(
                () => received.Sum() >= delivered + received.Length,
                () => $"broadcast delivered to {received.Sum() - delivered} of {received.Length} (per silo {string.Join(", ", received)}; by tree {trees.Sum(t => t.TreeDeliveries)}, directly {trees.Sum(t => t.DirectDeliveries)})");
            await Eventually.SettlesAtAsync(() => received.Sum(), delivered + received.Length, "broadcast delivered");
            if (trees.Sum(t => t.DirectDeliveries) == direct)
            {
                return;
            }

            Assert.True(DateTime.UtcNow < deadline, "the trees did not form");
            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task Service_continues_when_a_silo_is_killed()
    {
        var victim = _cluster.Silos[2];
        await _cluster.KillSiloAsync(victim);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        var served = 0;
        while (served < 20)
        {
            Assert.True(DateTime.UtcNow < deadline, "service did not continue after the kill");
            try
            {
                await _cluster.Client.GetGrain<IClusterGrain>("echo").Request([7], TimeSpan.FromSeconds(2));
                served++;
            }
            catch (Exception e) when (e is IrisException or OrleansException)
            {
                // Typed failures while the cluster notices the dead silo (a client whose gateway it was sees
                // Orleans' connection errors for a moment); the service must come back.
                await Task.Delay(100);
            }
        }
    }

    private sealed class CountingEcho(Action onBroadcast) : IClusterHandler
    {
        public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken) => Task.FromResult(request);

        public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken)
        {
            onBroadcast();
            return Task.CompletedTask;
        }
    }

    private sealed class Subscriber(Action onMessage) : ITopicHandler
    {
        public Task HandlePublishAsync(byte[] message, CancellationToken cancellationToken)
        {
            onMessage();
            return Task.CompletedTask;
        }
    }
}
