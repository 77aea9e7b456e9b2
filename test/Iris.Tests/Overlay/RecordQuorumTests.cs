using System.Text;
using Iris.Overlay;
using Iris.Overlay.Pastry;
using Iris.Overlay.Records;
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
}
