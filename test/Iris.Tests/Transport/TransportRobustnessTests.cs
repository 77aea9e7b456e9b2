using System.Collections.Concurrent;
using System.Net;
using Iris.Overlay;
using Iris.Overlay.Pastry;
using Iris.Overlay.Security;
using Iris.Overlay.Timing;
using Iris.Overlay.Transport;
using Iris.Tests.Support;
using Xunit.Abstractions;

namespace Iris.Tests.Transport;

/// <summary>The TCP transport and the ring over it under the faults that once wedged or lost traffic: links closed
/// while being written, duplicate connections, messages too large, nodes restarted with the same key.</summary>
public sealed class TransportRobustnessTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly NetworkKey _key = NetworkKey.Generate();
    private readonly List<TcpTransport> _transports = [];
    private readonly ListLogger _log = new();

    /// <summary>Counts what arrives from each sender and checks it arrives in order.</summary>
    private sealed class OrderedInbox : IOverlayReceiver
    {
        private readonly ConcurrentDictionary<NodeAddress, ulong> _next = new();
        private long _count;
        private long _outOfOrder;

        public long Count => Interlocked.Read(ref _count);

        public long OutOfOrder => Interlocked.Read(ref _outOfOrder);

        public void Receive(OverlayMessage message)
        {
            var expected = _next.GetValueOrDefault(message.Sender.Address);
            if (message is RouteAckMessage ack)
            {
                if (ack.HopId != expected)
                {
                    Interlocked.Increment(ref _outOfOrder);
                }

                _next[message.Sender.Address] = ack.HopId + 1;
            }

            Interlocked.Increment(ref _count);
        }
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await Task.WhenAll(_transports.Select(t => t.DisposeAsync().AsTask()));
    }

    private TcpTransport Start(TcpTransportOptions? options = null, IPEndPoint? endpoint = null)
    {
        var transport = TcpTransport.Start(endpoint ?? new IPEndPoint(IPAddress.Loopback, 0), _key, options, _log);
        lock (_transports)
        {
            _transports.Add(transport);
        }

        return transport;
    }

    private static RouteAckMessage Numbered(TcpTransport from, ulong n) => new() { Sender = new NodeHandle(NodeKey.Zero, from.LocalAddress), HopId = n };

    [Fact]
    public async Task Five_hundred_pairs_dialling_each_other_at_once_deliver_every_message_both_ways_in_order()
    {
        var Pairs = int.Parse(Environment.GetEnvironmentVariable("IRIS_PAIRS") ?? "500");
        const int Messages = 2000;
        var pairs = new (TcpTransport A, OrderedInbox InA, TcpTransport B, OrderedInbox InB)[Pairs];
        for (var i = 0; i < Pairs; i++)
        {
            // A thousand nodes in one process on two cores take far longer over a handshake than a node ever does:
            // give them the time, so that what is tested is the hand-over between duplicate connections.
            var options = new TcpTransportOptions { HandshakeTimeout = TimeSpan.FromSeconds(60) };
            var (a, inA, b, inB) = (Start(options), new OrderedInbox(), Start(options), new OrderedInbox());
            a.SetReceiver(inA);
            b.SetReceiver(inB);
            pairs[i] = (a, inA, b, inB);
        }

        // Both ends of every pair send their first message at the same moment, so both dial; then each sends the
        // rest while the duplicate connections are being sorted out.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var go = new ManualResetEventSlim();
        var senders = pairs.SelectMany(p => new[] { (From: p.A, To: p.B), (From: p.B, To: p.A) }).Select(d => Task.Run(() =>
        {
            go.Wait();
            for (ulong n = 0; n < Messages; n++)
            {
                d.From.Send(d.To.LocalAddress, Numbered(d.From, n));
            }
        })).ToArray();
        go.Set();
        await Task.WhenAll(senders);

        var complete = await TcpRingTests.EventuallyAsync(
            () => pairs.All(p => p.InA.Count == Messages && p.InB.Count == Messages), TimeSpan.FromSeconds(120));
        var dead = pairs.Count(p => p.InA.Count < Messages) + pairs.Count(p => p.InB.Count < Messages);
        var dropped = _transports.Sum(t => t.Dropped);
        var outOfOrder = pairs.Sum(p => p.InA.OutOfOrder + p.InB.OutOfOrder);
        var delivered = pairs.Sum(p => p.InA.Count + p.InB.Count);
        output.WriteLine($"{Pairs} pairs, {Messages} messages each way, {clock.Elapsed.TotalSeconds:F1} s: {delivered} of {2L * Pairs * Messages} delivered, {dead} directions short, "
            + $"{dropped} dropped, {outOfOrder} out of order, {_transports.Sum(t => t.OpenConnections)} connections open");
        foreach (var (from, to, inbox) in pairs.SelectMany(p => new[] { (p.A, p.B, p.InB), (p.B, p.A, p.InA) }).Where(d => d.Item3.Count < Messages))
        {
            output.WriteLine($"{from.LocalAddress} -> {to.LocalAddress}: {inbox.Count} arrived; sender dropped {from.Dropped}, open {from.OpenConnections}, refused {from.Refused}; receiver open {to.OpenConnections}, refused {to.Refused}");
            foreach (var line in _log.Lines.Where(l => (l.Contains(from.LocalAddress.Value, StringComparison.Ordinal) || l.Contains(to.LocalAddress.Value, StringComparison.Ordinal))).Take(30))
            {
                output.WriteLine("  " + line);
            }
        }

        Assert.True(complete, $"{dead} directions did not deliver all {Messages} messages; {dropped} dropped");
        Assert.Equal(0, dropped);
        Assert.Equal(0, outOfOrder);
        Assert.True(
            await TcpRingTests.EventuallyAsync(() => _transports.Sum(t => t.OpenConnections) == 2 * Pairs, TimeSpan.FromSeconds(20)),
            $"{_transports.Sum(t => t.OpenConnections)} connections open for {Pairs} pairs: duplicates were not closed");
    }

    [Fact]
    public async Task A_payload_over_the_overlay_limit_is_refused_and_counted_and_the_next_twenty_messages_arrive()
    {
        var a = Start();
        var b = Start();
        var inbox = new OrderedInbox();
        b.SetReceiver(inbox);
        a.Send(b.LocalAddress, Numbered(a, 0));
        Assert.True(await TcpRingTests.EventuallyAsync(() => inbox.Count == 1, TimeSpan.FromSeconds(10)));

        a.Send(b.LocalAddress, new DirectMessage
        {
            Sender = new NodeHandle(NodeKey.Zero, a.LocalAddress), HopId = 7, Channel = 1, Payload = new byte[MessageCodec.MaxPayload + 1],
        });
        for (ulong n = 1; n <= 20; n++)
        {
            a.Send(b.LocalAddress, Numbered(a, n));
        }

        Assert.True(await TcpRingTests.EventuallyAsync(() => inbox.Count == 21, TimeSpan.FromSeconds(10)), $"{inbox.Count - 1} of the 20 messages after the oversized one arrived");
        Assert.Equal(0, inbox.OutOfOrder);
        Assert.Equal(1, a.Oversized);
        Assert.Equal(1, a.Dropped);
    }

    [Fact]
    public async Task A_node_refuses_an_oversized_payload_to_its_caller_with_a_typed_error()
    {
        using var timers = new TimerQueue(TimeProvider.System);
        var transport = Start(new TcpTransportOptions { MaxFrameSize = 64 * 1024 });
        using var node = new PastryNode(NodeKey.FromName("big"), transport, timers, TcpRingTests.FastPastry, new Random(1));
        node.Start();
        var error = Assert.Throws<OverlayMessageTooLargeException>(() => node.Route(NodeKey.FromName("k"), 1, new byte[64 * 1024]));
        Assert.Equal(64 * 1024, error.Size);
        Assert.Equal(node.MaxPayload, error.Limit);
        Assert.Contains("MaxFrameSize", error.Message);
        node.Route(NodeKey.FromName("k"), 1, new byte[node.MaxPayload]);
        await Task.CompletedTask;
    }

    private sealed class DirectCounter : IRouteHandler
    {
        private int _count;

        public int Count => Volatile.Read(ref _count);

        public void Deliver(RouteDelivery delivery)
        {
        }

        public void ReceiveDirect(DirectDelivery delivery) => Interlocked.Increment(ref _count);
    }

    [Fact]
    public async Task A_node_restarted_with_the_same_key_has_all_its_reliable_messages_delivered()
    {
        using var timers = new TimerQueue(TimeProvider.System);
        var receiverTransport = Start();
        using var receiver = new PastryNode(NodeKey.FromName("receiver"), receiverTransport, timers, TcpRingTests.FastPastry, new Random(1));
        var counter = new DirectCounter();
        receiver.RegisterHandler(5, counter);
        receiver.Start();

        var key = NodeKey.FromName("restarted");
        for (var run = 1; run <= 2; run++)
        {
            // Same key and same seed in both runs, as a node with a key file restarted from the same configuration.
            var transport = Start();
            using var sender = new PastryNode(key, transport, timers, TcpRingTests.FastPastry, new Random(7));
            sender.Join(receiver.Self.Address);
            Assert.True(await TcpRingTests.EventuallyAsync(() => sender.IsReady, TimeSpan.FromSeconds(10)), $"run {run}: the sender did not join");
            for (var i = 0; i < 100; i++)
            {
                sender.SendDirect(receiver.Self, 5, new byte[] { (byte)i });
            }

            Assert.True(
                await TcpRingTests.EventuallyAsync(() => counter.Count == 100 * run, TimeSpan.FromSeconds(10)),
                $"run {run}: {counter.Count - (100 * (run - 1))} of 100 reliable messages arrived");
            sender.Dispose();
            await transport.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_peer_that_has_been_idle_is_freed_and_a_later_message_to_it_still_arrives()
    {
        var options = new TcpTransportOptions { IdlePeerTimeout = TimeSpan.FromMilliseconds(300), ReconnectMaxDelay = TimeSpan.FromMilliseconds(100) };
        var a = Start(options);
        var deadAddress = new NodeAddress("tcp://127.0.0.1:1");
        for (var i = 0; i < 20; i++)
        {
            a.Send(new NodeAddress($"tcp://127.0.0.{i + 2}:1"), Numbered(a, 0));
        }

        a.Send(deadAddress, Numbered(a, 0));
        Assert.True(await TcpRingTests.EventuallyAsync(() => a.Peers == 0, TimeSpan.FromSeconds(10)), $"{a.Peers} peers still kept for unreachable addresses");

        var b = Start();
        var inbox = new OrderedInbox();
        b.SetReceiver(inbox);
        a.Send(b.LocalAddress, Numbered(a, 0));
        Assert.True(await TcpRingTests.EventuallyAsync(() => inbox.Count == 1, TimeSpan.FromSeconds(10)));

        // A peer with an open connection is kept however long it is quiet.
        await Task.Delay(1000);
        Assert.True(a.Peers >= 1);
        a.Send(b.LocalAddress, Numbered(a, 1));
        Assert.True(await TcpRingTests.EventuallyAsync(() => inbox.Count == 2, TimeSpan.FromSeconds(10)));
    }

    private sealed class ThrowingOnce(OrderedInbox inner) : IOverlayReceiver
    {
        private int _thrown;

        public void Receive(OverlayMessage message)
        {
            if (message is RouteAckMessage { HopId: 3 } && Interlocked.Exchange(ref _thrown, 1) == 0)
            {
                throw new InvalidOperationException("a receiver bug");
            }

            inner.Receive(message);
        }
    }

    [Fact]
    public async Task A_receiver_that_throws_on_one_message_loses_that_message_only_and_the_connection_goes_on()
    {
        var a = Start();
        var b = Start();
        var inbox = new OrderedInbox();
        b.SetReceiver(new ThrowingOnce(inbox));
        for (ulong n = 0; n < 10; n++)
        {
            a.Send(b.LocalAddress, Numbered(a, n));
        }

        Assert.True(await TcpRingTests.EventuallyAsync(() => inbox.Count == 9, TimeSpan.FromSeconds(10)), $"{inbox.Count} of 9 arrived");
        Assert.Equal(1, b.ReceiverFailures);
        Assert.Equal(1, b.OpenConnections);
        Assert.Contains(_log.Lines, l => l.StartsWith("Error", StringComparison.Ordinal) && l.Contains("threw", StringComparison.Ordinal));
    }
}
