using System.Net;
using System.Net.Sockets;
using Iris.Overlay;
using Iris.Overlay.Discovery;
using Iris.Overlay.Hosting;
using Iris.Overlay.Security;
using Iris.Overlay.Transport;
using Microsoft.Extensions.Time.Testing;
using Xunit.Abstractions;

namespace Iris.Tests.Discovery;

/// <summary>Beacons played back by a host that captured them (it needs no key for that) must not keep a node out of
/// the ring: they carry their time and a nonce under the MAC, and a joining node falls back to live nodes.</summary>
public sealed class BeaconReplayTests(ITestOutputHelper output)
{
    private static readonly NodeHandle Node = new(NodeKey.FromName("n"), new NodeAddress("tcp://127.0.0.1:4000"));

    [Fact]
    public void A_beacon_is_accepted_once_and_never_after_a_newer_one_from_the_same_node()
    {
        var key = NetworkKey.Generate();
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddDays(20000));
        var filter = new BeaconFilter(key, TimeSpan.FromSeconds(30), time);
        var first = Beacon.Create(Node, true, string.Empty, time).Encode(key);
        time.Advance(TimeSpan.FromSeconds(1));
        var second = Beacon.Create(Node, true, string.Empty, time).Encode(key);

        Assert.Equal(BeaconVerdict.Accepted, filter.Check(first, out _));
        Assert.Equal(BeaconVerdict.Repeated, filter.Check(first, out _));
        Assert.Equal(BeaconVerdict.Accepted, filter.Check(second, out var beacon));
        Assert.Equal(Node, beacon.Node);
        Assert.Equal(BeaconVerdict.Repeated, filter.Check(first, out _));
        Assert.Equal(BeaconVerdict.Foreign, filter.Check(Beacon.Create(Node, true, string.Empty, time).Encode(NetworkKey.Generate()), out _));
        Assert.Equal((2, 1L), (filter.Repeated, filter.Foreign));
    }

    [Fact]
    public void A_beacon_older_or_newer_than_the_freshness_window_is_stale()
    {
        var key = NetworkKey.Generate();
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddDays(20000));
        var filter = new BeaconFilter(key, TimeSpan.FromSeconds(30), time);
        var captured = Beacon.Create(Node, true, string.Empty, time).Encode(key);
        time.Advance(TimeSpan.FromSeconds(31));
        Assert.Equal(BeaconVerdict.Stale, filter.Check(captured, out _));

        var fromTheFuture = Beacon.Create(Node, true, string.Empty, new FakeTimeProvider(time.GetUtcNow().AddSeconds(31))).Encode(key);
        Assert.Equal(BeaconVerdict.Stale, filter.Check(fromTheFuture, out _));

        // A sender whose clock is a little off (within the window) is heard.
        var skewed = Beacon.Create(Node, true, string.Empty, new FakeTimeProvider(time.GetUtcNow().AddSeconds(-20))).Encode(key);
        Assert.Equal(BeaconVerdict.Accepted, filter.Check(skewed, out _));
        Assert.Equal(2, filter.Stale);
    }

    [Fact]
    public async Task A_fresh_node_joins_the_live_ring_while_a_beacon_of_a_dead_address_is_played_back()
    {
        var key = NetworkKey.Generate();
        var directory = Path.Combine(Path.GetTempPath(), "iris-replay-" + Guid.NewGuid().ToString("N"));
        using var listener = BindInRange(out var port, out var listenerPort);
        OverlayOptions Options(string? keyFile = null)
        {
            var options = new OverlayOptions { NodeKeyFile = keyFile };
            options.Discovery.Scope = DiscoveryScope.Loopback;
            options.Discovery.Port = port;
            options.Discovery.LoopbackPorts = 8;
            return options;
        }

        // A node that keeps its key across restarts: capture one of its "ready" beacons, then restart it. It comes
        // back at another address; the captured beacon points at the dead one.
        var keyFile = Path.Combine(directory, "node-key");
        byte[] captured;
        NodeAddress deadAddress;
        await using (var before = await OverlayHost.StartAsync(Options(keyFile), key, development: true))
        {
            await before.WaitUntilReadyAsync(new CancellationTokenSource(TimeSpan.FromSeconds(20)).Token);
            deadAddress = before.Node.Self.Address;
            captured = await CaptureReadyBeaconAsync(listener, key, before.Node.Self.Key);
        }

        await using var restarted = await OverlayHost.StartAsync(Options(keyFile), key, development: true);
        await restarted.WaitUntilReadyAsync(new CancellationTokenSource(TimeSpan.FromSeconds(20)).Token);
        Assert.NotEqual(deadAddress, restarted.Node.Self.Address);

        // A host without the key plays the captured beacon back to every discovery port, fifty times a second,
        // while a fresh node starts.
        using var replaying = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        var replay = Task.Run(async () =>
        {
            using var sender = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            while (!replaying.IsCancellationRequested)
            {
                for (var p = port; p < port + 8; p++)
                {
                    if (p != listenerPort)
                    {
                        await sender.SendToAsync(captured, SocketFlags.None, new IPEndPoint(IPAddress.Loopback, p));
                    }
                }

                await Task.Delay(20);
            }
        });

        var clock = System.Diagnostics.Stopwatch.StartNew();
        await using var fresh = await OverlayHost.StartAsync(Options(), key, development: true);
        var joined = await Transport.TcpRingTests.EventuallyAsync(
            () => fresh.Node.IsReady && fresh.Node.GetLeafSet().Clockwise.Any(h => h == restarted.Node.Self), TimeSpan.FromSeconds(10));
        output.WriteLine($"joined the live ring: {joined} after {clock.Elapsed.TotalSeconds:F1} s; beacons refused as repeated: {fresh.Discovery!.RepeatedBeacons}, stale: {fresh.Discovery.StaleBeacons}");
        await replay;
        Assert.True(joined, "the fresh node did not join the live ring within 10 s");
        Assert.True(fresh.Discovery.RepeatedBeacons > 0, "the played-back beacons were not recognised");
        Directory.Delete(directory, recursive: true);
    }

    private static Socket BindInRange(out int port, out int listenerPort)
    {
        while (true)
        {
            port = 38000 + (Random.Shared.Next(0, 60) * 16);
            listenerPort = port + 7;
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                socket.Bind(new IPEndPoint(IPAddress.Loopback, listenerPort));
                return socket;
            }
            catch (SocketException)
            {
                socket.Dispose();
            }
        }
    }

    private static async Task<byte[]> CaptureReadyBeaconAsync(Socket listener, NetworkKey key, NodeKey node)
    {
        var buffer = new byte[Beacon.MaxSize + 1];
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (true)
        {
            var received = await listener.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), deadline.Token);
            var datagram = buffer.AsSpan(0, received.ReceivedBytes).ToArray();
            if (Beacon.TryDecode(datagram, key) is { Ready: true } beacon && beacon.Node.Key == node)
            {
                return datagram;
            }
        }
    }
}
