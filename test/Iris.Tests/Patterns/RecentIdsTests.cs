using System.Buffers.Binary;
using Iris.Calls;
using Iris.Dissemination;
using Iris.Protocol;
using Microsoft.Extensions.Time.Testing;

namespace Iris.Tests.Patterns;

public class RecentIdsTests
{
    [Fact]
    public void Every_id_is_new_once_whether_given_by_Iris_or_random()
    {
        var seen = new RecentIds(new FakeTimeProvider());
        var ids = Enumerable.Range(0, 5_000).Select(_ => CallIds.Next()).Concat(Enumerable.Range(0, 5_000).Select(_ => Guid.NewGuid())).ToArray();
        Random.Shared.Shuffle(ids);
        AssertNewOnce(seen, ids);
    }

    [Fact]
    public void Ids_that_share_a_block_of_64_are_told_apart()
    {
        var seen = new RecentIds(new FakeTimeProvider());
        var prefix = Guid.NewGuid().ToByteArray().AsSpan(0, 8).ToArray();
        Guid Id(ulong counter) => new([.. prefix, .. BitConverter.GetBytes(counter)]);

        // Every other id of one block, then of the next block, then the ids in between.
        for (ulong i = 0; i < 128; i += 2)
        {
            Assert.True(seen.Add(Id(i)));
        }

        for (ulong i = 1; i < 128; i += 2)
        {
            Assert.False(seen.Contains(Id(i)));
            Assert.True(seen.Add(Id(i)));
        }

        // The same counters from another sender are other ids.
        prefix[0] ^= 1;
        Assert.True(seen.Add(Id(5)));
        prefix[0] ^= 1;
        Assert.False(seen.Add(Id(5)));
    }

    [Fact]
    public void An_id_is_remembered_for_a_minute_at_least_and_forgotten_after_two()
    {
        var time = new FakeTimeProvider();
        var seen = new RecentIds(time);
        var id = CallIds.Next();
        Assert.True(seen.Add(id));
        time.Advance(TimeSpan.FromSeconds(61));
        Assert.False(seen.Add(id));
        Assert.True(seen.Contains(id));
        time.Advance(TimeSpan.FromSeconds(61));
        Assert.False(seen.Contains(id));
        Assert.True(seen.Add(id));
    }

    [Theory]
    [InlineData("00000000-0000-0000-0000-000000000000")]
    [InlineData("ffffffff-ffff-ffff-ffff-ffffffffffff")]
    [InlineData("0123abcd-4567-89ef-fedc-ba9876543210")]
    public void Ids_that_differ_in_any_one_of_their_128_bits_are_told_apart(string id)
    {
        var seen = new RecentIds(new FakeTimeProvider());
        var start = Guid.Parse(id);
        Assert.True(seen.Add(start));
        for (var bit = 0; bit < 128; bit++)
        {
            var bytes = start.ToByteArray();
            bytes[bit / 8] ^= (byte)(1 << (bit % 8));
            var neighbour = new Guid(bytes);
            Assert.False(seen.Contains(neighbour), $"bit {bit}");
            Assert.True(seen.Add(neighbour), $"bit {bit}");
            Assert.False(seen.Add(neighbour), $"bit {bit}");
        }

        Assert.False(seen.Add(start));
    }

    [Fact]
    public void Blocks_whose_hashes_collide_are_told_apart()
    {
        static Guid Id(ulong prefix, ulong low)
        {
            var bytes = new byte[16];
            BinaryPrimitives.WriteUInt64LittleEndian(bytes, prefix);
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(8), low);
            return new Guid(bytes);
        }

        var seen = new RecentIds(new FakeTimeProvider());

        // The same bit of blocks whose hashes are equal: the prefix's halves cancel, the prefix and the block trade a
        // bit, the block's halves cancel.
        AssertNewOnce(seen, [Id(0, 5), Id(0x0000_0001_0000_0001, 5), Id(1, 5), Id(0, (1UL << 6) | 5), Id(0, (1UL << 38) | (1UL << 6) | 5)]);
    }

    [Fact]
    public void A_block_held_in_both_generations_keeps_the_ids_of_each()
    {
        var time = new FakeTimeProvider();
        var seen = new RecentIds(time);
        var prefix = Guid.NewGuid().ToByteArray().AsSpan(0, 8).ToArray();
        Guid Id(ulong counter) => new([.. prefix, .. BitConverter.GetBytes(counter)]);

        Assert.True(seen.Add(Id(1)));
        time.Advance(TimeSpan.FromSeconds(61));
        Assert.True(seen.Add(Id(2)));
        Assert.False(seen.Add(Id(1)));
        Assert.True(seen.Contains(Id(1)));
        Assert.Equal(new[] { Id(3) }, seen.Fresh([new Disseminated(Id(1), []), new Disseminated(Id(2), []), new Disseminated(Id(3), [])]).Select(m => m.Id));

        time.Advance(TimeSpan.FromSeconds(61));
        Assert.False(seen.Contains(Id(1)));
        Assert.True(seen.Contains(Id(2)));
        Assert.True(seen.Contains(Id(3)));
        Assert.True(seen.Add(Id(1)));
    }

    [Fact]
    public void Fresh_keeps_the_new_messages_of_a_batch_in_order_and_drops_repeats_within_it()
    {
        var seen = new RecentIds(new FakeTimeProvider());
        var messages = Enumerable.Range(0, 10).Select(i => new Disseminated(CallIds.Next(), [(byte)i])).ToArray();
        var first = messages[..4];
        Assert.Same(first, seen.Fresh(first));
        Assert.Empty(seen.Fresh(messages[..4]));

        var mixed = seen.Fresh([messages[2], messages[5], messages[6], messages[5], messages[3], messages[7]]);
        Assert.Equal([5, 6, 7], mixed.Select(m => (int)m.Body[0]));
    }

    /// <summary>Adds <paramref name="ids"/>, each unseen before and new; then each is seen and no longer new.</summary>
    private static void AssertNewOnce(RecentIds seen, Guid[] ids)
    {
        foreach (var id in ids)
        {
            Assert.False(seen.Contains(id));
            Assert.True(seen.Add(id));
        }

        foreach (var id in ids)
        {
            Assert.True(seen.Contains(id));
            Assert.False(seen.Add(id));
        }
    }
}
