using System.Text;
using Iris.Overlay;
using Iris.Overlay.Pastry;
using Iris.Overlay.Records;
using Iris.Simulator;
using Iris.Tests.Support;

namespace Iris.Tests.Overlay;

public class RecordStoreTests
{
    private static (PastrySimulation Ring, Dictionary<PastryNode, RecordStore> Stores) Build(int nodes, int seed = 1)
    {
        var ring = new PastrySimulation(new PastrySimulationOptions { Seed = seed });
        ring.AddNodes(nodes, TimeSpan.FromMilliseconds(2));
        Assert.True(ring.Stabilise(TimeSpan.FromSeconds(60)) is not null);
        return (ring, ring.Nodes.ToDictionary(n => n, n => new RecordStore(n, ring.Timers)));
    }

    private static byte[] Text(string text) => Encoding.UTF8.GetBytes(text);

    [Fact]
    public void Compare_and_swap_applies_only_on_the_expected_version()
    {
        var (ring, stores) = Build(40);
        using var _ = ring;
        var key = NodeKey.FromName("membership");
        var a = stores[ring.Nodes[3]];
        var b = stores[ring.Nodes[17]];

        Assert.Null(ring.Await(a.ReadAsync(key)));
        var first = ring.Await(a.CompareAndSwapAsync(key, 0, Text("one")));
        Assert.True(first.Success);
        Assert.Equal(1, first.Current!.Version);

        var stale = ring.Await(b.CompareAndSwapAsync(key, 0, Text("other")));
        Assert.False(stale.Success);
        Assert.Equal("one", Encoding.UTF8.GetString(stale.Current!.Data));

        var second = ring.Await(b.CompareAndSwapAsync(key, 1, Text("two")));
        Assert.True(second.Success);
        Assert.Equal(2, ring.Await(a.ReadAsync(key))!.Version);
    }

    [Fact]
    public void Records_with_nothing_in_progress_leave_the_timer_alone()
    {
        // A root keeps what it knows of every record it served; its timer must look only at those with work to do,
        // or every record message costs time in proportion to all the records the node ever served.
        var (ring, stores) = Build(20);
        using var _ = ring;
        var writer = stores[ring.Nodes[5]];
        var keys = Enumerable.Range(0, 300).Select(i => NodeKey.FromName($"name-{i}")).ToList();
        var writes = keys.Select(key => writer.CompareAndSwapAsync(key, 0, Text("registered"))).ToList();
        Assert.True(stores.Values.Sum(s => s.ProposerLoad().Busy) > 0, "no root had the writes in progress");

        ring.Pump(Task.WhenAll(writes), TimeSpan.FromSeconds(60));
        Assert.All(writes, w => Assert.True(w.Result.Success));
        var load = stores.Values.Select(s => s.ProposerLoad()).ToList();
        Assert.True(load.Sum(l => l.Records) >= keys.Count, $"the roots served {load.Sum(l => l.Records)} records, not {keys.Count}");
        Assert.Equal(0, load.Sum(l => l.Busy));

        // And a record written again after that is served as before.
        var again = ring.Await(stores[ring.Nodes[11]].CompareAndSwapAsync(keys[7], 1, Text("again")));
        Assert.True(again.Success);
        Assert.Equal(0, stores.Values.Sum(s => s.ProposerLoad().Busy));
    }

    [Fact]
    public void Concurrent_writers_lose_no_update()
    {
        var (ring, stores) = Build(60);
        using var _ = ring;
        var key = NodeKey.FromName("counter");
        var writers = ring.Nodes.Take(30).Select(n => stores[n]).ToList();

        // Every writer increments once: read, then compare-and-swap, again on conflict.
        async Task Increment(RecordStore store)
        {
            while (true)
            {
                var current = await store.ReadAsync(key);
                var next = (current is null ? 0 : BitConverter.ToInt32(current.Data)) + 1;
                if ((await store.CompareAndSwapAsync(key, current?.Version ?? 0, BitConverter.GetBytes(next))).Success)
                {
                    return;
                }
            }
        }

        var all = Task.WhenAll(writers.Select(Increment));
        ring.Pump(all, TimeSpan.FromSeconds(120));
        var final = ring.Await(writers[0].ReadAsync(key))!;
        Assert.Equal(30, BitConverter.ToInt32(final.Data));
        Assert.Equal(30, final.Version);
    }

    [Fact]
    public void Committed_writes_survive_the_death_of_the_records_root()
    {
        var (ring, stores) = Build(50);
        using var _ = ring;
        var key = NodeKey.FromName("table");
        var client = stores[ring.Nodes[9]];
        for (var version = 0; version < 5; version++)
        {
            Assert.True(ring.Await(client.CompareAndSwapAsync(key, version, Text($"v{version + 1}"))).Success);
        }

        var root = ring.TrueRoot(key);
        Assert.NotEqual(ring.Nodes[9], root);
        stores[root].Dispose();
        ring.Crash(root);
        Assert.True(ring.Stabilise(TimeSpan.FromSeconds(30)) is not null);

        var after = ring.Await(client.ReadAsync(key))!;
        Assert.Equal(5, after.Version);
        Assert.Equal("v5", Encoding.UTF8.GetString(after.Data));
        Assert.True(ring.Await(client.CompareAndSwapAsync(key, 5, Text("v6"))).Success);
    }

    [Fact]
    public void A_closer_node_that_joins_takes_the_record_over_with_its_newest_value()
    {
        var (ring, stores) = Build(30);
        using var _ = ring;
        var key = NodeKey.FromName("leases");
        var client = stores[ring.Nodes[4]];
        Assert.True(ring.Await(client.CompareAndSwapAsync(key, 0, Text("a"))).Success);
        Assert.True(ring.Await(client.CompareAndSwapAsync(key, 1, Text("b"))).Success);

        var newcomer = ring.AddNode(new NodeKey(key.Value + 1));
        stores[newcomer] = new RecordStore(newcomer, ring.Timers);
        Assert.True(ring.Stabilise(TimeSpan.FromSeconds(30)) is not null);
        Assert.Equal(newcomer, ring.TrueRoot(key));

        Assert.True(ring.Await(client.CompareAndSwapAsync(key, 2, Text("c"))).Success);
        var now = ring.Await(stores[ring.Nodes[20]].ReadAsync(key))!;
        Assert.Equal(3, now.Version);
        Assert.Equal("c", Encoding.UTF8.GetString(now.Data));
    }
}
