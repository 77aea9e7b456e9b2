using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Iris.Overlay;
using Iris.Overlay.Pastry;
using Iris.Overlay.Security;
using Iris.Overlay.Timing;
using Iris.Overlay.Transport;
using Iris.Tests.Support;
using Xunit.Abstractions;

namespace Iris.Tests.Transport;

/// <summary>Connections that never authenticate, opened by the thousand against a node in its own process: what the
/// node spends on them is bounded by its handshake caps, and a real peer still gets in.</summary>
public sealed class ConnectionFloodTests(ITestOutputHelper output)
{
    private const int Connections = 20_000;
    private const int SourceAddresses = 40;
    private const int InFlight = 64;

    [SkippableFact]
    public async Task Twenty_thousand_idle_connections_leave_a_node_bounded_and_a_real_peer_still_joins_during_the_flood()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "Counting a process's file descriptors and binding 127.0.1.x source addresses needs Linux.");
        var key = NetworkKey.Generate();
        await using var node = ChildProcess.Start("dotnet", [RepositoryPaths.Program("test", "Iris.Overlay.TestHost"), "--key", Convert.ToBase64String(key.Bytes), "--scope", "none"]);
        await node.WaitForAsync(lines => lines.Contains("READY"), TimeSpan.FromSeconds(30), "the node to start its ring");
        var address = new NodeAddress(node.Lines.First(l => l.StartsWith("NODE ", StringComparison.Ordinal)).Split(' ')[2]);
        var endpoint = TcpLink.ParseEndPoint(address);
        var (baselineFds, baselineRss) = (Descriptors(node.Id), ResidentBytes(node.Id));

        using var stop = new CancellationTokenSource();
        var (maxFds, maxRss) = (baselineFds, baselineRss);
        var sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                maxFds = Math.Max(maxFds, Descriptors(node.Id));
                maxRss = Math.Max(maxRss, ResidentBytes(node.Id));
                await Task.Delay(25);
            }
        });

        // The flood: idle connections from forty addresses, as fast as they open, each kept until the node closes it.
        // When it ends (the node closed the last of them) it notes whether the real peer had joined by then.
        var opened = 0;
        var failed = 0;
        PastryNode? joiner = null;
        var joinedDuringFlood = false;
        var clock = Stopwatch.StartNew();
        var flood = Task.Run(async () =>
        {
            using var slots = new SemaphoreSlim(InFlight);
            var holders = new List<Task>();
            for (var i = 0; i < Connections; i++)
            {
                await slots.WaitAsync();
                var source = new IPAddress([127, 0, 1, (byte)(1 + (i % SourceAddresses))]);
                holders.Add(Task.Run(async () =>
                {
                    using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    try
                    {
                        socket.Bind(new IPEndPoint(source, 0));
                        await socket.ConnectAsync(endpoint);
                        Interlocked.Increment(ref opened);
                    }
                    catch (SocketException)
                    {
                        Interlocked.Increment(ref failed);
                        return;
                    }
                    finally
                    {
                        slots.Release();
                    }

                    try
                    {
                        // Say nothing; wait for the node to give up on us.
                        await socket.ReceiveAsync(new byte[1], SocketFlags.None, stop.Token);
                    }
                    catch (Exception e) when (e is SocketException or OperationCanceledException)
                    {
                    }
                }));
            }

            await Task.WhenAll(holders);
            joinedDuringFlood = Volatile.Read(ref joiner)?.IsReady == true;
        });

        // A real peer joins while the flood is at full strength.
        await TcpRingTests.EventuallyAsync(() => Volatile.Read(ref opened) >= Connections / 4, TimeSpan.FromSeconds(60));
        using var timers = new TimerQueue(TimeProvider.System);
        await using var transport = TcpTransport.Start(new IPEndPoint(IPAddress.Loopback, 0), key);
        using var peer = new PastryNode(NodeKey.NewRandom(), transport, timers, new PastryOptions(), new Random());
        Volatile.Write(ref joiner, peer);
        var joining = Stopwatch.StartNew();
        peer.Join(address);
        var joined = await TcpRingTests.EventuallyAsync(() => peer.IsReady, TimeSpan.FromSeconds(30));
        var joinTime = joining.Elapsed;
        var openedAtJoin = Volatile.Read(ref opened);

        await flood.WaitAsync(TimeSpan.FromSeconds(240));
        var floodTime = clock.Elapsed;
        await stop.CancelAsync();
        await sampler;
        output.WriteLine($"{opened} idle connections opened ({failed} failed to connect) from {SourceAddresses} addresses in {floodTime.TotalSeconds:F1} s");
        output.WriteLine($"node descriptors: {baselineFds} before, at most {maxFds} during; resident memory: {baselineRss / 1e6:F0} MB before, at most {maxRss / 1e6:F0} MB during");
        output.WriteLine($"real peer joined: {joined} in {joinTime.TotalSeconds:F2} s, with {openedAtJoin} idle connections opened so far");

        Assert.Equal(Connections, opened + failed);
        Assert.True(opened >= Connections * 0.95, $"only {opened} of {Connections} connections opened: the flood did not happen");
        Assert.True(joined, $"a real peer did not join within 30 s during the flood ({joinTime.TotalSeconds:F1} s)");
        Assert.True(joinedDuringFlood, $"a real peer joined only after the flood ended ({joinTime.TotalSeconds:F1} s, with {openedAtJoin} idle connections opened)");
        var options = new TcpTransportOptions();
        Assert.True(maxFds <= baselineFds + options.MaxHandshakesInProgress + 64, $"the node held {maxFds - baselineFds} more descriptors during the flood than before; the cap is {options.MaxHandshakesInProgress}");
        Assert.True(maxRss <= baselineRss + (200L << 20), $"the node's memory grew by {(maxRss - baselineRss) / 1e6:F0} MB during the flood");
    }

    private static int Descriptors(int pid) => Directory.GetFileSystemEntries($"/proc/{pid}/fd").Length;

    private static long ResidentBytes(int pid)
    {
        var line = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;
    }

    [Theory]
    [InlineData("127.0.1.7", "127.0.1.7")]
    [InlineData("::ffff:10.1.2.3", "10.1.2.3")]
    [InlineData("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::")]
    [InlineData("2001:db8:1:2::1", "2001:db8:1:2::")]
    public void Handshakes_are_capped_per_ipv4_address_and_per_ipv6_slash_64(string address, string source) =>
        Assert.Equal(IPAddress.Parse(source), TcpTransport.Source(IPAddress.Parse(address)));
}
