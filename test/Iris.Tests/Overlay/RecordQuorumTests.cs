using System.Text;
using Iris.Overlay;
using Iris.Overlay.Pastry;
using Iris.Overlay.Records;
using Iris.Overlay.Transport;
using Iris.Simulator;
using Iris.Tests.Support;

namespace Iris.Tests.Overlay;

/// <summary>Records under partitions, crashes and loss: a write is acknowledged only by a majority of the record's
/// replicas, so nothing acknowledged is lost and two sides of a cut never both write.</summary>
public class RecordQuorumTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    private static (PastrySimulation Ring, Dictionary<PastryNode, RecordStore> Stores) Build(int nodes, int seed = 1, double loss = 0)
    {
        var ring = new PastrySimulation(new PastrySimulationOptions { Seed = seed, LossProbability = loss });
        ring.AddNodes(nodes, TimeSpan.FromMilliseconds(2));
        Assert.True(ring.Stabilise(TimeSpan.FromSeconds(60)) is not null);
        return (ring, ring.Nodes.ToDictionary(n => n, n => new RecordStore(n, ring.Timers)));
    }

    private static byte[] Text(string text) => Encoding.UTF8.GetBytes(text);

    private static string Text(RecordValue? value) => value is null ? "<none>" : Encoding.UTF8.GetString(value.Data);

    /// <summary>Runs the ring until <paramref name="task"/> completes; a failure must be one of the typed ones.</summary>
    private static T? Outcome<T>(PastrySimulation ring, Task<T> task)
        where T : class
    {
        ring.Pump(task.ContinueWith(_ => { }, TaskScheduler.Default), Limit);
        if (task.IsCompletedSuccessfully)
        {
            return task.Result;
        }

        var error = task.Exception!.InnerException!;
        Assert.True(error is RecordTimeoutException or RecordUnavailableException, $"untyped failure: {error}");
        return null;
    }

    /// <summary>Reads <paramref name="key"/> and fails the test, saying <paramref name="what"/> and why, unless the read
    /// returns the text "kept".</summary>
    private static void AssertKept(PastrySimulation ring, RecordStore reader, NodeKey key, string what)
    {
        var read = reader.ReadAsync(key);
        ring.Pump(read.ContinueWith(_ => { }, TaskScheduler.Default), Limit);
        Assert.True(read.IsCompletedSuccessfully, $"{what}: {read.Exception?.InnerException?.Message}");
        Assert.Equal("kept", Text(ring.Await(read)));
    }

    /// <summary>Writes "kept" to <paramref name="count"/> records named after <paramref name="prefix"/>, and returns their
    /// keys.</summary>
    private static List<NodeKey> WriteKept(PastrySimulation ring, RecordStore client, string prefix, int count)
    {
        var keys = Enumerable.Range(0, count).Select(i => NodeKey.FromName($"{prefix}-{i}")).ToList();
        foreach (var key in keys)
        {
            Assert.True(ring.Await(client.CompareAndSwapAsync(key, 0, Text("kept"))).Success);
        }

        return keys;
    }

    /// <summary>Reads every record and fails the test naming those that do not read "kept", and why.</summary>
    private static void AssertAllKept(PastrySimulation ring, RecordStore client, List<NodeKey> keys)
    {
        var lost = new List<string>();
        foreach (var key in keys)
        {
            var read = client.ReadAsync(key);
            ring.Pump(read.ContinueWith(_ => { }, TaskScheduler.Default), Limit);
            if (!read.IsCompletedSuccessfully || Text(ring.Await(read)) != "kept")
            {
                lost.Add($"{key.ToShortString()}: {read.Exception?.InnerException?.GetType().Name ?? "read " + Text(ring.Await(read))}");
            }
        }

        Assert.True(lost.Count == 0, $"{lost.Count} of {keys.Count} records lost: {string.Join(", ", lost)}");
    }

    /// <summary>Runs <paramref name="leavers"/>' hand-overs to their end while <paramref name="client"/> reads every
    /// record each simulated second (the reads' outcomes go to <paramref name="background"/>, unchecked). The
    /// hand-overs' continuations run on the thread pool: simulated time moves in small steps meanwhile, as Pump's do.</summary>
    private static void HandOverWhileReading(
        PastrySimulation ring, Dictionary<PastryNode, RecordStore> stores, IEnumerable<PastryNode> leavers, RecordStore client, List<NodeKey> keys, List<Task> background)
    {
        var handOff = Task.WhenAll(leavers.Select(n => stores[n].HandOffAsync(TimeSpan.FromSeconds(10))));
        for (var second = 0; !handOff.IsCompleted; second++)
        {
            Assert.True(second < 60, "the hand-overs did not end in simulated time");
            keys.ForEach(key => background.Add(client.ReadAsync(key)));
            ring.PumpFor(handOff, TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(5));
        }
    }

    /// <summary>As silos declared dead do: <paramref name="nodes"/> leave the ring, and as many new nodes join it.</summary>
    private static void ComeBackAsNewNodes(PastrySimulation ring, Dictionary<PastryNode, RecordStore> stores, List<PastryNode> nodes)
    {
        foreach (var node in nodes)
        {
            stores[node].Dispose();
            ring.Leave(node);
        }

        foreach (var _ in nodes)
        {
            var node = ring.AddNode();
            stores[node] = new RecordStore(node, ring.Timers);
        }
    }

    /// <summary>An acceptor's configuration, and the next one when its value is stopped, for failure messages.</summary>
    private static string Describe((RecordConfiguration Configuration, Ballot Accepted, Register Value) state) =>
        $"epoch {state.Configuration.Epoch} [{string.Join(",", state.Configuration.Members.Select(m => m.Key.ToShortString()))}]"
        + (state.Value.Next is { } next ? $", stopped for epoch {next.Epoch} [{string.Join(",", next.Members.Select(m => m.Key.ToShortString()))}]" : string.Empty);

    /// <summary>Crashes a live acceptor of <paramref name="key"/>'s current configuration other than the first node
    /// (the tests' client), and returns it.</summary>
    private static PastryNode CrashAnAcceptor(PastrySimulation ring, Dictionary<PastryNode, RecordStore> stores, NodeKey key)
    {
        var victim = ring.LiveNodes.First(n => n != ring.Nodes[0] && stores[n].AcceptorState(key) is { } state
            && state.Value.Next is null && state.Configuration.Contains(n.Self.Key, stores[n].Incarnation));
        stores[victim].Dispose();
        ring.Crash(victim);
        return victim;
    }

    [Fact]
    public void Two_sides_of_a_partition_never_both_write_and_the_acknowledged_value_survives_healing()
    {
        var (ring, stores) = Build(24);
        using var _ = ring;
        var key = NodeKey.FromName("split-record");
        Assert.True(ring.Await(stores[ring.Nodes[0]].CompareAndSwapAsync(key, 0, Text("before"))).Success);

        var left = ring.Nodes.Where((_, i) => i % 2 == 0).ToList();
        var right = ring.Nodes.Where((_, i) => i % 2 == 1).ToList();
        ring.Network.Partition(left.Select(n => n.Self.Address));
        ring.Run(TimeSpan.FromSeconds(30));

        var onLeft = stores[left[3]].CompareAndSwapAsync(key, 1, Text("left"));
        var onRight = stores[right[3]].CompareAndSwapAsync(key, 1, Text("right"));
        var leftResult = Outcome(ring, onLeft);
        var rightResult = Outcome(ring, onRight);
        var acknowledged = new[] { (leftResult, "left"), (rightResult, "right") }.Where(r => r.Item1 is { Success: true }).Select(r => r.Item2).ToList();
        Assert.True(acknowledged.Count <= 1, "both sides of the partition acknowledged a write expecting version 1");

        ring.Network.Heal();
        Assert.True(ring.Stabilise(TimeSpan.FromSeconds(60)) is not null, ring.DescribeWrongLeafSets());
        ring.Run(TimeSpan.FromSeconds(30));
        var reads = ring.Nodes.Select(n => ring.Await(stores[n].ReadAsync(key))).ToList();
        Assert.All(reads, r => Assert.Equal(reads[0]!.Version, r!.Version));
        Assert.All(reads, r => Assert.Equal(Text(reads[0]), Text(r)));
        if (acknowledged.Count == 1)
        {
            Assert.Equal(acknowledged[0], Text(reads[0]));
            Assert.Equal(2, reads[0]!.Version);
        }
        else
        {
            Assert.Equal("before", Text(reads[0]));
        }
    }

    [Theory]
    [InlineData(7)]
    [InlineData(11)]
    [InlineData(23)]
    public void Rings_that_formed_apart_each_creating_a_record_agree_on_one_of_them_once_merged(int seed)
    {
        // A second ring forms apart from the first (its nodes hear none of the first's); each writes the same key.
        var ring = new PastrySimulation(new PastrySimulationOptions { Seed = seed });
        using var _ = ring;
        ring.AddNodes(6, TimeSpan.FromMilliseconds(2));
        Assert.True(ring.Stabilise(TimeSpan.FromSeconds(60)) is not null);
        var second = new List<PastryNode>();
        for (var i = 0; i < 6; i++)
        {
            // Cut off as it is added: its join through a node of the first ring is lost on the way.
            var node = ring.AddNode();
            ring.Network.Partition([.. second.Append(node).Select(n => n.Self.Address)]);
            if (i == 0)
            {
                Assert.True(node.StartInsteadOfJoining());
            }
            else
            {
                node.SetJoinCandidates([second[0].Self.Address]);
            }

            second.Add(node);
            ring.Run(TimeSpan.FromSeconds(1));
        }

        Assert.True(ring.RunUntil(() => second.All(n => n.IsReady), TimeSpan.FromSeconds(60)) is not null);
        var first = ring.Nodes.Take(6).ToList();
        var stores = ring.Nodes.ToDictionary(n => n, n => new RecordStore(n, ring.Timers));
        var key = NodeKey.FromName("formed-apart");
        Assert.True(ring.Await(stores[first[0]].CompareAndSwapAsync(key, 0, Text("first 1"))).Success);
        Assert.True(ring.Await(stores[second[0]].CompareAndSwapAsync(key, 0, Text("second 1"))).Success);
        Assert.True(ring.Await(stores[second[1]].CompareAndSwapAsync(key, 1, Text("second 2"))).Success);

        // The rings hear of each other and merge.
        ring.Network.Heal();
        first[0].Introduce(second[0].Self);
        second[0].Introduce(first[0].Self);
        Assert.True(ring.Stabilise(TimeSpan.FromSeconds(120)) is not null, ring.DescribeWrongLeafSets());

        // Once every node has asked for the record (the root hears of both configurations from the requesters and picks
        // one), every node reads that one, again and again, also after new nodes became the record's root (a new root
        // asks its neighbours and hears of both); a write then reaches everyone.
        foreach (var node in ring.Nodes)
        {
            ring.Await(stores[node].ReadAsync(key));
        }

        var seen = new HashSet<string>();
        for (var pass = 0; pass < 4; pass++)
        {
            foreach (var node in ring.Nodes)
            {
                seen.Add(Text(ring.Await(stores[node].ReadAsync(key))));
            }

            var root = ring.AddNode(new NodeKey(key.Value + (UInt128)pass));
            Assert.True(ring.RunUntil(() => root.IsReady, TimeSpan.FromSeconds(60)) is not null);
            stores[root] = new RecordStore(root, ring.Timers);
            ring.Run(TimeSpan.FromSeconds(10));
        }

        Assert.True(seen.Count == 1, $"nodes read different records: {string.Join(", ", seen)}");
        var current = ring.Await(stores[ring.Nodes[3]].ReadAsync(key))!;
        Assert.True(ring.Await(stores[ring.Nodes[3]].CompareAndSwapAsync(key, current.Version, Text("merged"))).Success);
        Assert.All(ring.Nodes, n => Assert.Equal("merged", Text(ring.Await(stores[n].ReadAsync(key)))));
    }

    [Fact]
    public void An_isolated_root_cannot_acknowledge_alone_and_the_majority_sides_write_survives_its_crash()
    {
        var (ring, stores) = Build(24, seed: 2);
        using var _ = ring;
        var key = NodeKey.FromName("isolated-root");
        var client = stores[ring.Nodes[5]];
        Assert.True(ring.Await(client.CompareAndSwapAsync(key, 0, Text("v1"))).Success);

        var root = ring.TrueRoot(key);
        Assert.NotEqual(ring.Nodes[5], root);
        ring.Network.Partition([root.Self.Address]);

        // The isolated root believes it is still the root, but it has only itself: it must not acknowledge.
        var alone = Outcome(ring, stores[root].CompareAndSwapAsync(key, 1, Text("alone")));
        Assert.False(alone is { Success: true }, "the isolated root acknowledged a write on its own");

        // The other side declares the root dead and goes on with a majority of the record's replicas.
        ring.Run(TimeSpan.FromSeconds(10));
        var acknowledged = new List<(long Version, string Data)> { (1, "v1") };
        var majority = Outcome(ring, client.CompareAndSwapAsync(key, 1, Text("majority")));
        if (majority is { Success: true })
        {
            acknowledged.Add((majority.Current!.Version, "majority"));
        }

        stores[root].Dispose();
        ring.Crash(root);
        ring.Network.Heal();
        Assert.True(ring.Stabilise(TimeSpan.FromSeconds(60)) is not null, ring.DescribeWrongLeafSets());
        var last = acknowledged[^1];
        foreach (var node in ring.LiveNodes)
        {
            var read = ring.Await(stores[node].ReadAsync(key))!;
            Assert.True(read.Version >= last.Version, $"version went back from {last.Version} to {read.Version}");
            Assert.Equal(last.Data, Text(read));
        }
    }

    [Fact]
    public void A_retried_write_that_already_applied_is_reported_as_done_and_applied_once()
    {
        var (ring, stores) = Build(20, seed: 3);
        using var _ = ring;
        var key = NodeKey.FromName("retried");
        var client = stores[ring.Nodes[2]];
        var other = stores[ring.Nodes[11]];
        Assert.True(ring.Await(client.CompareAndSwapAsync(key, 0, Text("v1"))).Success);

        var id = new WriteId(ring.Nodes[2].Self.Key, 4242);
        var first = ring.Await(client.CompareAndSwapAsync(key, 1, Text("v2"), id));
        Assert.True(first.Success);
        Assert.Equal(2, first.Current!.Version);

        // The same write again, as after a lost answer: done, not applied a second time.
        var again = ring.Await(client.CompareAndSwapAsync(key, 1, Text("v2"), id));
        Assert.True(again.Success);
        Assert.Equal(2, again.Current!.Version);

        // Even after another write, and sent through another node.
        Assert.True(ring.Await(other.CompareAndSwapAsync(key, 2, Text("v3"))).Success);
        var late = ring.Await(other.CompareAndSwapAsync(key, 1, Text("v2"), id));
        Assert.True(late.Success);
        Assert.Equal(3, late.Current!.Version);

        var read = ring.Await(client.ReadAsync(key))!;
        Assert.Equal(3, read.Version);
        Assert.Equal("v3", Text(read));

        // A different write expecting the same version is refused.
        Assert.False(ring.Await(client.CompareAndSwapAsync(key, 1, Text("v2"), new WriteId(ring.Nodes[2].Self.Key, 4243))).Success);
    }

    [Fact]
    public void A_record_whose_acceptor_dies_is_moved_to_a_new_acceptor_and_keeps_accepting_writes()
    {
        var (ring, stores) = Build(30, seed: 4);
        using var _ = ring;
        var key = NodeKey.FromName("replaced");
        var client = stores[ring.Nodes[0]];
        Assert.True(ring.Await(client.CompareAndSwapAsync(key, 0, Text("v1"))).Success);
        ring.Run(RecordStore.ReconfigureInterval);
        Assert.True(ring.Await(client.CompareAndSwapAsync(key, 1, Text("v2"))).Success);

        var root = ring.TrueRoot(key);
        var before = stores[root].AcceptorState(key)!.Value.Configuration;
        Assert.Equal(RecordStore.ReplicationFactor, before.Members.Length);
        var victim = ring.Nodes.First(n => n != root && n != ring.Nodes[0] && before.Contains(n.Self.Key, stores[n].Incarnation));
        stores[victim].Dispose();
        ring.Crash(victim);

        // Writes go on while the ring notices (four acceptors of five answer), and after it.
        var version = 2L;
        var start = ring.Time.GetUtcNow();
        TimeSpan? replaced = null;
        while (ring.Time.GetUtcNow() - start < TimeSpan.FromSeconds(20))
        {
            var result = ring.Await(client.CompareAndSwapAsync(key, version, Text($"v{version + 1}")));
            Assert.True(result.Success);
            version++;
            if (replaced is null && stores[root].AcceptorState(key)!.Value.Configuration is { } now && now.Epoch > before.Epoch
                && !now.Members.Any(m => m.Key == victim.Self.Key))
            {
                replaced = ring.Time.GetUtcNow() - start;
            }

            ring.Run(TimeSpan.FromMilliseconds(500));
        }

        Assert.True(replaced is not null, "the dead acceptor was never replaced");
        var after = stores[root].AcceptorState(key)!.Value.Configuration;
        Assert.True(after.Epoch > before.Epoch);
        Assert.Equal(RecordStore.ReplicationFactor, after.Members.Length);
        Assert.All(after.Members, m => Assert.False(ring.Nodes.Single(n => n.Self.Key == m.Key).IsStopped));
        Assert.Equal(version, ring.Await(stores[ring.Nodes[7]].ReadAsync(key))!.Version);
        Console.WriteLine($"Dead acceptor replaced {replaced} after the crash (epoch {before.Epoch} -> {after.Epoch}); {version - 2} writes meanwhile");
    }

    [Fact]
    public void An_idle_record_whose_acceptors_crash_one_after_another_is_moved_off_each_and_keeps_its_value()
    {
        // Nobody reads or writes the record while three of its five acceptors crash, ten seconds apart: each is
        // replaced without waiting for an operation, so the record never loses its majority.
        var (ring, stores) = Build(20, seed: 5);
        using var _ = ring;
        var key = NodeKey.FromName("idle");
        var client = stores[ring.Nodes[0]];
        Assert.True(ring.Await(client.CompareAndSwapAsync(key, 0, Text("kept"))).Success);

        for (var crashed = 0; crashed < 3; crashed++)
        {
            CrashAnAcceptor(ring, stores, key);
            ring.Run(TimeSpan.FromSeconds(10));
        }

        AssertKept(ring, client, key, "the idle record lost its majority, its crashed acceptors never replaced");
    }

    [Theory]
    [InlineData(20)]
    [InlineData(5)]
    public void An_idle_record_whose_acceptors_restart_under_their_node_keys_one_after_another_keeps_its_value(int apartSeconds)
    {
        // A restarted acceptor holds nothing, but under a fixed node key (Iris:Overlay:NodeKeyFile) it comes back as
        // the same key at once, so a record that nobody uses looks in place to members comparing keys.
        var (ring, stores) = Build(12, seed: 6);
        using var _ = ring;
        var key = NodeKey.FromName("restarted");
        var client = stores[ring.Nodes[0]];
        Assert.True(ring.Await(client.CompareAndSwapAsync(key, 0, Text("kept"))).Success);

        for (var restarted = 0; restarted < 3; restarted++)
        {
            var victim = CrashAnAcceptor(ring, stores, key);
            var again = ring.AddNode(victim.Self.Key);
            stores[again] = new RecordStore(again, ring.Timers);
            ring.Run(TimeSpan.FromSeconds(apartSeconds));
        }

        // Restarts closer together than a root may move the record leave some for the reads that follow.
        ring.Run(TimeSpan.FromSeconds(40));
        var latest = ring.LiveNodes.Select(n => stores[n].AcceptorState(key)?.Configuration).OfType<RecordConfiguration>().MaxBy(c => c.Epoch)!;
        Assert.All(latest.Members, m => Assert.True(
            ring.LiveNodes.Any(n => n.Self.Key == m.Key && stores[n].Incarnation == m.Incarnation),
            $"member {m} of epoch {latest.Epoch} is a process that no longer runs"));

        AssertKept(ring, client, key, "the idle record lost its majority to acceptors that restarted");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void An_acceptor_back_under_its_key_while_another_acceptor_is_dead_never_holds_two_places_in_one_configuration(int seed)
    {
        // Two acceptors crash; the closer of them to the key comes back at once under its node key (a new run), the
        // other stays dead. A configuration listing the key twice (the dead run and the new one) has a slot that can
        // never answer and counts for nothing: one failure fewer is tolerated until the next move.
        var (ring, stores) = Build(12, seed);
        using var _ = ring;
        var key = NodeKey.FromName("twice-" + seed);
        var client = stores[ring.Nodes[0]];
        Assert.True(ring.Await(client.CompareAndSwapAsync(key, 0, Text("kept"))).Success);
        ring.Run(RecordStore.ReconfigureInterval);

        var root = ring.TrueRoot(key);
        var members = ring.LiveNodes.Where(n => n != ring.Nodes[0] && n != root && stores[n].AcceptorState(key) is { } state
                && state.Value.Next is null && state.Configuration.Contains(n.Self.Key, stores[n].Incarnation))
            .OrderBy(n => key.RingDistance(n.Self.Key)).ToList();
        Assert.True(members.Count >= 2, $"only {members.Count} acceptors besides the root and the client");
        var (back, dead) = (members[^2], members[^1]);
        foreach (var victim in new[] { back, dead })
        {
            stores[victim].Dispose();
            ring.Crash(victim);
        }

        var again = ring.AddNode(back.Self.Key);
        stores[again] = new RecordStore(again, ring.Timers);

        var seen = new List<string>();
        for (var step = 0; step < 300; step++)
        {
            ring.Run(TimeSpan.FromMilliseconds(100));
            foreach (var node in ring.LiveNodes)
            {
                if (stores[node].AcceptorState(key) is not { } state)
                {
                    continue;
                }

                foreach (var configuration in new[] { state.Configuration, state.Value.Next }.OfType<RecordConfiguration>())
                {
                    if (configuration.Members.GroupBy(m => m.Key).Any(g => g.Count() > 1))
                    {
                        seen.Add($"{ring.Time.GetUtcNow():ss.fff} at {node.Self.Key.ToShortString()}: epoch {configuration.Epoch} [{string.Join(",", configuration.Members.Select(m => m.Key.ToShortString()))}]");
                    }
                }
            }
        }

        Assert.True(seen.Count == 0, $"a key was listed twice: {string.Join("; ", seen.Distinct().Take(5))}");
        AssertKept(ring, client, key, "the record lost its majority");
    }

    [Theory]
    [InlineData(3, 3)]
    [InlineData(6, 5)]
    public void A_record_written_in_a_ring_of_two_is_spread_over_the_nodes_that_join_later_without_any_operation(int joining, int seed)
    {
        // Written while the ring had two nodes, the record has one acceptor. Nodes join and it sits idle; then that
        // acceptor crashes. The record must have been spread over the grown ring by then: over five nodes when the
        // ring has more, one member moved at a time, and maybe off the first acceptor first.
        var ring = new PastrySimulation(new PastrySimulationOptions { Seed = seed });
        using var _ = ring;
        ring.AddNodes(2, TimeSpan.FromMilliseconds(2));
        Assert.True(ring.Stabilise(TimeSpan.FromSeconds(60)) is not null);
        var stores = ring.Nodes.ToDictionary(n => n, n => new RecordStore(n, ring.Timers));
        var key = NodeKey.FromName("grown");
        Assert.True(ring.Await(stores[ring.Nodes[0]].CompareAndSwapAsync(key, 0, Text("kept"))).Success);
        var acceptor = ring.Nodes.Single(n => stores[n].AcceptorState(key) is not null);

        for (var i = 0; i < joining; i++)
        {
            var node = ring.AddNode();
            stores[node] = new RecordStore(node, ring.Timers);
        }

        Assert.True(ring.Stabilise(TimeSpan.FromSeconds(60)) is not null);
        ring.Run(TimeSpan.FromSeconds(40));

        var latest = ring.Nodes.Select(n => stores[n].AcceptorState(key)?.Configuration).OfType<RecordConfiguration>().MaxBy(c => c.Epoch)!;
        var wanted = Math.Min(RecordStore.ReplicationFactor, 2 + joining) is var all && all % 2 == 0 ? all - 1 : all;
        Assert.True(latest.Members.Length == wanted, $"the record has {latest.Members.Length} acceptors (epoch {latest.Epoch}) in a ring of {2 + joining}, not {wanted}");

        stores[acceptor].Dispose();
        ring.Crash(acceptor);
        ring.Run(TimeSpan.FromSeconds(10));

        AssertKept(ring, stores[ring.LiveNodes.First()], key, "the record was lost with its first acceptor");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Records_survive_a_3_2_split_whose_minority_nodes_leave_together_right_after_the_heal_and_come_back_as_new_nodes(int seed)
    {
        // As silos do when the minority of a split learns, after the heal, that it was declared dead: its nodes are in
        // the ring again for a few seconds, then hand their records over and leave together, and new nodes join.
        var (ring, stores) = Build(5, seed);
        using var _ = ring;
        var client = stores[ring.Nodes[0]];
        var keys = WriteKept(ring, client, "split-heal", 12);

        var minority = ring.Nodes.Skip(3).ToList();
        ring.Network.Partition(minority.Select(n => n.Self.Address));
        ring.Run(TimeSpan.FromSeconds(30));
        ring.Network.Heal();
        ring.Run(TimeSpan.FromSeconds(8));

        var leaving = minority.Select(n => stores[n].HandOffAsync(TimeSpan.FromSeconds(10))).ToList();
        ring.Pump(Task.WhenAll(leaving), Limit);
        ComeBackAsNewNodes(ring, stores, minority);

        ring.Run(TimeSpan.FromSeconds(40));
        AssertAllKept(ring, client, keys);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(4, 0)]
    [InlineData(6, 3)]
    public void Records_in_use_survive_a_3_2_split_whose_minority_nodes_hand_over_while_the_ring_is_still_healing(int seed, int secondsAfterHeal)
    {
        // As silos do under load: the majority reads and writes the records through the split, the minority learns
        // it was declared dead a second after the heal and hands over while the ring is still merging, and the
        // majority's roots, seeing the minority nodes back, would take them into configurations again.
        var (ring, stores) = Build(5, seed);
        using var _ = ring;
        var client = stores[ring.Nodes[0]];
        var keys = WriteKept(ring, client, "in-use", 12);

        // Reads the majority's client keeps sending; their outcomes do not matter, only what is left at the end.
        var background = new List<Task>();
        void Use(int seconds)
        {
            for (var s = 0; s < seconds; s++)
            {
                keys.ForEach(key => background.Add(client.ReadAsync(key)));
                ring.Run(TimeSpan.FromSeconds(1));
            }
        }

        var minority = ring.Nodes.Skip(3).ToList();
        ring.Network.Partition(minority.Select(n => n.Self.Address));
        Use(30);
        ring.Network.Heal();
        Use(secondsAfterHeal);

        HandOverWhileReading(ring, stores, minority, client, keys, background);

        ComeBackAsNewNodes(ring, stores, minority);

        Use(40);
        AssertAllKept(ring, client, keys);
    }

    [Theory]
    [InlineData(7)]
    [InlineData(8)]
    [InlineData(9)]
    public void Nodes_that_leave_together_take_themselves_out_of_every_record_and_never_hand_one_to_each_other(int seed)
    {
        // Two silos stopped at once (or the two silos of a healed minority that learn together they were declared
        // dead): each hands its records over while the other is still in the ring. Neither may hand a record to the
        // other, nor be taken back into a configuration by a root, so that once both are gone every record has all
        // its acceptors among the nodes that stay, and survives one of them crashing.
        var (ring, stores) = Build(7, seed);
        using var _ = ring;
        var client = stores[ring.Nodes[0]];
        var keys = WriteKept(ring, client, "leave-together", 16);

        // Reads go on meanwhile, so the records' roots reconfigure as the leaving nodes hand over.
        var leavers = ring.Nodes.Skip(5).ToList();
        var background = new List<Task>();
        HandOverWhileReading(ring, stores, leavers, client, keys, background);

        var leaving = leavers.Select(n => n.Self.Key).ToHashSet();
        var stayers = ring.Nodes.Take(5).ToList();
        var kept = new List<string>();
        foreach (var key in keys)
        {
            var latest = stayers.Select(n => stores[n].AcceptorState(key)).Where(s => s is not null)
                .Select(s => s!.Value.Value.Next ?? s.Value.Configuration).MaxBy(c => c.Epoch)!;
            if (latest.Members.Any(m => leaving.Contains(m.Key)))
            {
                kept.Add($"{key.ToShortString()}: {string.Join(",", latest.Members.Select(m => m.Key.ToShortString()))}");
            }
        }

        Assert.True(kept.Count == 0, $"{kept.Count} of {keys.Count} records still count on a node that left: {string.Join(" | ", kept)}");
        foreach (var node in leavers)
        {
            stores[node].Dispose();
            ring.Leave(node);
        }

        CrashAnAcceptor(ring, stores, keys[0]);
        foreach (var key in keys)
        {
            AssertKept(ring, client, key, $"record {key.ToShortString()} was lost");
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void A_configuration_seeded_on_fewer_than_a_majority_of_its_members_is_seeded_on_the_rest_once_they_answer(int seed)
    {
        // Five nodes, every one an acceptor: a leaving node has no other node to hand over to and takes itself out,
        // {L,A,B,C,D} to {A,B,C,D}. Two members are cut off (not yet declared dead): the stop is chosen by L and the
        // other two (3 of 5), the seeds reach those two only (2 of 4). After the heal the cut-off members answer
        // "not seeded" and must be seeded then; all four live, so the record must be read and written again.
        var (ring, stores) = Build(5, seed);
        using var _ = ring;
        var key = NodeKey.FromName("half-seeded");
        var client = stores[ring.Nodes[0]];
        Assert.True(ring.Await(client.CompareAndSwapAsync(key, 0, Text("kept"))).Success);

        var leaver = ring.Nodes[1];
        ring.Network.Partition(ring.Nodes.Skip(3).Select(n => n.Self.Address));
        var handOff = stores[leaver].HandOffAsync(TimeSpan.FromSeconds(5));
        for (var second = 0; !handOff.IsCompleted; second++)
        {
            Assert.True(second < 60, "the hand-over did not end in simulated time");
            ring.PumpFor(handOff, TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(5));
        }

        stores[leaver].Dispose();
        ring.Leave(leaver);
        ring.Run(TimeSpan.FromSeconds(20));
        ring.Network.Heal();
        ring.Run(TimeSpan.FromSeconds(60));
        AssertKept(ring, client, key, "the record stayed unavailable after the heal");
    }

    [Fact]
    public void Nodes_that_leave_one_after_another_hand_their_records_over_and_the_last_node_still_writes()
    {
        // A cluster stopped silo by silo, a second apart: every leaving node is an acceptor of the record at some
        // point, and without a hand-over the last nodes are left with a minority of its acceptors.
        var (ring, stores) = Build(6, seed: 7);
        using var _ = ring;
        var key = NodeKey.FromName("rolling-stop");
        var version = ring.Await(stores[ring.Nodes[0]].CompareAndSwapAsync(key, 0, Text("v1")))!.Current!.Version;
        var leaving = ring.Nodes.OrderBy(n => key.RingDistance(n.Self.Key)).ToList();
        foreach (var node in leaving.Take(leaving.Count - 1))
        {
            ring.Pump(stores[node].HandOffAsync(TimeSpan.FromSeconds(10)), Limit);
            Assert.False(
                stores[node].AcceptorState(key) is { } state && (state.Value.Next ?? state.Configuration).Contains(node.Self.Key, stores[node].Incarnation),
                $"{node.Self.Key.ToShortString()} is still an acceptor of the record as it leaves: {Describe(stores[node].AcceptorState(key)!.Value)} (ring: {string.Join(",", ring.LiveNodes.Select(n => n.Self.Key.ToShortString()))})");
            stores[node].Dispose();
            ring.Leave(node);
            ring.Run(TimeSpan.FromSeconds(1));

            var writer = ring.LiveNodes.First();
            var written = Outcome(ring, stores[writer].CompareAndSwapAsync(key, version, Text($"after {node.Self.Key.ToShortString()}")));
            Assert.True(written is { Success: true }, $"no write after {node.Self.Key.ToShortString()} left: {written?.Current?.Version}");
            version = written!.Current!.Version;
        }

        var last = ring.LiveNodes.Single();
        Assert.Equal(version, ring.Await(stores[last].ReadAsync(key))!.Version);
    }

    [Fact]
    public void A_node_forgets_the_nodes_gone_from_the_ring_long_ago_and_keeps_every_record()
    {
        // Each node remembers the nodes that answered its record messages (their incarnation and address, and whether
        // they said they leave). Silos restart as new nodes (a new random key each run), so without forgetting, that
        // memory grows with every run a node ever heard of. Half the runs here crash, half hand over and leave.
        var pastry = new PastrySimulationOptions().Pastry;
        pastry.DeadNodeRetention = TimeSpan.FromMinutes(1);
        using var ring = new PastrySimulation(new PastrySimulationOptions { Seed = 3, Pastry = pastry });
        ring.AddNodes(7, TimeSpan.FromMilliseconds(2));
        Assert.True(ring.Stabilise(TimeSpan.FromSeconds(60)) is not null);
        var stores = ring.Nodes.ToDictionary(n => n, n => new RecordStore(n, ring.Timers));
        var client = stores[ring.Nodes[0]];
        var keys = WriteKept(ring, client, "forgetting", 8);

        for (var run = 0; run < 10; run++)
        {
            var gone = ring.LiveNodes.Where(n => n != ring.Nodes[0]).OrderBy(n => n.Self.Key.ToString()).ElementAt(run % 6);
            if (run % 2 == 0)
            {
                stores[gone].Dispose();
                ring.Crash(gone);
            }
            else
            {
                ring.Pump(stores[gone].HandOffAsync(TimeSpan.FromSeconds(10)), Limit);
                stores[gone].Dispose();
                ring.Leave(gone);
            }

            var node = ring.AddNode();
            stores[node] = new RecordStore(node, ring.Timers);
            ring.Run(TimeSpan.FromSeconds(20));
        }

        // The heard-of count peaks with the churn; twice the ring's own memory of the dead later, only the live remain.
        var others = ring.LiveNodes.Count() - 1;
        Assert.True(client.NodesRemembered() > others, $"the churn went unheard: {client.NodesRemembered()} nodes remembered");
        ring.Run(TimeSpan.FromMinutes(3));
        foreach (var live in ring.LiveNodes)
        {
            Assert.True(
                stores[live].NodesRemembered() <= others,
                $"{live.Self.Key.ToShortString()} remembers {stores[live].NodesRemembered()} other nodes; {others} others are alive");
        }

        AssertAllKept(ring, client, keys);
    }

    [Theory]
    [InlineData(4)]
    [InlineData(9)]
    public void An_acceptor_a_record_moved_off_keeps_only_where_it_went_once_a_majority_of_the_next_acceptors_holds_it(int seed)
    {
        // A record moves when nodes join nearer its key: its old acceptors keep the stopped value, data and the last
        // 64 write ids, for as long as they run, unless they learn that the next configuration holds it.
        var (ring, stores) = Build(7, seed);
        using var _ = ring;
        var client = stores[ring.Nodes[0]];
        var keys = WriteKept(ring, client, "moved-off", 30);
        for (var added = 0; added < 6; added++)
        {
            var node = ring.AddNode();
            stores[node] = new RecordStore(node, ring.Timers);
            ring.Run(TimeSpan.FromSeconds(10));
        }

        ring.Run(TimeSpan.FromSeconds(120));
        var moved = ring.LiveNodes.Select(n => (Node: n, State: stores[n].MovedOffAcceptors())).ToList();
        Assert.True(moved.Sum(m => m.State.HoldingValue + m.State.Retired) > 0, "no record moved off a node");
        Assert.True(
            moved.All(m => m.State.HoldingValue == 0),
            $"moved-off acceptors still holding the value: {string.Join(", ", moved.Where(m => m.State.HoldingValue > 0).Select(m => $"{m.Node.Self.Key.ToShortString()} {m.State.HoldingValue}"))}");

        // The records read and write as before, from a node that was in the ring before the moves and from one that
        // joined; and read again after an acceptor of one crashed.
        AssertAllKept(ring, client, keys);
        var joined = stores[ring.LiveNodes.Last()];
        AssertAllKept(ring, joined, keys);
        foreach (var key in keys)
        {
            var written = Outcome(ring, joined.CompareAndSwapAsync(key, 1, Text("kept")));
            Assert.True(written is { Success: true }, $"{key.ToShortString()}: no second write after the moves (version {written?.Current?.Version})");
        }

        var crashed = CrashAnAcceptor(ring, stores, keys[0]);
        ring.Run(TimeSpan.FromSeconds(10));
        Assert.NotEqual(crashed, ring.Nodes[0]);
        AssertAllKept(ring, client, keys);
    }

    [Fact]
    public void A_side_holding_none_of_a_records_replicas_neither_recreates_it_nor_reads_it_as_never_written()
    {
        // The nodes that know of the record (its acceptors, its root) are all on one side; the other side's root finds
        // no neighbour that knows it. A requester that has seen the record says so, and the root fails rather than
        // start the record afresh, which would let that side write a version 1 of its own.
        var (ring, stores) = Build(24, seed: 11);
        using var _ = ring;
        var key = NodeKey.FromName("far-side");
        var byDistance = ring.Nodes.OrderBy(n => key.RingDistance(n.Self.Key)).ToList();
        var near = byDistance.Take(12).ToList();
        var far = byDistance.Skip(12).ToList();
        var reader = stores[far[^1]];
        Assert.True(ring.Await(reader.CompareAndSwapAsync(key, 0, Text("v1"))).Success);
        Assert.Equal("v1", Text(ring.Await(reader.ReadAsync(key))));

        ring.Network.Partition(near.Select(n => n.Self.Address));
        ring.Run(TimeSpan.FromSeconds(30));
        var read = reader.ReadAsync(key);
        ring.Pump(read.ContinueWith(_ => { }, TaskScheduler.Default), Limit);
        Assert.True(read.IsFaulted, "the far side read the record as never written");
        Assert.IsType<RecordUnavailableException>(read.Exception!.InnerException);
        var fresh = Outcome(ring, reader.CompareAndSwapAsync(key, 0, Text("fresh")));
        Assert.False(fresh is { Success: true }, "the far side created the record afresh and wrote version 1 of its own");

        ring.Network.Heal();
        Assert.True(ring.Stabilise(TimeSpan.FromSeconds(60)) is not null, ring.DescribeWrongLeafSets());
        ring.Run(TimeSpan.FromSeconds(10));
        foreach (var node in ring.Nodes)
        {
            var value = ring.Await(stores[node].ReadAsync(key));
            Assert.Equal("v1", Text(value));
            Assert.Equal(1, value!.Version);
        }
    }

    [Fact]
    public void A_new_root_whose_query_the_acceptors_answer_late_neither_recreates_the_record_nor_reads_it_as_never_written()
    {
        // A node joins closest to the key and becomes its root. No requester tells it the configuration (the reader
        // never touched the record), so it asks its neighbours; the acceptors, overloaded, answer only after
        // ReplicaTimeout. Taking their silence for "don't know" would start the record afresh with nodes that hold
        // nothing, and read it as never written.
        var (ring, stores) = Build(24, seed: 12);
        using var _ = ring;
        var key = NodeKey.FromName("late-acceptors");
        var byDistance = ring.Nodes.OrderBy(n => key.RingDistance(n.Self.Key)).ToList();
        var writer = stores[byDistance[^1]];
        Assert.True(ring.Await(writer.CompareAndSwapAsync(key, 0, Text("v1"))).Success);
        Assert.True(ring.Await(writer.CompareAndSwapAsync(key, 1, Text("v2"))).Success);

        var knowing = ring.Nodes.Where(n => stores[n].AcceptorState(key) is not null).Append(byDistance[^1]).Select(n => n.Self.Key).ToHashSet();
        var joinerKey = new NodeKey(key.Value + 1);
        var joiner = ring.AddNode(joinerKey, t => new LateRecordAnswers(t, joinerKey, ring.Timers, knowing.Contains, TimeSpan.FromMilliseconds(700)));
        stores[joiner] = new RecordStore(joiner, ring.Timers);
        Assert.True(ring.Stabilise(TimeSpan.FromSeconds(60)) is not null, ring.DescribeWrongLeafSets());
        Assert.Equal(joiner, ring.TrueRoot(key));

        var reader = stores[byDistance.First(n => !knowing.Contains(n.Self.Key))];
        var read = ring.Await(reader.ReadAsync(key));
        Assert.True(read is not null, "the record was read as never written: the new root created it afresh");
        Assert.Equal((2, "v2"), (read.Version, Text(read)));
        var written = ring.Await(reader.CompareAndSwapAsync(key, 2, Text("v3")));
        Assert.True(written.Success, $"version {written.Current?.Version} ({Text(written.Current)}) where 2 was acknowledged");
        var after = ring.Await(writer.ReadAsync(key))!;
        Assert.Equal((3, "v3"), (after.Version, Text(after)));

        // A record nobody wrote is still created by the same slow neighbours, once they have all said they know none.
        var fresh = new NodeKey(key.Value + 2);
        Assert.Equal(joiner, ring.TrueRoot(fresh));
        Assert.Null(ring.Await(reader.ReadAsync(fresh)));
        Assert.True(ring.Await(reader.CompareAndSwapAsync(fresh, 0, Text("new"))).Success);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void An_acceptor_a_record_moved_off_does_not_forward_to_a_configuration_seeded_on_members_that_then_died(int seed)
    {
        // C1 moves to C2 (node A joins nearest the key); the member it displaced, X, does not hear from C2's members
        // yet (its questions are lost). Node N joins nearer still, becomes root and moves C2 to L, but its seeds reach
        // only A and itself. X's questions then reach A only, which says it holds L: one member's word, so X must keep
        // its value. Then A and N crash: no live member holds L, while C2's other members still hold the stop that
        // names L. Had X retired pointing at L, a root that learnt L from it would prepare there forever and never
        // re-propose the stop in C2.
        var key = NodeKey.FromName("seeded-on-two");
        var holdQuestions = false;
        NodeKey? root = null;
        NodeKey? first = null;
        bool Lost(NodeKey from, NodeKey to, RecordMessage message) =>
            (message is { Type: RecordMessageType.Query, RequestId: ulong.MaxValue } && (holdQuestions || (first is not null && to != first)))
            || (from == root && message.Type == RecordMessageType.Seed && to != first && to != root);

        var ring = new PastrySimulation(new PastrySimulationOptions { Seed = seed });
        using var _ = ring;
        var stores = new Dictionary<PastryNode, RecordStore>();
        PastryNode Add(NodeKey? nodeKey = null)
        {
            LosingRecordMessages? wrapper = null;
            var node = ring.AddNode(nodeKey, t => wrapper = new LosingRecordMessages(t, Lost));
            wrapper!.Self = node.Self.Key;
            return node;
        }

        for (var i = 0; i < 7; i++)
        {
            Add();
            ring.Run(TimeSpan.FromMilliseconds(2));
        }

        Assert.True(ring.Stabilise(TimeSpan.FromSeconds(60)) is not null);
        foreach (var node in ring.Nodes)
        {
            stores[node] = new RecordStore(node, ring.Timers);
        }

        var client = stores[ring.Nodes.OrderBy(n => key.RingDistance(n.Self.Key)).Last()];
        Assert.True(ring.Await(client.CompareAndSwapAsync(key, 0, Text("kept"))).Success);

        holdQuestions = true;
        var a = Add(new NodeKey(key.Value + 2));
        stores[a] = new RecordStore(a, ring.Timers);
        ring.Run(TimeSpan.FromSeconds(20));
        Assert.True(stores[a].AcceptorState(key) is not null, "the record did not move to A");

        (root, first) = (new NodeKey(key.Value + 1), a.Self.Key);
        var n = Add(root);
        stores[n] = new RecordStore(n, ring.Timers);
        ring.Run(TimeSpan.FromSeconds(20));
        Assert.True(stores[a].AcceptorState(key) is { } atA && atA.Configuration.Contains(n.Self.Key, stores[n].Incarnation), "N did not seed A");

        holdQuestions = false;
        ring.Run(TimeSpan.FromSeconds(40));
        var displaced = ring.LiveNodes.Where(x => stores[x].AcceptorState(key) is { Configuration.Epoch: 1 }).ToList();
        Assert.NotEmpty(displaced);
        Assert.All(displaced, x => Assert.True(
            stores[x].MovedOffAcceptors() == (1, 0),
            $"{x.Self.Key.ToShortString()} retired on the word of one member holding a later configuration: {Describe(stores[x].AcceptorState(key)!.Value)}"));
        Assert.All(displaced, x => Assert.Equal((3L, 1), stores[x].SuccessorsCounted(key)));

        foreach (var dead in new[] { a, n })
        {
            stores[dead].Dispose();
            ring.Crash(dead);
        }

        ring.Run(TimeSpan.FromSeconds(60));
        AssertKept(ring, client, key, "the record stayed unavailable once the members holding its latest configuration died");
    }

    /// <summary>A transport that loses the record messages <c>lost</c> names (by sender, receiver and message) on
    /// arrival, acknowledging their hop so that the sender does not take the receiver for dead.</summary>
    private sealed class LosingRecordMessages(IOverlayTransport inner, Func<NodeKey, NodeKey, RecordMessage, bool> lost) : IOverlayTransport
    {
        public NodeKey Self { get; set; }

        public NodeAddress LocalAddress => inner.LocalAddress;

        public int MaxPayload => inner.MaxPayload;

        public void Send(NodeAddress destination, OverlayMessage message) => inner.Send(destination, message);

        public void SetReceiver(IOverlayReceiver receiver) => inner.SetReceiver(new Receiver(this, receiver));

        private void Receive(IOverlayReceiver node, OverlayMessage message)
        {
            if (message is not DirectMessage { Channel: RecordStore.Channel } direct || !lost(direct.Sender.Key, Self, RecordMessage.Decode(direct.Payload)))
            {
                node.Receive(message);
                return;
            }

            if (direct.HopId != 0)
            {
                inner.Send(direct.Sender.Address, new RouteAckMessage { Sender = new NodeHandle(Self, LocalAddress), HopId = direct.HopId });
            }
        }

        private sealed class Receiver(LosingRecordMessages transport, IOverlayReceiver node) : IOverlayReceiver
        {
            public void Receive(OverlayMessage message) => transport.Receive(node, message);
        }
    }

    /// <summary>A node's transport on which record answers from some nodes to its queries arrive late: each is
    /// acknowledged at once (so Pastry takes the sender as alive, as it does a busy process that still heartbeats) and
    /// handed to the node <paramref name="delay"/> later.</summary>
    private sealed class LateRecordAnswers(IOverlayTransport inner, NodeKey self, Iris.Overlay.Timing.TimerQueue timers, Func<NodeKey, bool> slow, TimeSpan delay)
        : IOverlayTransport
    {
        public NodeAddress LocalAddress => inner.LocalAddress;

        public int MaxPayload => inner.MaxPayload;

        public void Send(NodeAddress destination, OverlayMessage message) => inner.Send(destination, message);

        public void SetReceiver(IOverlayReceiver receiver) => inner.SetReceiver(new Receiver(this, receiver));

        private void Receive(IOverlayReceiver node, OverlayMessage message)
        {
            if (message is not DirectMessage { Channel: RecordStore.Channel, HopId: not 0 } direct || !IsLateAnswer(direct))
            {
                node.Receive(message);
                return;
            }

            inner.Send(direct.Sender.Address, new RouteAckMessage { Sender = new NodeHandle(self, LocalAddress), HopId = direct.HopId });
            var later = direct.WithHopId(0);
            timers.Create(() => node.Receive(later)).ScheduleAt(timers.NowMs + (long)delay.TotalMilliseconds);
        }

        private bool IsLateAnswer(DirectMessage direct) =>
            slow(direct.Sender.Key) && RecordMessage.Decode(direct.Payload) is { Type: RecordMessageType.AcceptorReply, Phase: RecordMessageType.Query };

        private sealed class Receiver(LateRecordAnswers transport, IOverlayReceiver node) : IOverlayReceiver
        {
            public void Receive(OverlayMessage message) => transport.Receive(node, message);
        }
    }

    [Fact]
    public void With_three_of_five_acceptors_cut_off_reads_and_writes_fail_typed_in_time_and_nothing_is_lost_after_healing()
    {
        var (ring, stores) = Build(30, seed: 5);
        using var _ = ring;
        var key = NodeKey.FromName("minority");
        var client = stores[ring.Nodes[1]];
        Assert.True(ring.Await(client.CompareAndSwapAsync(key, 0, Text("v1"))).Success);
        Assert.True(ring.Await(client.CompareAndSwapAsync(key, 1, Text("v2"))).Success);

        var root = ring.TrueRoot(key);
        var members = stores[root].AcceptorState(key)!.Value.Configuration.Members;
        var cut = ring.Nodes.Where(n => n != root && n != ring.Nodes[1] && members.Any(m => m.Key == n.Self.Key)).Take(3).ToList();
        Assert.Equal(3, cut.Count);
        ring.Network.Partition(cut.Select(n => n.Self.Address));

        foreach (var attempt in new Func<Task>[] { () => client.CompareAndSwapAsync(key, 2, Text("lost")), () => client.ReadAsync(key) })
        {
            var task = attempt();
            ring.Pump(task.ContinueWith(_ => { }, TaskScheduler.Default), Limit);
            Assert.True(task.IsFaulted, "an operation succeeded without a majority of the record's acceptors");

            // The root's answer, not the requester's own timeout: it arrived within the operation timeout (after it, the
            // requester's timer would have failed the request as timed out). Timing it here would measure the thread
            // pool too: simulated time runs on while a continuation waits for a thread.
            Assert.True(task.Exception!.InnerException is RecordUnavailableException, task.Exception.ToString());
        }

        ring.Network.Heal();
        Assert.True(ring.Stabilise(TimeSpan.FromSeconds(60)) is not null, ring.DescribeWrongLeafSets());
        var read = ring.Await(client.ReadAsync(key))!;
        Assert.True(read.Version >= 2);
        Assert.True(read.Version == 2 ? Text(read) == "v2" : Text(read) == "lost", $"{read.Version} {Text(read)}");
        Assert.True(ring.Await(client.CompareAndSwapAsync(key, read.Version, Text("after"))).Success);
        Assert.Equal("after", Text(ring.Await(stores[ring.Nodes[9]].ReadAsync(key))));
    }

    [Fact]
    public void Concurrent_writers_under_message_loss_and_an_acceptor_crash_lose_no_acknowledged_update()
    {
        var (ring, stores) = Build(40, seed: 6, loss: 0.01);
        using var _ = ring;
        var key = NodeKey.FromName("busy");
        Assert.True(ring.Await(stores[ring.Nodes[0]].CompareAndSwapAsync(key, 0, BitConverter.GetBytes(0))).Success);
        var root = ring.TrueRoot(key);
        var members = stores[root].AcceptorState(key)!.Value.Configuration.Members;
        var victim = ring.Nodes.First(n => n != root && members.Any(m => m.Key == n.Self.Key));
        var writers = ring.Nodes.Where(n => n != victim).Take(20).ToList();
        var acknowledged = new System.Collections.Concurrent.ConcurrentBag<(long Version, int Value)>();

        // Each writer increments once: read, compare-and-swap; a failed swap whose outcome is unknown is sent again
        // with the same write id, so it is either recognised as done or refused, never applied twice.
        async Task Increment(PastryNode node)
        {
            var store = stores[node];
            for (ulong attempt = 1; ; attempt++)
            {
                RecordValue? current;
                try
                {
                    current = await store.ReadAsync(key);
                }
                catch (Exception e) when (e is RecordTimeoutException or RecordUnavailableException)
                {
                    continue;
                }

                var next = BitConverter.ToInt32(current!.Data) + 1;
                var id = new WriteId(node.Self.Key, attempt);
                while (true)
                {
                    try
                    {
                        var result = await store.CompareAndSwapAsync(key, current.Version, BitConverter.GetBytes(next), id);
                        if (result.Success)
                        {
                            acknowledged.Add((current.Version + 1, next));
                            return;
                        }

                        break;
                    }
                    catch (Exception e) when (e is RecordTimeoutException or RecordUnavailableException)
                    {
                    }
                }
            }
        }

        var all = Task.WhenAll(writers.Select(Increment));
        ring.Run(TimeSpan.FromMilliseconds(300));
        stores[victim].Dispose();
        ring.Crash(victim);
        ring.Pump(all, TimeSpan.FromSeconds(180));

        var final = ring.Await(stores[writers[0]].ReadAsync(key))!;
        Assert.Equal(writers.Count, BitConverter.ToInt32(final.Data));
        Assert.Equal(writers.Count + 1, final.Version);
        var versions = acknowledged.Select(a => a.Version).Order().ToList();
        Assert.Equal(Enumerable.Range(2, writers.Count).Select(v => (long)v), versions);
        Assert.All(acknowledged, a => Assert.Equal(a.Version - 1, a.Value));
    }

    [Fact]
    public void Record_messages_round_trip_and_every_truncated_or_retired_one_is_refused()
    {
        var key = NodeKey.FromName("codec");
        var node = NodeKey.FromName("node");
        var config = new RecordConfiguration(3, [new RecordMember(node, 77, new Iris.Overlay.Transport.NodeAddress("mem://1"))]);
        var register = new Register(5, [1, 2, 3], [(new WriteId(node, 9), 5)], config);
        var messages = new[]
        {
            new RecordMessage(RecordMessageType.Request, key, node, 1) { IsWrite = true, ExpectedVersion = 4, OriginAddress = new("mem://2"), Data = [7], WriteId = new WriteId(node, 12), Configuration = config },
            new RecordMessage(RecordMessageType.Reply, key, node, 1) { Success = true, Value = new RecordValue([9], 2) { Writer = (node, 3) }, Configuration = config },
            new RecordMessage(RecordMessageType.Failure, key, node, 1) { Reason = RecordFailure.NoMajority },
            new RecordMessage(RecordMessageType.Prepare, key, node, 2) { Epoch = 3, Ballot = new Ballot(4, node), Incarnation = 77 },
            new RecordMessage(RecordMessageType.Accept, key, node, 2) { Epoch = 3, Ballot = new Ballot(4, node), Incarnation = 77, Register = register },
            new RecordMessage(RecordMessageType.Seed, key, node, 2) { Incarnation = 77, Configuration = config, Register = register with { Next = null } },
            new RecordMessage(RecordMessageType.Query, key, node, 2),
            new RecordMessage(RecordMessageType.AcceptorReply, key, node, 2)
            {
                Phase = RecordMessageType.Prepare, Status = AcceptorStatus.Stale, Incarnation = 77, Promised = new Ballot(4, node), Accepted = new Ballot(3, node),
                Configuration = config, Register = register,
            },
        };

        foreach (var message in messages)
        {
            var bytes = message.Encode();
            Assert.Equal(bytes, RecordMessage.Decode(bytes).Encode());
            for (var length = 0; length < bytes.Length; length++)
            {
                Assert.Throws<OverlayProtocolException>(() => RecordMessage.Decode(bytes.AsMemory(0, length)));
            }

            Assert.Throws<OverlayProtocolException>(() => RecordMessage.Decode((byte[])[.. bytes, 0]));
        }

        Assert.Equal(config.Members, RecordMessage.Decode(messages[0].Encode()).Configuration!.Members);
        Assert.Null(RecordMessage.Decode(messages[2].Encode()).Configuration);
        var decoded = RecordMessage.Decode(messages[7].Encode());
        Assert.Equal(config.Members, decoded.Configuration!.Members);
        Assert.Equal(register.Recent, decoded.Register!.Recent);
        Assert.Equal(config.Members, decoded.Register.Next!.Members);
        Assert.False(decoded.Leaving);
        Assert.True(RecordMessage.Decode((messages[7] with { Leaving = true }).Encode()).Leaving);
        for (byte retired = 3; retired <= 6; retired++)
        {
            var bytes = messages[6].Encode();
            bytes[0] = retired;
            Assert.Throws<OverlayProtocolException>(() => RecordMessage.Decode(bytes));
        }
    }
}
