using CsCheck;
using Iris.Overlay;
using Iris.Overlay.Pastry;
using Iris.Overlay.Transport;

namespace Iris.Tests.Overlay;

public class LeafSetTests
{
    private static readonly Gen<NodeKey> Key = Generators.Key;

    private static NodeHandle Handle(NodeKey key) => new(key, new NodeAddress("mem://" + key.ToShortString()));

    [Fact]
    public void Each_side_holds_the_nearest_nodes_in_order_whatever_the_insertion_order() =>
        Gen.Select(Key, Key.Array[0, 60], Gen.Int[1, 8]).Sample((self, others, half) =>
        {
            var leafSet = new LeafSet(self, half * 2);
            foreach (var key in others)
            {
                leafSet.TryAdd(Handle(key));
            }

            var distinct = others.Where(k => k != self).Distinct().ToList();
            var clockwise = distinct.OrderBy(self.ClockwiseDistance).Take(half).ToList();
            var counterClockwise = distinct.OrderBy(k => k.ClockwiseDistance(self)).Take(half).ToList();
            return leafSet.Clockwise.Select(h => h.Key).SequenceEqual(clockwise)
                && leafSet.CounterClockwise.Select(h => h.Key).SequenceEqual(counterClockwise)
                && leafSet.ToArray().Length == leafSet.ToArray().Select(h => h.Key).Distinct().Count();
        });

    [Fact]
    public void Every_change_bumps_the_version_and_nothing_else_does()
    {
        var self = new NodeKey(1000);
        var leafSet = new LeafSet(self, 4);
        var version = leafSet.Version;
        Assert.True(leafSet.TryAdd(Handle(new NodeKey(1010))));
        Assert.Equal(version + 1, leafSet.Version);
        Assert.False(leafSet.TryAdd(Handle(new NodeKey(1010))));
        Assert.False(leafSet.TryAdd(Handle(self)));
        Assert.Equal(version + 1, leafSet.Version);
        Assert.True(leafSet.Remove(new NodeKey(1010)));
        Assert.False(leafSet.Remove(new NodeKey(1010)));
        Assert.Equal(version + 2, leafSet.Version);
    }

    [Fact]
    public void Nodes_pushed_off_both_sides_are_reported_as_evicted()
    {
        var self = new NodeKey(UInt128.One << 127);
        var leafSet = new LeafSet(self, 2);
        var evicted = new List<NodeHandle>();
        leafSet.TryAdd(Handle(new NodeKey(self.Value + 100)), evicted);
        leafSet.TryAdd(Handle(new NodeKey(self.Value - 100)), evicted);
        Assert.Empty(evicted);
        leafSet.TryAdd(Handle(new NodeKey(self.Value + 50)), evicted);
        Assert.Equal(new NodeKey(self.Value + 100), Assert.Single(evicted).Key);
    }

    [Fact]
    public void A_small_ring_is_covered_whole_and_a_full_leaf_set_covers_only_its_span()
    {
        var self = new NodeKey(UInt128.One << 127);
        var leafSet = new LeafSet(self, 4);
        leafSet.TryAdd(Handle(new NodeKey(self.Value + 10)));
        Assert.True(leafSet.CoversRing);
        Assert.True(leafSet.IsInRange(NodeKey.Zero));

        foreach (var offset in new[] { 20, -10, -20 })
        {
            leafSet.TryAdd(Handle(new NodeKey((UInt128)((Int128)self.Value + offset))));
        }

        Assert.False(leafSet.CoversRing);
        Assert.True(leafSet.IsInRange(new NodeKey(self.Value + 15)));
        Assert.True(leafSet.IsInRange(new NodeKey(self.Value - 20)));
        Assert.False(leafSet.IsInRange(new NodeKey(self.Value + 21)));
        Assert.False(leafSet.IsInRange(NodeKey.Zero));
    }

    [Fact]
    public void The_closest_member_to_a_key_is_found_and_an_excluded_node_is_skipped()
    {
        var self = new NodeKey(1000);
        var leafSet = new LeafSet(self, 4);
        leafSet.TryAdd(Handle(new NodeKey(1010)));
        leafSet.TryAdd(Handle(new NodeKey(1020)));
        Assert.Equal(new NodeKey(1020), leafSet.CloserThanSelf(new NodeKey(1018), NodeKey.Zero)!.Value.Key);
        Assert.Equal(new NodeKey(1010), leafSet.CloserThanSelf(new NodeKey(1018), new NodeKey(1020))!.Value.Key);
        Assert.Null(leafSet.CloserThanSelf(new NodeKey(1002), NodeKey.Zero));
    }
}
