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
}
