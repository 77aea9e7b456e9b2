using CsCheck;
using Iris.Overlay;
using Iris.Overlay.Pastry;
using Iris.Overlay.Transport;

namespace Iris.Tests.Overlay;

public class RoutingTableTests
{
    private static readonly Gen<NodeKey> Key = Generators.Key;

    // Keys near the table's owner, so deep rows get filled too.
    private static Gen<NodeKey> Near(NodeKey self) =>
        Gen.Select(Gen.Int[0, 124], Gen.ULong, (bits, noise) =>
            new NodeKey(self.Value ^ ((new UInt128(noise, ~noise) >> bits) | (UInt128.One << (127 - bits)))));

    [Fact]
    public void Every_entry_shares_its_row_count_of_digits_and_has_its_column_as_next_digit() =>
        Key.SelectMany(self => Near(self).Array[0, 200].Select(others => (self, others))).Sample(t =>
        {
            var (self, others) = t;
            var table = new RoutingTable(self);
            foreach (var key in others)
            {
                table.TryAdd(new NodeHandle(key, new NodeAddress("mem://x")));
            }

            var count = 0;
            for (var row = 0; row < NodeKey.DigitCount; row++)
            {
                for (var column = 0; column < NodeKey.Base; column++)
                {
                    if (table.Get(row, column) is not { } entry)
                    {
                        continue;
                    }

                    count++;
                    if (self.SharedPrefixLength(entry.Key) != row || entry.Key.Digit(row) != column || column == self.Digit(row))
                    {
                        return false;
                    }
                }
            }

            return count == table.Count && count == others.Where(k => k != self).Select(k => (self.SharedPrefixLength(k), k.Digit(Math.Min(31, self.SharedPrefixLength(k))))).Distinct().Count();
        });

    [Fact]
    public void The_first_node_keeps_its_slot_and_removal_frees_it()
    {
        var self = new NodeKey(UInt128.Zero);
        var table = new RoutingTable(self);
        var first = new NodeHandle(new NodeKey(UInt128.One << 124), new NodeAddress("mem://1"));
        var second = new NodeHandle(new NodeKey((UInt128.One << 124) + 5), new NodeAddress("mem://2"));
        Assert.True(table.TryAdd(first));
        Assert.False(table.TryAdd(second));
        Assert.Equal(first, table.Get(0, 1));
        Assert.False(table.HasRoomFor(second.Key));
        Assert.Equal(-1, table.Remove(second.Key));
        Assert.Equal(0, table.Remove(first.Key));
        Assert.True(table.HasRoomFor(second.Key));
        Assert.False(table.TryAdd(new NodeHandle(self, new NodeAddress("mem://self"))));
    }
}
