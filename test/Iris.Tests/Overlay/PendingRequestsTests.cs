using Iris.Overlay;
using Iris.Overlay.Pastry;
using Iris.Overlay.Records;
using Iris.Overlay.Timing;
using Iris.Simulator;

namespace Iris.Tests.Overlay;

/// <summary>The requests a node waits on (records, root lookups) when the node stops under them.</summary>
public class PendingRequestsTests
{
    [Fact]
    public Task A_record_request_pending_when_its_node_leaves_fails_as_stopped_and_no_timer_throws() =>
        FailsAsStoppedWhenItsNodeLeaves(
            (node, timers, key) =>
            {
                var store = new RecordStore(node, timers);
                return (store, store.ReadAsync(key));
            },
            retryInterval: new RecordOptions().RetryInterval);

    [Fact]
    public Task A_root_lookup_pending_when_its_node_leaves_fails_as_stopped_and_no_timer_throws() =>
        FailsAsStoppedWhenItsNodeLeaves(
            (node, timers, key) =>
            {
                var locator = new RootLocator(node, timers, "client");
                return (locator, locator.FindRootAsync(key, TimeSpan.FromSeconds(10)));
            },
            retryInterval: TimeSpan.FromMilliseconds(500));

    /// <summary>Only the client runs the service, so the root of the key drops every request and the client's stays
    /// pending, retried every <paramref name="retryInterval"/>, until the client leaves the ring.</summary>
    private static async Task FailsAsStoppedWhenItsNodeLeaves(Func<PastryNode, TimerQueue, NodeKey, (IDisposable Service, Task Request)> start, TimeSpan retryInterval)
    {
        using var ring = new PastrySimulation(new PastrySimulationOptions { Seed = 5 });
        ring.AddNodes(10, TimeSpan.FromMilliseconds(2));
        Assert.True(ring.Stabilise(TimeSpan.FromSeconds(60)) is not null);
        var client = ring.Nodes[0];
        var key = NodeKey.FromName("pending");
        Assert.NotEqual(client, ring.TrueRoot(key));

        var (service, request) = start(client, ring.Timers, key);
        using var _ = service;
        ring.Run(retryInterval * 1.5);
        Assert.False(request.IsCompleted);

        ring.Leave(client);
        ring.Run(retryInterval * 2);

        Assert.Equal(0, ring.Timers.Failures);
        await Assert.ThrowsAsync<OverlayNodeStoppedException>(() => request.WaitAsync(TimeSpan.FromSeconds(10)));
    }
}
