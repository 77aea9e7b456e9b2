using Iris.Overlay;
using Iris.Overlay.Pastry;
using Iris.Overlay.Records;
using Iris.Simulator;

namespace Iris.Tests.Overlay;

/// <summary>The requests a node waits on (records, root lookups) when the node stops under them.</summary>
public class PendingRequestsTests
{
    /// <summary>A ring in which only <c>Client</c> runs the service, so the root of <c>Key</c> drops every request
    /// and the client's stays pending, retried every interval.</summary>
    private static (PastrySimulation Ring, PastryNode Client, NodeKey Key) Build()
    {
        var ring = new PastrySimulation(new PastrySimulationOptions { Seed = 5 });
        ring.AddNodes(10, TimeSpan.FromMilliseconds(2));
        Assert.True(ring.Stabilise(TimeSpan.FromSeconds(60)) is not null);
        var client = ring.Nodes[0];
        var key = NodeKey.FromName("pending");
        Assert.NotEqual(client, ring.TrueRoot(key));
        return (ring, client, key);
    }

    [Fact]
    public async Task A_record_request_pending_when_its_node_leaves_fails_as_stopped_and_no_timer_throws()
    {
        var (ring, client, key) = Build();
        using var _ = ring;
        using var store = new RecordStore(client, ring.Timers);
        var read = store.ReadAsync(key);
        ring.Run(TimeSpan.FromMilliseconds(1500));
        Assert.False(read.IsCompleted);

        ring.Leave(client);
        ring.Run(TimeSpan.FromSeconds(2));

        Assert.Equal(0, ring.Timers.Failures);
        await Assert.ThrowsAsync<OverlayNodeStoppedException>(() => read.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task A_root_lookup_pending_when_its_node_leaves_fails_as_stopped_and_no_timer_throws()
    {
        var (ring, client, key) = Build();
        using var _ = ring;
        using var locator = new RootLocator(client, ring.Timers, "client");
        var lookup = locator.FindRootAsync(key, TimeSpan.FromSeconds(10));
        ring.Run(TimeSpan.FromMilliseconds(700));
        Assert.False(lookup.IsCompleted);

        ring.Leave(client);
        ring.Run(TimeSpan.FromSeconds(1));

        Assert.Equal(0, ring.Timers.Failures);
        await Assert.ThrowsAsync<OverlayNodeStoppedException>(() => lookup.WaitAsync(TimeSpan.FromSeconds(10)));
    }
}
