using CsCheck;
using Iris.Overlay;
using Iris.Overlay.Pastry;
using Iris.Overlay.Scribe;
using Iris.Overlay.Transport;
using Iris.Simulator;

namespace Iris.Tests.Overlay;

public class ScribeTests
{
    private static (PastrySimulation Ring, ScribeSimulation Scribe) Build(int nodes, int seed = 1)
    {
        var ring = new PastrySimulation(new PastrySimulationOptions { Seed = seed });
        ring.AddNodes(nodes, TimeSpan.FromMilliseconds(2));
        Assert.True(ring.Stabilise(TimeSpan.FromSeconds(60)) is not null);
        var scribe = new ScribeSimulation(ring);
        scribe.AttachAll();
        return (ring, scribe);
    }

    private static void WaitForWholeTree(ScribeSimulation scribe, params NodeKey[] keys)
    {
        var took = scribe.Ring.RunUntil(() => keys.All(scribe.TreeIsWhole), TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(100));
        Assert.True(took is not null, "the tree did not become whole within 30 s of simulated time");
    }

    private static void Subscribe(ScribeSimulation scribe, NodeKey key, IEnumerable<PastryNode> nodes, Func<int, double>? capacity = null)
    {
        var i = 0;
        foreach (var node in nodes)
        {
            scribe.Subscribe(node, $"m{i}@{node.Self.Address}", capacity?.Invoke(i) ?? 1, [key]);
            i++;
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(100)]
    public void A_tree_forms_with_the_key_root_as_root_and_every_member_attached(int members)
    {
        var (ring, scribe) = Build(200);
        using var _ = ring;
        var key = NodeKey.FromName("orders");
        Subscribe(scribe, key, ring.Nodes.Where((_, i) => i % 2 == 1).Take(members));
        WaitForWholeTree(scribe, key);

        // Capacity reports climb one level per heartbeat.
        ring.Run(TimeSpan.FromSeconds(5));
        var root = scribe.ScribeOf(ring.TrueRoot(key)).GetGroup(key);
        Assert.NotNull(root);
        Assert.True(root.IsRoot);
        Assert.Equal(0, root.AboveCapacity);
        Assert.Equal(members, root.SubtreeCapacity);
        Assert.Single(scribe.LiveScribes, s => s.GetGroup(key) is { IsRoot: true });
    }

    [Fact]
    public void A_multicast_reaches_every_member_exactly_once()
    {
        var (ring, scribe) = Build(200);
        using var _ = ring;
        var key = NodeKey.FromName("news");
        Subscribe(scribe, key, ring.Nodes.Take(60));
        WaitForWholeTree(scribe, key);

        var ids = Enumerable.Range(0, 20).Select(i => scribe.ScribeOf(ring.Nodes[199 - i]).Multicast(key, new byte[] { (byte)i })).ToList();
        ring.Run(TimeSpan.FromSeconds(2));
        foreach (var id in ids)
        {
            Assert.Equal(60, scribe.Recorder.Multicasts[id].Count);
        }

        Assert.Equal(0, scribe.Recorder.Duplicates);
    }

    [Fact]
    public void Anycast_chooses_members_in_proportion_to_their_capacity()
    {
        var (ring, scribe) = Build(150, seed: 3);
        using var _ = ring;
        var key = NodeKey.FromName("workers");
        double[] capacities = [1, 2, 3, 4, 10];
        Subscribe(scribe, key, ring.Nodes.Skip(10).Take(capacities.Length), i => capacities[i]);
        WaitForWholeTree(scribe, key);
        ring.Run(TimeSpan.FromSeconds(3));

        const int Sends = 10_000;
        var random = new Random(5);
        var ids = Enumerable.Range(0, Sends).Select(_ => scribe.ScribeOf(ring.Nodes[random.Next(150)]).Anycast(key, default)).ToList();
        ring.Run(TimeSpan.FromSeconds(3));

        Assert.All(ids, id => Assert.True(scribe.Recorder.Anycasts.ContainsKey(id)));
        var counts = ids.GroupBy(id => scribe.Recorder.Anycasts[id]).ToDictionary(g => g.Key, g => (double)g.Count() / Sends);
        var members = scribe.LiveMembers(key);
        var total = members.Values.Sum();
        var tvd = 0.5 * members.Sum(m => Math.Abs(counts.GetValueOrDefault(m.Key) - (m.Value / total)));

        // A uniform choice would score 0.5 * (|0.2-0.05| + |0.2-0.1| + |0.2-0.15| + |0.2-0.2| + |0.2-0.5|) = 0.3.
        Assert.True(tvd < 0.03, $"total variation distance {tvd:F4}");
    }

    [Fact]
    public void Capacity_changes_steer_anycasts_within_a_few_heartbeats()
    {
        var (ring, scribe) = Build(100);
        using var _ = ring;
        var key = NodeKey.FromName("elastic");
        var nodes = ring.Nodes.Skip(20).Take(2).ToList();
        Subscribe(scribe, key, nodes);
        WaitForWholeTree(scribe, key);

        scribe.ScribeOf(nodes[0]).SetCapacity(key, $"m0@{nodes[0].Self.Address}", 99);
        ring.Run(TimeSpan.FromSeconds(5));
        var ids = Enumerable.Range(0, 2000).Select(i => scribe.ScribeOf(ring.Nodes[i % 100]).Anycast(key, default)).ToList();
        ring.Run(TimeSpan.FromSeconds(2));
        var share = ids.Count(id => scribe.Recorder.Anycasts[id] == $"m0@{nodes[0].Self.Address}") / 2000.0;
        Assert.InRange(share, 0.97, 1.0);
    }

    [Fact]
    public void Anycast_to_a_group_without_members_says_so_at_once()
    {
        var (ring, scribe) = Build(100);
        using var _ = ring;
        var empty = NodeKey.FromName("nobody-here");
        var id = scribe.ScribeOf(ring.Nodes[7]).Anycast(empty, default);
        var took = ring.RunUntil(() => scribe.Recorder.NoMembers.Contains(id), TimeSpan.FromSeconds(5), TimeSpan.FromMilliseconds(10));
        Assert.True(took is not null && took < TimeSpan.FromMilliseconds(500), $"no-members answer took {took}");

        // The same once the last member has gone.
        var key = NodeKey.FromName("short-lived");
        Subscribe(scribe, key, [ring.Nodes[30]]);
        WaitForWholeTree(scribe, key);
        scribe.Unsubscribe($"m0@{ring.Nodes[30].Self.Address}");
        ring.Run(TimeSpan.FromSeconds(1));
        var late = scribe.ScribeOf(ring.Nodes[8]).Anycast(key, default);
        took = ring.RunUntil(() => scribe.Recorder.NoMembers.Contains(late), TimeSpan.FromSeconds(5), TimeSpan.FromMilliseconds(10));
        Assert.True(took is not null && took < TimeSpan.FromMilliseconds(500), $"no-members answer took {took}");
    }

    [Fact]
    public void Empty_branches_are_pruned_when_members_leave()
    {
        var (ring, scribe) = Build(100);
        using var _ = ring;
        var key = NodeKey.FromName("transient");
        var nodes = ring.Nodes.Skip(40).Take(10).ToList();
        Subscribe(scribe, key, nodes);
        WaitForWholeTree(scribe, key);
        Assert.True(scribe.LiveScribes.Count(s => s.GetGroup(key) is not null) >= 10);

        for (var i = 0; i < nodes.Count; i++)
        {
            scribe.Unsubscribe($"m{i}@{nodes[i].Self.Address}");
        }

        ring.Run(TimeSpan.FromSeconds(5));
        Assert.DoesNotContain(scribe.LiveScribes, s => s.GetGroup(key) is not null);
    }

    [Fact]
    public void When_the_root_dies_the_tree_re_roots_on_the_next_closest_node_and_keeps_its_members()
    {
        var (ring, scribe) = Build(200);
        using var _ = ring;
        var key = NodeKey.FromName("payments");
        var oldRoot = ring.TrueRoot(key);
        Subscribe(scribe, key, ring.Nodes.Where(n => n != oldRoot).Take(40));
        WaitForWholeTree(scribe, key);

        scribe.Crash(oldRoot);
        WaitForWholeTree(scribe, key);
        Assert.NotEqual(oldRoot, ring.TrueRoot(key));

        var id = scribe.ScribeOf(ring.Nodes.First(n => !n.IsStopped)).Multicast(key, default);
        ring.Run(TimeSpan.FromSeconds(2));
        Assert.Equal(40, scribe.Recorder.Multicasts[id].Count);
        Assert.Equal(0, scribe.Recorder.Duplicates);
    }

    [Fact]
    public void When_a_closer_node_joins_the_ring_the_tree_moves_its_root_there_and_leaves_no_second_root()
    {
        var (ring, scribe) = Build(100);
        using var _ = ring;
        var key = NodeKey.FromName("inventory");
        Subscribe(scribe, key, ring.Nodes.Take(30));
        WaitForWholeTree(scribe, key);
        var oldRoot = ring.TrueRoot(key);

        var newcomer = ring.AddNode(new NodeKey(key.Value + 1));
        Assert.True(ring.Stabilise(TimeSpan.FromSeconds(30)) is not null);
        scribe.AttachAll();
        Assert.Equal(newcomer, ring.TrueRoot(key));
        WaitForWholeTree(scribe, key);
        Assert.False(scribe.ScribeOf(oldRoot).GetGroup(key)!.IsRoot);

        var id = scribe.ScribeOf(ring.Nodes[50]).Multicast(key, default);
        ring.Run(TimeSpan.FromSeconds(2));
        Assert.Equal(30, scribe.Recorder.Multicasts[id].Count);
    }

    [Fact]
    public void A_split_name_spreads_its_groups_over_distinct_roots()
    {
        using var ring = new PastrySimulation();
        ring.AddNodes(200, TimeSpan.FromMilliseconds(2));
        ring.Stabilise(TimeSpan.FromSeconds(30));
        var keys = GroupNames.Keys("checkout", 4);
        Assert.Equal(4, keys.Distinct().Count());
        Assert.Equal(4, keys.Select(k => ring.TrueRoot(k)).Distinct().Count());
        Assert.Equal(NodeKey.FromName("checkout#2"), keys[2]);
    }

    [Fact]
    public void Scribe_messages_survive_encoding_and_malformed_ones_are_rejected()
    {
        var handle = Gen.Select(Generators.Key, Gen.Int[1, 9999], (k, port) => new NodeHandle(k, new NodeAddress($"tcp://127.0.0.1:{port}")));
        var message = Gen.Select(Gen.Enum<ScribeMessageType>(), Generators.Key, Generators.Key.Array[0, 10], Gen.Double[0, 1000], Gen.ULong, handle, Gen.Byte.Array[0, 100], Gen.Int[0, 64],
            (type, group, path, capacity, sequence, origin, payload, hops) => new ScribeMessage(type, group)
            {
                Path = type is ScribeMessageType.JoinAck or ScribeMessageType.ParentBeat ? path : [],
                Capacity = type is ScribeMessageType.ParentBeat or ScribeMessageType.ChildReport ? capacity : 0,
                Id = type is ScribeMessageType.Multicast or ScribeMessageType.Data or ScribeMessageType.Anycast or ScribeMessageType.NoMembers ? new ScribeMessageId(group, sequence) : default,
                Origin = type is ScribeMessageType.Multicast or ScribeMessageType.Data or ScribeMessageType.Anycast ? origin : default,
                Payload = type is ScribeMessageType.Multicast or ScribeMessageType.Data or ScribeMessageType.Anycast ? payload : default,
                Hops = type is ScribeMessageType.Multicast or ScribeMessageType.Data or ScribeMessageType.Anycast ? hops : 0,
            });
        message.Sample(m =>
        {
            var decoded = ScribeMessage.Decode(m.Encode());
            return decoded.Encode().AsSpan().SequenceEqual(m.Encode()) && decoded.Type == m.Type && decoded.Path.SequenceEqual(m.Path);
        });

        Assert.Throws<OverlayProtocolException>(() => ScribeMessage.Decode([1, 2, 3]));
        Assert.Throws<OverlayProtocolException>(() => ScribeMessage.Decode(new byte[17] { 200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }));
    }
}
