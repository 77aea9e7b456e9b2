using System.Collections.Concurrent;
using System.Net;
using Iris.Overlay;
using Iris.Overlay.Security;
using Iris.Overlay.Timing;
using Iris.Overlay.Transport;
using Microsoft.Extensions.Time.Testing;

namespace Iris.Tests.Transport;

/// <summary>What every overlay transport must do, run against each implementation (as Orleans runs its
/// MembershipTableTestsBase against every membership table).</summary>
public abstract class TransportContractTests : IAsyncLifetime
{
    protected const int FrameLimit = 256 * 1024;

    private protected sealed class Inbox : IOverlayReceiver
    {
        public ConcurrentQueue<OverlayMessage> Messages { get; } = new();

        public void Receive(OverlayMessage message) => Messages.Enqueue(message);

        public ulong[] HopIds => [.. Messages.OfType<RouteAckMessage>().Select(m => m.HopId)];
    }

    private protected abstract Task<IOverlayTransport> StartAsync(NodeAddress? address = null);

    private protected abstract Task StopAsync(IOverlayTransport transport);

    /// <summary>Lets time pass (simulated or real) until <paramref name="condition"/> holds or the limit passes.</summary>
    private protected abstract Task<bool> EventuallyAsync(Func<bool> condition, TimeSpan limit);

    public virtual Task InitializeAsync() => Task.CompletedTask;

    public virtual Task DisposeAsync() => Task.CompletedTask;

    private static RouteAckMessage Ack(IOverlayTransport from, ulong id) => new() { Sender = new NodeHandle(NodeKey.Zero, from.LocalAddress), HopId = id };

    private static DirectMessage Big(IOverlayTransport from, int size) =>
        new() { Sender = new NodeHandle(NodeKey.Zero, from.LocalAddress), HopId = 1, Channel = 9, Payload = new byte[size] };

    private static (IOverlayTransport, Inbox) WithInbox(IOverlayTransport transport)
    {
        var inbox = new Inbox();
        transport.SetReceiver(inbox);
        return (transport, inbox);
    }

    [Fact]
    public async Task A_message_reaches_the_addressed_node_with_its_content_intact()
    {
        var (a, _) = WithInbox(await StartAsync());
        var (b, inbox) = WithInbox(await StartAsync());
        var sent = new RouteMessage
        {
            Sender = new NodeHandle(NodeKey.FromName("a"), a.LocalAddress), HopId = 42, Key = NodeKey.FromName("k"), Hops = 3,
            Kind = RouteKind.Application, Channel = 7, Origin = new NodeHandle(NodeKey.FromName("o"), a.LocalAddress), Payload = new byte[] { 1, 2, 3 },
        };
        a.Send(b.LocalAddress, sent);
        Assert.True(await EventuallyAsync(() => !inbox.Messages.IsEmpty, TimeSpan.FromSeconds(10)));
        Assert.Equal(MessageCodec.Encode(sent), MessageCodec.Encode(Assert.Single(inbox.Messages)));
    }

    [Fact]
    public async Task Messages_between_two_nodes_arrive_in_the_order_sent_both_ways()
    {
        var (a, inboxA) = WithInbox(await StartAsync());
        var (b, inboxB) = WithInbox(await StartAsync());

        // One side opens the connection first (connecting at the very same moment is its own test), then both send.
        a.Send(b.LocalAddress, Ack(a, 0));
        Assert.True(await EventuallyAsync(() => inboxB.Messages.Count == 1, TimeSpan.FromSeconds(10)));
        for (ulong i = 1; i < 2000; i++)
        {
            a.Send(b.LocalAddress, Ack(a, i));
            b.Send(a.LocalAddress, Ack(b, i));
        }

        Assert.True(await EventuallyAsync(() => inboxA.Messages.Count == 1999 && inboxB.Messages.Count == 2000, TimeSpan.FromSeconds(20)));
        Assert.Equal(Enumerable.Range(1, 1999).Select(i => (ulong)i), inboxA.HopIds);
        Assert.Equal(Enumerable.Range(0, 2000).Select(i => (ulong)i), inboxB.HopIds);
    }

    [Fact]
    public async Task Large_messages_up_to_the_frame_limit_are_carried()
    {
        var (a, _) = WithInbox(await StartAsync());
        var (b, inbox) = WithInbox(await StartAsync());
        a.Send(b.LocalAddress, Big(a, FrameLimit - 1024));
        Assert.True(await EventuallyAsync(() => !inbox.Messages.IsEmpty, TimeSpan.FromSeconds(10)));
        Assert.Equal(FrameLimit - 1024, ((DirectMessage)Assert.Single(inbox.Messages)).Payload.Length);
    }

    [Fact]
    public async Task An_oversized_message_is_refused_and_nothing_else_is_lost()
    {
        var (a, _) = WithInbox(await StartAsync());
        var (b, inbox) = WithInbox(await StartAsync());
        a.Send(b.LocalAddress, Ack(a, 1));
        a.Send(b.LocalAddress, Big(a, FrameLimit + 1024));
        a.Send(b.LocalAddress, Ack(a, 2));
        Assert.True(await EventuallyAsync(() => inbox.Messages.Count >= 2, TimeSpan.FromSeconds(10)));
        await EventuallyAsync(() => false, TimeSpan.FromMilliseconds(300));
        Assert.Equal([1ul, 2ul], inbox.HopIds);
        Assert.DoesNotContain(inbox.Messages, m => m is DirectMessage);
    }

    [Fact]
    public async Task Sending_to_a_dead_node_neither_throws_nor_disturbs_other_peers()
    {
        var (a, _) = WithInbox(await StartAsync());
        var (b, inboxB) = WithInbox(await StartAsync());
        var (c, _) = WithInbox(await StartAsync());
        await StopAsync(c);
        for (ulong i = 0; i < 10; i++)
        {
            a.Send(c.LocalAddress, Ack(a, i));
            a.Send(b.LocalAddress, Ack(a, i));
        }

        Assert.True(await EventuallyAsync(() => inboxB.Messages.Count == 10, TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task A_node_restarted_at_the_same_address_is_reached_again()
    {
        var (a, _) = WithInbox(await StartAsync());
        var (b, inbox) = WithInbox(await StartAsync());
        a.Send(b.LocalAddress, Ack(a, 1));
        Assert.True(await EventuallyAsync(() => inbox.Messages.Count == 1, TimeSpan.FromSeconds(10)));

        var address = b.LocalAddress;
        await StopAsync(b);
        var (_, again) = WithInbox(await StartAsync(address));
        var next = 2ul;
        Assert.True(await EventuallyAsync(
            () =>
            {
                a.Send(address, Ack(a, next++));
                return !again.Messages.IsEmpty;
            },
            TimeSpan.FromSeconds(20)));
    }
}

public sealed class InMemoryTransportContractTests : TransportContractTests
{
    private readonly FakeTimeProvider _time = new();
    private readonly TimerQueue _timers;
    private readonly InMemoryNetwork _network;
    private int _next;

    public InMemoryTransportContractTests()
    {
        _timers = new TimerQueue(_time);
        _network = new InMemoryNetwork(_timers, new InMemoryNetworkOptions { MaxMessageSize = FrameLimit });
    }

    private protected override Task<IOverlayTransport> StartAsync(NodeAddress? address = null) =>
        Task.FromResult(_network.Attach(address ?? new NodeAddress($"mem://{_next++}")));

    private protected override Task StopAsync(IOverlayTransport transport)
    {
        _network.Crash(transport.LocalAddress);
        return Task.CompletedTask;
    }

    private protected override Task<bool> EventuallyAsync(Func<bool> condition, TimeSpan limit)
    {
        for (var elapsed = TimeSpan.Zero; elapsed <= limit; elapsed += TimeSpan.FromMilliseconds(1))
        {
            if (condition())
            {
                return Task.FromResult(true);
            }

            _time.SetUtcNow(_time.GetUtcNow() + TimeSpan.FromMilliseconds(1));
        }

        return Task.FromResult(condition());
    }

    public override Task DisposeAsync()
    {
        _network.Dispose();
        _timers.Dispose();
        return Task.CompletedTask;
    }
}

public sealed class TcpTransportContractTests : TransportContractTests
{
    private readonly NetworkKey _key = NetworkKey.Generate();
    private readonly List<TcpTransport> _transports = [];

    private protected override Task<IOverlayTransport> StartAsync(NodeAddress? address = null)
    {
        var endpoint = address is { } a ? TcpLink.ParseEndPoint(a) : new IPEndPoint(IPAddress.Loopback, 0);
        var transport = TcpTransport.Start(endpoint, _key, new TcpTransportOptions { MaxFrameSize = FrameLimit, ReconnectMaxDelay = TimeSpan.FromMilliseconds(200) });
        _transports.Add(transport);
        return Task.FromResult<IOverlayTransport>(transport);
    }

    private protected override async Task StopAsync(IOverlayTransport transport) => await ((TcpTransport)transport).DisposeAsync();

    private protected override Task<bool> EventuallyAsync(Func<bool> condition, TimeSpan limit) => TcpRingTests.EventuallyAsync(condition, limit);

    public override async Task DisposeAsync()
    {
        foreach (var transport in _transports)
        {
            await transport.DisposeAsync();
        }
    }

    [Fact]
    public async Task Shutting_down_writes_what_is_queued_first()
    {
        // The connection is open before the rest is queued, and shutting down may take as long as writing it does on a
        // busy machine: what is measured is that it is written, not how fast.
        var sender = TcpTransport.Start(
            new IPEndPoint(IPAddress.Loopback, 0), _key, new TcpTransportOptions { MaxFrameSize = FrameLimit, ReconnectMaxDelay = TimeSpan.FromMilliseconds(200), ShutdownTimeout = TimeSpan.FromSeconds(30) });
        _transports.Add(sender);
        var receiver = (TcpTransport)await StartAsync();
        var inbox = new Inbox();
        receiver.SetReceiver(inbox);
        sender.Send(receiver.LocalAddress, new RouteAckMessage { Sender = new NodeHandle(NodeKey.Zero, sender.LocalAddress), HopId = 0 });
        Assert.True(await EventuallyAsync(() => inbox.Messages.Count == 1, TimeSpan.FromSeconds(30)), "the first message did not arrive");
        for (ulong i = 1; i < 1000; i++)
        {
            sender.Send(receiver.LocalAddress, new RouteAckMessage { Sender = new NodeHandle(NodeKey.Zero, sender.LocalAddress), HopId = i });
        }

        await sender.DisposeAsync();
        Assert.True(await EventuallyAsync(() => inbox.Messages.Count == 1000, TimeSpan.FromSeconds(30)), $"{inbox.Messages.Count} of 1000 arrived");
    }

    [Fact]
    public async Task Two_nodes_sending_to_each_other_at_once_end_up_on_one_connection()
    {
        var a = (TcpTransport)await StartAsync();
        var b = (TcpTransport)await StartAsync();
        var inboxA = new Inbox();
        var inboxB = new Inbox();
        a.SetReceiver(inboxA);
        b.SetReceiver(inboxB);
        // Both open a connection at once; while the duplicate is being dropped some messages may be lost (the ring
        // retransmits), so keep sending until traffic flows both ways.
        var next = 0ul;
        Assert.True(await EventuallyAsync(
            () =>
            {
                a.Send(b.LocalAddress, new RouteAckMessage { Sender = new NodeHandle(NodeKey.Zero, a.LocalAddress), HopId = next });
                b.Send(a.LocalAddress, new RouteAckMessage { Sender = new NodeHandle(NodeKey.Zero, b.LocalAddress), HopId = next++ });
                return inboxA.Messages.Count >= 50 && inboxB.Messages.Count >= 50;
            },
            TimeSpan.FromSeconds(20)));
        Assert.True(await EventuallyAsync(() => a.OpenConnections == 1 && b.OpenConnections == 1, TimeSpan.FromSeconds(5)),
            $"connections: {a.OpenConnections} and {b.OpenConnections}");
    }
}
