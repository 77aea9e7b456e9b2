using System.Collections.Concurrent;
using Iris.Tests.Support;
using Iris.Tests.TestClusters;
using Orleans.TestingHost;

namespace Iris.Tests.Requests;

/// <summary>Faults of the one-hop route from clients, on a cluster of their own (xUnit gives each class its own
/// fixture): a gateway passed over here is not passed over for another test.</summary>
public sealed class DirectRouteFaultTests(DirectRouteCluster fixture) : IClassFixture<DirectRouteCluster>
{
    private const byte Block = 0xFF;
    private const byte Slow = 0xFE;

    private TestCluster Cluster => fixture.Cluster;

    private static string Name(string what) => $"{what}-{Guid.NewGuid():N}";

    private long Served() => OneHop.Served(Cluster);

    private Task UntilServedDirectlyAsync(string name) => OneHop.UntilServedDirectlyAsync(Cluster, name);

    /// <summary>Counts runs by the request's first byte; a request starting with <see cref="Block"/> blocks its thread
    /// (synchronous work before the handler's first await), one starting with <see cref="Slow"/> takes 6 s.</summary>
    private sealed class Handler : IClusterHandler
    {
        public readonly ConcurrentDictionary<byte, int> Runs = new();
        public readonly TaskCompletionSource Blocking = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken)
        {
            Runs.AddOrUpdate(request[0], 1, (_, n) => n + 1);
            if (request[0] == Block)
            {
                Blocking.TrySetResult();
                Thread.Sleep(TimeSpan.FromSeconds(30));
            }
            else if (request[0] == Slow)
            {
                await Task.Delay(TimeSpan.FromSeconds(6), CancellationToken.None);
            }

            return request;
        }

        public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken) => Task.CompletedTask;

        public Task HandleTunnelAsync(ITunnel tunnel, CancellationToken cancellationToken) => throw new InvalidOperationException("requests only");
    }

    /// <summary>
    /// A call for a system target has no time to live in Orleans (Message.IsExpirableMessage), so a direct copy that is
    /// held up (here: queued behind a handler whose synchronous part holds the member host service's only turn; in the
    /// field also a stalled connection) is never dropped. Its caller gives up on it after 5 s and repeats it through the
    /// member host grain, where it runs; 20 s later the ledger forgets that run, and then the held-up copy runs again.
    /// </summary>
    [Fact]
    public async Task A_direct_copy_held_up_past_the_ledgers_memory_does_not_run_a_request_a_second_time()
    {
        var name = Name("held-up");
        var handler = new Handler();
        await using var registration = await Cluster.Silos[1].Iris().RegisterAsync(name, handler);
        await UntilServedDirectlyAsync(name);

        var blocking = Cluster.Iris().RequestAsync(name, [Block], TimeSpan.FromSeconds(90));
        await handler.Blocking.Task.WaitAsync(TimeSpan.FromSeconds(10));

        // Sent in one hop, queued behind the blocked turn; answered through the grain after the caller's 5 s.
        Assert.Equal([2], await Cluster.Iris().RequestAsync(name, [2], TimeSpan.FromSeconds(60)));
        Assert.Equal(1, handler.Runs.GetValueOrDefault((byte)2));

        Assert.Equal(new[] { Block }, await blocking);
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.Equal(1, handler.Runs.GetValueOrDefault(Block));
        Assert.Equal(1, handler.Runs.GetValueOrDefault((byte)2));
    }

    /// <summary>
    /// A request that merely takes longer than the call's response timeout (5 s) is not lost: the first call ends in
    /// Orleans' TimeoutException and the repeat joins the run. DirectRoutes.RequestAsync counts that as a call that
    /// "may not have reached" the silo and passes the gateway over for 30 s: every request from this client to that
    /// silo then takes two hops.
    /// </summary>
    [Fact]
    public async Task A_request_that_is_only_slow_does_not_pass_its_silos_gateway_over()
    {
        var name = Name("slow");
        var handler = new Handler();
        await using var registration = await Cluster.Silos[2].Iris().RegisterAsync(name, handler);
        await UntilServedDirectlyAsync(name);

        Assert.Equal(new[] { Slow }, await Cluster.Iris().RequestAsync(name, [Slow], TimeSpan.FromSeconds(30)));
        Assert.Equal(1, handler.Runs.GetValueOrDefault(Slow));

        var served = Served();
        Assert.Equal([3], await Cluster.Iris().RequestAsync(name, [3], TimeSpan.FromSeconds(10)));
        Assert.Equal(served + 1, Served());
    }
}
