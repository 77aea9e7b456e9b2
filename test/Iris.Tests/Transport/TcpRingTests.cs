using System.Collections.Concurrent;
using System.Net;
using Iris.Overlay;
using Iris.Overlay.Pastry;
using Iris.Overlay.Security;
using Iris.Overlay.Timing;
using Iris.Overlay.Transport;

namespace Iris.Tests.Transport;

/// <summary>Pastry nodes over real TCP on loopback, in real time.</summary>
public sealed class TcpRingTests : IAsyncLifetime
{
    internal static readonly PastryOptions FastPastry = new()
    {
        HeartbeatInterval = TimeSpan.FromMilliseconds(200),
        HopAckTimeout = TimeSpan.FromMilliseconds(300),
        JoinTimeout = TimeSpan.FromSeconds(2),
    };

    private readonly TimerQueue _timers = new(TimeProvider.System);
    private readonly List<(PastryNode Node, TcpTransport Transport)> _nodes = [];
    private readonly ConcurrentDictionary<int, NodeKey> _arrivals = new();

    private sealed class Recorder(ConcurrentDictionary<int, NodeKey> arrivals, NodeKey self) : IRouteHandler
    {
        public void Deliver(RouteDelivery delivery) => arrivals.TryAdd(BitConverter.ToInt32(delivery.Payload.Span), self);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var (node, transport) in _nodes)
        {
            node.Dispose();
            await transport.DisposeAsync();
        }

        _timers.Dispose();
    }

    private PastryNode AddNode(NetworkKey key, int seed)
    {
        var transport = TcpTransport.Start(new IPEndPoint(IPAddress.Loopback, 0), key);
        var random = new Random(seed);
        var node = new PastryNode(NodeKey.Random(random), transport, _timers, FastPastry, random);
        node.RegisterHandler(1, new Recorder(_arrivals, node.Self.Key));
        _nodes.Add((node, transport));
        return node;
    }

    internal static async Task<bool> EventuallyAsync(Func<bool> condition, TimeSpan limit)
    {
        var deadline = DateTime.UtcNow + limit;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                return false;
            }

            await Task.Delay(50);
        }

        return true;
    }

    private List<PastryNode> Live => [.. _nodes.Select(n => n.Node).Where(n => !n.IsStopped)];

    private bool EveryoneKnowsEveryone()
    {
        var live = Live;
        return live.All(n => n.IsReady && n.GetLeafSet().Clockwise.Select(h => h.Key).Union(n.GetLeafSet().CounterClockwise.Select(h => h.Key)).Count() == live.Count - 1);
    }

    private NodeKey TrueRoot(NodeKey key) =>
        Live.Select(n => n.Self.Key).Aggregate((best, k) => key.IsCloser(k, best) ? k : best);

    private async Task AssertLookupsReachTrueRootsAsync(int count, int seed)
    {
        _arrivals.Clear();
        var random = new Random(seed);
        var live = Live;
        var keys = new NodeKey[count];
        for (var i = 0; i < count; i++)
        {
            keys[i] = NodeKey.Random(random);
            live[random.Next(live.Count)].Route(keys[i], 1, BitConverter.GetBytes(i));
        }

        Assert.True(await EventuallyAsync(() => _arrivals.Count == count, TimeSpan.FromSeconds(30)), $"{_arrivals.Count} of {count} lookups arrived");
        var wrong = Enumerable.Range(0, count).Count(i => _arrivals[i] != TrueRoot(keys[i]));
        Assert.Equal(0, wrong);
    }

    [Fact]
    public async Task Eight_nodes_over_tcp_form_a_ring_route_correctly_and_recover_when_two_stop()
    {
        var key = NetworkKey.Generate();
        var first = AddNode(key, 1);
        first.Start();
        for (var i = 2; i <= 8; i++)
        {
            AddNode(key, i).Join(first.Self.Address);
        }

        Assert.True(await EventuallyAsync(EveryoneKnowsEveryone, TimeSpan.FromSeconds(30)), "the ring did not form");
        await AssertLookupsReachTrueRootsAsync(10_000, seed: 1);

        foreach (var (node, transport) in _nodes.Skip(2).Take(2))
        {
            node.Dispose();
            await transport.DisposeAsync();
        }

        Assert.True(await EventuallyAsync(EveryoneKnowsEveryone, TimeSpan.FromSeconds(30)), "the ring did not repair");
        await AssertLookupsReachTrueRootsAsync(10_000, seed: 2);
    }

    [Fact]
    public async Task A_node_with_another_network_key_cannot_join_and_is_refused()
    {
        var key = NetworkKey.Generate();
        var first = AddNode(key, 1);
        first.Start();
        var second = AddNode(key, 2);
        second.Join(first.Self.Address);
        Assert.True(await EventuallyAsync(() => second.IsReady, TimeSpan.FromSeconds(10)));

        var intruder = AddNode(NetworkKey.Generate(), 3);
        intruder.Join(first.Self.Address);
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.False(intruder.IsReady);
        Assert.True(_nodes[0].Transport.Refused > 0);
        Assert.Equal(0, _nodes[2].Transport.Received);
        Assert.DoesNotContain(first.GetLeafSet().Clockwise, h => h.Key == intruder.Self.Key);
    }
}
