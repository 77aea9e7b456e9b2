using System.Buffers.Binary;
using Iris.Hosting;
using Iris.Tests.TestClusters;
using Iris.Tunnels;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;

namespace Iris.Tests.Tunnels;

/// <summary>Three silos on the overlay membership and a client.</summary>
public sealed class TunnelClusterFixture : IAsyncLifetime
{
    public TestCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync() => Cluster = await IrisTestCluster.DeployAsync(3);

    public async Task DisposeAsync() => await Cluster.DisposeAsync();
}

public sealed class TunnelTests(TunnelClusterFixture fixture) : IClassFixture<TunnelClusterFixture>
{
    private static readonly TimeSpan OpenTimeout = TimeSpan.FromSeconds(30);
    private static readonly int Window = new TunnelOptions().WindowBytes;

    private TestCluster Cluster => fixture.Cluster;

    private IIrisClient Client => Cluster.Iris();

    private static string NewCluster() => "tunnels-" + Guid.NewGuid().ToString("N");

    private static byte[] Numbered(int i, int size = 8)
    {
        var message = new byte[size];
        BinaryPrimitives.WriteInt32LittleEndian(message, i);
        return message;
    }

    private static int Number(byte[] message) => BinaryPrimitives.ReadInt32LittleEndian(message);

    /// <summary>Ends open in every process of the cluster.</summary>
    private int OpenEnds() =>
        Cluster.Silos.Sum(s => s.Services().GetRequiredService<LocalTunnels>().Count)
        + Cluster.Client.ServiceProvider.GetRequiredService<LocalTunnels>().Count;

    private async Task AssertAllEndsGoneAsync()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (OpenEnds() > 0)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{OpenEnds()} tunnel ends still open");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task Hundred_thousand_small_messages_arrive_in_order_both_ways_at_once()
    {
        const int count = 100_000;
        var name = NewCluster();
        var member = new TunnelMember();
        await using (await Cluster.Silos[1].Iris().RegisterAsync(name, member))
        {
            await using var opener = await Client.OpenTunnelAsync(name, OpenTimeout);
            var served = await member.NextAsync();

            static async Task SendAll(ITunnel tunnel)
            {
                for (var i = 0; i < count; i++)
                {
                    await tunnel.SendAsync(Numbered(i));
                }
            }

            static async Task ReceiveAll(ITunnel tunnel)
            {
                for (var i = 0; i < count; i++)
                {
                    Assert.Equal(i, Number(await tunnel.ReceiveAsync()));
                }
            }

            await Task.WhenAll(SendAll(opener), SendAll(served), ReceiveAll(opener), ReceiveAll(served)).WaitAsync(TimeSpan.FromMinutes(3));
        }

        await AssertAllEndsGoneAsync();
    }

    [Fact]
    public async Task A_sixteen_MiB_message_arrives_whole_and_a_larger_one_is_refused_leaving_the_tunnel_usable()
    {
        var name = NewCluster();
        await using (await Cluster.Silos[2].Iris().RegisterAsync(name, TunnelMember.Echo()))
        {
            await using var tunnel = await Client.OpenTunnelAsync(name, OpenTimeout);
            var big = new byte[16 * 1024 * 1024];
            Random.Shared.NextBytes(big);
            await tunnel.SendAsync(big);
            Assert.Equal(big, await tunnel.ReceiveAsync().AsTask().WaitAsync(TimeSpan.FromMinutes(1)));

            var error = await Assert.ThrowsAsync<TunnelMessageTooLargeException>(async () => await tunnel.SendAsync(new byte[big.Length + 1]));
            Assert.Equal(name, error.Name);
            Assert.Equal(big.Length, error.Limit);
            await tunnel.SendAsync(Numbered(7));
            Assert.Equal(7, Number(await tunnel.ReceiveAsync()));
            await tunnel.DisposeAsync();
            await AssertAllEndsGoneAsync();
        }
    }

    [Fact]
    public async Task A_slow_reader_keeps_the_sender_waiting_with_no_more_than_the_window_buffered()
    {
        var name = NewCluster();
        var member = new TunnelMember();
        await using (await Client.RegisterAsync(name, member))
        {
            await using var sender = await Client.OpenTunnelAsync(name, OpenTimeout);
            var reader = (TunnelEnd)await member.NextAsync();

            // Send 1 KiB messages until one has to wait.
            var sent = 0;
            ValueTask blocked;
            while (true)
            {
                blocked = sender.SendAsync(Numbered(sent, 1024));
                if (!blocked.IsCompleted && !await CompletesWithin(blocked, TimeSpan.FromSeconds(1)))
                {
                    break;
                }

                sent++;
                Assert.True(sent * (long)Iris.Protocol.TunnelFrame.Cost(1024) <= Window, $"sent {sent} messages of 1 KiB without waiting: the window is {Window} bytes");
            }

            Assert.True(sent * (long)Iris.Protocol.TunnelFrame.Cost(1024) >= Window - (64 * 1024), $"the sender waited after {sent} messages of 1 KiB, well before the window filled");
            await Task.Delay(500);
            Assert.InRange(reader.BufferedBytes, 0, Window);
            Assert.False(blocked.IsCompleted);

            // The reader takes a quarter window: credit flows back and the sender goes on.
            for (var i = 0; i <= Window / 4 / Iris.Protocol.TunnelFrame.Cost(1024); i++)
            {
                Assert.Equal(i, Number(await reader.ReceiveAsync()));
            }

            await blocked.AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            Assert.InRange(reader.BufferedBytes, 0, Window);
        }
    }

    [Fact]
    public async Task Cancelling_a_blocked_send_drops_that_message_and_leaves_the_tunnel_usable()
    {
        var name = NewCluster();
        var member = new TunnelMember();
        await using (await Client.RegisterAsync(name, member))
        {
            await using var sender = await Client.OpenTunnelAsync(name, OpenTimeout);
            var reader = await member.NextAsync();

            // One small message waits unread, so the chunks of a big one are not granted: it blocks part way.
            await sender.SendAsync(Numbered(1));
            using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await sender.SendAsync(new byte[3 * Window], cancel.Token));

            var after = sender.SendAsync(Numbered(2));
            Assert.Equal(1, Number(await reader.ReceiveAsync()));
            await after;
            var next = await reader.ReceiveAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(8, next.Length);
            Assert.Equal(2, Number(next));

            await reader.SendAsync(Numbered(3));
            Assert.Equal(3, Number(await sender.ReceiveAsync()));
        }
    }

    [Fact]
    public async Task Closing_gracefully_delivers_everything_sent_before()
    {
        var name = NewCluster();
        var member = new TunnelMember();
        await using (await Cluster.Silos[0].Iris().RegisterAsync(name, member))
        {
            var sender = await Client.OpenTunnelAsync(name, OpenTimeout);
            var reader = await member.NextAsync();
            for (var i = 0; i < 1000; i++)
            {
                await sender.SendAsync(Numbered(i, 100 + (i % 3000)));
            }

            await sender.CloseAsync();
            var received = new List<int>();
            await foreach (var message in reader.ReadAllAsync().WithCancellation(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token))
            {
                received.Add(Number(message));
            }

            Assert.Equal(Enumerable.Range(0, 1000), received);
            var closed = await Assert.ThrowsAsync<TunnelClosedException>(async () => await reader.SendAsync(Numbered(0)));
            Assert.Equal(TunnelCloseReason.ClosedByPeer, closed.Reason);
            Assert.Equal(TunnelCloseReason.Closed, (await Assert.ThrowsAsync<TunnelClosedException>(async () => await sender.ReceiveAsync())).Reason);
        }

        await AssertAllEndsGoneAsync();
    }

    [Fact]
    public async Task Two_thousand_tunnels_open_at_once_all_deliver_in_order()
    {
        var name = NewCluster();
        var registrations = new List<IAsyncDisposable>();
        foreach (var silo in Cluster.Silos)
        {
            registrations.Add(await silo.Iris().RegisterAsync(name, TunnelMember.Echo()));
        }

        try
        {
            var tunnels = await Task.WhenAll(Enumerable.Range(0, 2000).Select(_ => Client.OpenTunnelAsync(name, TimeSpan.FromMinutes(1))));
            Assert.Equal(2000, tunnels.Distinct().Count());
            await Task.WhenAll(tunnels.Select(async tunnel =>
            {
                for (var i = 0; i < 10; i++)
                {
                    await tunnel.SendAsync(Numbered(i));
                }

                for (var i = 0; i < 10; i++)
                {
                    Assert.Equal(i, Number(await tunnel.ReceiveAsync()));
                }

                await tunnel.CloseAsync();
            })).WaitAsync(TimeSpan.FromMinutes(3));
        }
        finally
        {
            foreach (var registration in registrations)
            {
                await registration.DisposeAsync();
            }
        }

        await AssertAllEndsGoneAsync();
    }

    [Fact]
    public async Task Opening_fails_clearly_without_members_when_refused_and_when_the_member_leaves()
    {
        var started = DateTime.UtcNow;
        var none = await Assert.ThrowsAsync<NoMembersException>(() => Client.OpenTunnelAsync(NewCluster(), OpenTimeout));
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(5));
        Assert.Contains("has no members", none.Message);

        var name = NewCluster();
        await using (await Cluster.Silos[1].Iris().RegisterAsync(name, new RequestOnlyMember()))
        {
            var refused = await Assert.ThrowsAsync<TunnelClosedException>(() => Client.OpenTunnelAsync(name, OpenTimeout));
            Assert.Equal(TunnelCloseReason.Refused, refused.Reason);
            Assert.Contains("does not serve tunnels", refused.Message);
        }

        var member = new TunnelMember();
        var registration = await Cluster.Silos[2].Iris().RegisterAsync(name, member);
        var tunnel = await Client.OpenTunnelAsync(name, OpenTimeout);
        var served = await member.NextAsync();
        var pending = tunnel.ReceiveAsync().AsTask();
        await registration.DisposeAsync();
        Assert.Equal(TunnelCloseReason.MemberUnregistered, (await Assert.ThrowsAsync<TunnelClosedException>(() => pending.WaitAsync(TimeSpan.FromSeconds(20)))).Reason);
        Assert.Equal(TunnelCloseReason.MemberUnregistered, (await Assert.ThrowsAsync<TunnelClosedException>(async () => await served.SendAsync(Numbered(1)))).Reason);
        await AssertAllEndsGoneAsync();
    }

    [Fact]
    public async Task A_member_that_accepts_after_the_opener_gave_up_learns_the_opener_timed_out()
    {
        // The offer must reach the member while the opener still waits (a busy machine may take a while: the opener
        // allows 5 s), and the member accepts only once the opener has given up.
        var name = NewCluster();
        ITunnel? late = null;
        var member = new TunnelMember(async (tunnel, cancellationToken) =>
        {
            late = tunnel;
            await Task.Delay(Timeout.Infinite, cancellationToken);
        });
        using var gaveUp = new ManualResetEventSlim();
        var accepting = new AcceptsOnSignal(member, gaveUp);
        await using (await Cluster.Silos[1].Iris().RegisterAsync(name, accepting))
        {
            var opening = Client.OpenTunnelAsync(name, TimeSpan.FromSeconds(5));
            await accepting.Offered.WaitAsync(TimeSpan.FromSeconds(20));
            await Assert.ThrowsAsync<IrisTimeoutException>(() => opening);
            gaveUp.Set();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            while (late is null || !((TunnelEnd)late).IsEnded)
            {
                Assert.True(DateTime.UtcNow < deadline, late is null ? "the member never accepted" : "the late member's end is still open");
                await Task.Delay(50);
            }

            var closed = await Assert.ThrowsAsync<TunnelClosedException>(async () => await late.SendAsync(new byte[1]));
            Assert.Equal(TunnelCloseReason.OpenerTimedOut, closed.Reason);
        }

        await AssertAllEndsGoneAsync();
    }

    /// <summary>Takes a tunnel's offer, then holds its acceptance (the handler's synchronous part) until signalled.</summary>
    private sealed class AcceptsOnSignal(IClusterHandler inner, ManualResetEventSlim signal) : IClusterHandler
    {
        private readonly TaskCompletionSource _offered = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Offered => _offered.Task;

        public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken) => inner.HandleRequestAsync(request, cancellationToken);

        public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken) => inner.HandleBroadcastAsync(message, cancellationToken);

        public Task HandleTunnelAsync(ITunnel tunnel, CancellationToken cancellationToken)
        {
            _offered.TrySetResult();
            Assert.True(signal.Wait(TimeSpan.FromSeconds(30)), "the opener never gave up");
            return inner.HandleTunnelAsync(tunnel, cancellationToken);
        }
    }

    private static async Task<bool> CompletesWithin(ValueTask task, TimeSpan time)
    {
        var asTask = task.AsTask();
        return await Task.WhenAny(asTask, Task.Delay(time)) == asTask;
    }
}
