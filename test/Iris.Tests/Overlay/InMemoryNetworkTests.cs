using Iris.Overlay;
using Iris.Overlay.Timing;
using Iris.Overlay.Transport;
using Microsoft.Extensions.Time.Testing;

namespace Iris.Tests.Overlay;

public class InMemoryNetworkTests
{
    private sealed class Inbox : IOverlayReceiver
    {
        public List<(long At, ulong Id)> Received { get; } = [];

        public Func<long>? Clock { get; set; }

        public void Receive(OverlayMessage message) => Received.Add((Clock!(), ((RouteAckMessage)message).HopId));
    }

    private sealed class Harness : IDisposable
    {
        public Harness(InMemoryNetworkOptions options)
        {
            Timers = new TimerQueue(Time);
            Network = new InMemoryNetwork(Timers, options);
        }

        public FakeTimeProvider Time { get; } = new();

        public TimerQueue Timers { get; }

        public InMemoryNetwork Network { get; }

        public (IOverlayTransport Transport, Inbox Inbox) Attach(string address)
        {
            var transport = Network.Attach(new NodeAddress(address));
            var inbox = new Inbox { Clock = () => Timers.NowMs };
            transport.SetReceiver(inbox);
            return (transport, inbox);
        }

        public void Send(IOverlayTransport from, string to, ulong id) =>
            from.Send(new NodeAddress(to), new RouteAckMessage { Sender = new NodeHandle(NodeKey.Zero, from.LocalAddress), HopId = id });

        public void Run(int milliseconds)
        {
            for (var i = 0; i < milliseconds; i++)
            {
                Time.SetUtcNow(Time.GetUtcNow() + TimeSpan.FromMilliseconds(1));
            }
        }

        public void Dispose()
        {
            Network.Dispose();
            Timers.Dispose();
        }
    }

    [Fact]
    public void Messages_between_two_addresses_arrive_in_order_within_the_latency_bounds()
    {
        using var net = new Harness(new InMemoryNetworkOptions { Seed = 3, MinLatencyMilliseconds = 5, MaxLatencyMilliseconds = 30 });
        var (a, _) = net.Attach("mem://a");
        var (_, inbox) = net.Attach("mem://b");
        for (ulong i = 0; i < 100; i++)
        {
            net.Send(a, "mem://b", i);
            net.Run(1);
        }

        net.Run(50);
        Assert.Equal(Enumerable.Range(0, 100).Select(i => (ulong)i), inbox.Received.Select(r => r.Id));
        Assert.All(inbox.Received, r => Assert.InRange(r.At - (long)r.Id, 5, 31));
    }

    [Fact]
    public void Loss_drops_about_the_configured_fraction()
    {
        using var net = new Harness(new InMemoryNetworkOptions { Seed = 5, LossProbability = 0.2 });
        var (a, _) = net.Attach("mem://a");
        var (_, inbox) = net.Attach("mem://b");
        for (ulong i = 0; i < 5000; i++)
        {
            net.Send(a, "mem://b", i);
        }

        net.Run(50);
        Assert.InRange(inbox.Received.Count, 3800, 4200);
        Assert.Equal(5000 - inbox.Received.Count, net.Network.Dropped);
    }

    [Fact]
    public void Partitions_and_crashes_drop_messages_and_healing_restores_delivery()
    {
        using var net = new Harness(new InMemoryNetworkOptions());
        var (a, inboxA) = net.Attach("mem://a");
        var (b, inboxB) = net.Attach("mem://b");
        var (_, inboxC) = net.Attach("mem://c");

        net.Network.Partition([new NodeAddress("mem://a")]);
        net.Send(a, "mem://b", 1);
        net.Send(b, "mem://a", 2);
        net.Send(b, "mem://c", 3);
        net.Run(50);
        Assert.Empty(inboxA.Received);
        Assert.Empty(inboxB.Received);
        Assert.Single(inboxC.Received);

        net.Network.Heal();
        net.Send(a, "mem://b", 4);
        net.Run(50);
        Assert.Equal(4ul, Assert.Single(inboxB.Received).Id);

        net.Network.Crash(new NodeAddress("mem://b"));
        net.Send(a, "mem://b", 5);
        net.Send(a, "mem://nowhere", 6);
        net.Run(50);
        Assert.Single(inboxB.Received);
    }

    [Fact]
    public void A_message_in_flight_across_a_new_partition_is_lost()
    {
        using var net = new Harness(new InMemoryNetworkOptions { MinLatencyMilliseconds = 10, MaxLatencyMilliseconds = 10 });
        var (a, _) = net.Attach("mem://a");
        var (_, inbox) = net.Attach("mem://b");
        net.Send(a, "mem://b", 1);
        net.Run(5);
        net.Network.Partition([new NodeAddress("mem://b")]);
        net.Run(20);
        Assert.Empty(inbox.Received);
    }

    [Fact]
    public void The_same_seed_gives_the_same_deliveries()
    {
        static List<(long, ulong)> Run(int seed)
        {
            using var net = new Harness(new InMemoryNetworkOptions { Seed = seed, LossProbability = 0.1 });
            var senders = Enumerable.Range(0, 5).Select(i => net.Attach($"mem://{i}").Transport).ToList();
            var (_, inbox) = net.Attach("mem://sink");
            for (ulong i = 0; i < 200; i++)
            {
                net.Send(senders[(int)(i % 5)], "mem://sink", i);
            }

            net.Run(50);
            return inbox.Received;
        }

        Assert.Equal(Run(7), Run(7));
        Assert.NotEqual(Run(7), Run(8));
    }

    [Fact]
    public void Attaching_a_live_address_twice_is_an_error()
    {
        using var net = new Harness(new InMemoryNetworkOptions());
        net.Attach("mem://a");
        Assert.Contains("already attached", Assert.Throws<InvalidOperationException>(() => net.Attach("mem://a")).Message);
    }
}
