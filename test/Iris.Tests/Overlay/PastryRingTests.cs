using Iris.Overlay;
using Iris.Overlay.Pastry;
using Iris.Simulator;

namespace Iris.Tests.Overlay;

public class PastryRingTests
{
    private static readonly TimeSpan JoinSpacing = TimeSpan.FromMilliseconds(2);

    private static PastrySimulation Ring(int nodes, int seed = 1, double loss = 0)
    {
        var sim = new PastrySimulation(new PastrySimulationOptions { Seed = seed, LossProbability = loss });
        sim.AddNodes(nodes, JoinSpacing);
        Assert.True(sim.Stabilise(TimeSpan.FromSeconds(60)) is not null, $"Ring of {nodes} did not stabilise:\n{sim.DescribeWrongLeafSets()}");
        return sim;
    }

    private static void AssertAllLookupsReachTheTrueRoot(PastrySimulation sim, int lookups)
    {
        var stats = sim.Lookups(lookups);
        Assert.Equal(lookups, stats.Delivered);
        Assert.Equal(lookups, stats.Correct);
    }

    [Fact]
    public void A_lone_node_is_the_root_of_every_key()
    {
        using var sim = Ring(1);
        var node = sim.Nodes[0];
        var arrival = sim.Lookup(node, NodeKey.FromName("anything"));
        Assert.Equal((node, 0), arrival);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(16)]
    [InlineData(100)]
    [InlineData(1000)]
    public void Joined_nodes_route_random_keys_to_their_true_roots(int nodes)
    {
        using var sim = Ring(nodes);
        Assert.All(sim.Nodes, n => Assert.True(n.IsReady));
        AssertAllLookupsReachTheTrueRoot(sim, Math.Max(200, nodes * 2));
    }

    [Fact]
    public void In_a_small_ring_every_node_knows_every_other()
    {
        using var sim = Ring(9);
        foreach (var node in sim.Nodes)
        {
            var (ccw, cw) = node.GetLeafSet();
            Assert.Equal(8, ccw.Length);
            Assert.Equal(8, cw.Length);
        }
    }

    [Fact]
    public void Routes_take_about_log16_n_hops()
    {
        using var sim = Ring(1000);
        var stats = sim.Lookups(2000);
        Assert.InRange(stats.MeanHops, 1.5, Math.Log(1000, 16) + 0.3);
        Assert.True(stats.MaxHops <= 5, $"max hops {stats.MaxHops}");
    }

    [Fact]
    public void When_the_root_of_a_key_crashes_the_key_moves_to_the_next_closest_node()
    {
        using var sim = Ring(50);
        var key = NodeKey.FromName("orders");
        var root = sim.TrueRoot(key);
        var origin = sim.Nodes.First(n => n != root);
        Assert.Equal(root, sim.Lookup(origin, key)!.Value.Root);

        sim.Crash(root);
        var successor = sim.TrueRoot(key);
        Assert.NotEqual(root, successor);

        // Before anyone notices, the message still arrives: the dead hop does not acknowledge and is routed around.
        Assert.Equal(successor, sim.Lookup(origin, key)!.Value.Root);

        Assert.True(sim.Stabilise(TimeSpan.FromSeconds(30)) is not null, sim.DescribeWrongLeafSets());
        Assert.Equal(successor, sim.Lookup(origin, key)!.Value.Root);
        // Nodes that never route through the dead root find it by checking their routing tables, one entry per tick.
        sim.Run(TimeSpan.FromSeconds(90));
        Assert.All(sim.LiveNodes, n => Assert.DoesNotContain(n.GetRoutingTable(), e => e.Node.Key == root.Self.Key));
    }

    [Fact]
    public void After_ten_percent_of_nodes_crash_at_once_the_ring_repairs_and_routes_correctly()
    {
        using var sim = Ring(300);
        var crashed = sim.Fail(0.1);
        Assert.Equal(30, crashed.Count);

        // Lookups sent right after the crash are rerouted around dead hops, not lost.
        var during = sim.Lookups(300);
        Assert.Equal(300, during.Delivered);

        var repair = sim.Stabilise(TimeSpan.FromSeconds(30));
        Assert.True(repair is not null, sim.DescribeWrongLeafSets());
        Assert.True(repair <= TimeSpan.FromSeconds(10), $"repair took {repair}");
        AssertAllLookupsReachTheTrueRoot(sim, 1000);
        var dead = crashed.Select(n => n.Self.Key).ToHashSet();
        Assert.All(sim.LiveNodes, n => Assert.DoesNotContain(n.GetLeafSet().Clockwise.Concat(n.GetLeafSet().CounterClockwise), h => dead.Contains(h.Key)));
    }

    [Fact]
    public void A_node_that_leaves_gracefully_is_replaced_before_any_heartbeat_could_notice()
    {
        using var sim = Ring(60);
        var leaver = sim.Nodes[17];
        sim.Leave(leaver);
        var repair = sim.RunUntil(() => sim.WrongLeafSets() == 0, TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(10));
        Assert.True(repair is not null);
        Assert.True(repair < sim.PastryOptions.HeartbeatInterval, $"repair after a leave took {repair}");
        AssertAllLookupsReachTheTrueRoot(sim, 300);
    }

    [Fact]
    public void A_partition_splits_the_ring_in_two_and_healing_merges_it_again()
    {
        using var sim = Ring(80);
        var left = sim.Nodes.Where((_, i) => i % 2 == 0).ToList();
        sim.Network.Partition(left.Select(n => n.Self.Address));

        // Each side declares the other dead and repairs into a ring of its own.
        sim.Run(TimeSpan.FromSeconds(15));
        var leftKeys = left.Select(n => n.Self.Key).ToHashSet();
        foreach (var node in sim.Nodes)
        {
            var (ccw, cw) = node.GetLeafSet();
            var mine = leftKeys.Contains(node.Self.Key);
            Assert.All(ccw.Concat(cw), h => Assert.Equal(mine, leftKeys.Contains(h.Key)));
        }

        sim.Network.Heal();
        var merged = sim.Stabilise(TimeSpan.FromSeconds(60));
        Assert.True(merged is not null, sim.DescribeWrongLeafSets());
        AssertAllLookupsReachTheTrueRoot(sim, 500);
    }

    [Fact]
    public void The_ring_converges_and_routes_correctly_when_the_network_loses_messages()
    {
        using var sim = Ring(100, seed: 4, loss: 0.01);
        AssertAllLookupsReachTheTrueRoot(sim, 500);
    }

    [Fact]
    public void The_same_seed_gives_the_same_ring_and_the_same_hops()
    {
        static (string Tables, LookupStats Stats, long Messages) Run(int seed)
        {
            using var sim = Ring(150, seed);
            sim.Fail(0.1);
            sim.Stabilise(TimeSpan.FromSeconds(30));
            var stats = sim.Lookups(300);
            var tables = string.Join(';', sim.LiveNodes.Select(n => string.Join(',', n.GetRoutingTable().Select(e => e.Node.Key.ToShortString()))));
            return (tables, stats, sim.Network.Delivered);
        }

        var first = Run(11);
        Assert.Equal(first, Run(11));
        Assert.NotEqual(first.Tables, Run(12).Tables);
    }

    [Fact]
    public void Routing_before_joining_is_refused_with_a_clear_error()
    {
        using var sim = new PastrySimulation();
        var first = sim.AddNode();
        var second = sim.AddNode();
        var error = Assert.Throws<InvalidOperationException>(() => second.Route(NodeKey.Zero, 1, default));
        Assert.Contains("not part of a ring", error.Message);
        Assert.Throws<InvalidOperationException>(() => first.Start());
    }

    [Fact]
    public void Invalid_options_are_rejected_with_every_problem_named()
    {
        var result = new PastryOptionsValidator().Validate(null, new PastryOptions { LeafSetSize = 7, MissCount = 0, HeartbeatInterval = TimeSpan.Zero });
        Assert.True(result.Failed);
        Assert.Contains("LeafSetSize", result.FailureMessage);
        Assert.Contains("MissCount", result.FailureMessage);
        Assert.Contains("HeartbeatInterval", result.FailureMessage);
    }
}
