using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Iris.Overlay;
using Iris.Overlay.Security;
using Iris.Overlay.Transport;
using Iris.Tests.Support;

namespace Iris.Tests.Transport;

/// <summary>A man in the middle that holds no key but can alter bytes: every alteration ends the connection, nothing
/// altered is delivered, and traffic resumes on a fresh connection.</summary>
public sealed class TamperTests
{
    public enum Tamper
    {
        FlipByte,
        Replay,
        Truncate,

        /// <summary>Cut the first connection at the frame, then open the next one with a frame captured from the
        /// first: sealed under another connection's keys, it must be refused.</summary>
        ReplayIntoNextConnection,
    }

    private sealed class Inbox : IOverlayReceiver
    {
        public ConcurrentQueue<ulong> Ids { get; } = new();

        public void Receive(OverlayMessage message) => Ids.Enqueue(((RouteAckMessage)message).HopId);
    }

    /// <summary>Forwards one listening port to a target; on the first connection alters frame number
    /// <c>target</c> (counting the link hello as frame 0) of the initiator's direction.</summary>
    private sealed class Proxy : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly IPEndPoint _target;
        private readonly Tamper _tamper;
        private readonly int _frame;
        private readonly CancellationTokenSource _stop = new();
        private readonly List<(byte[] Header, byte[] Frame)> _captured = [];
        private int _connections;

        public Proxy(IPEndPoint target, Tamper tamper, int frame)
        {
            _target = target;
            _tamper = tamper;
            _frame = frame;
            _listener.Start();
            _ = Task.Run(AcceptAsync);
        }

        public NodeAddress Address => new($"tcp://{_listener.LocalEndpoint}");

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
        }

        private async Task AcceptAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                TcpClient client;
                try
                {
                    client = await _listener.AcceptTcpClientAsync(_stop.Token);
                }
                catch (Exception)
                {
                    return;
                }

                var number = Interlocked.Increment(ref _connections);
                _ = Task.Run(() => RelayAsync(client, number));
            }
        }

        private async Task RelayAsync(TcpClient client, int number)
        {
            var tamper = number == 1;
            using var server = new TcpClient();
            await server.ConnectAsync(_target);
            var upstream = client.GetStream();
            var downstream = server.GetStream();
            var back = downstream.CopyToAsync(upstream);
            try
            {
                // The initiator's hello, then (after the responder's answer) its MAC, then frames.
                foreach (var size in new[] { 82, 32 })
                {
                    var handshake = new byte[size];
                    await upstream.ReadExactlyAsync(handshake);
                    await downstream.WriteAsync(handshake);
                }

                if (_tamper == Tamper.ReplayIntoNextConnection && number == 2)
                {
                    foreach (var (capturedHeader, capturedFrame) in _captured.Take(2))
                    {
                        await downstream.WriteAsync(capturedHeader);
                        await downstream.WriteAsync(capturedFrame);
                    }
                }

                for (var index = 0; ; index++)
                {
                    var header = new byte[4];
                    await upstream.ReadExactlyAsync(header);
                    var frame = new byte[BinaryPrimitives.ReadInt32BigEndian(header)];
                    await upstream.ReadExactlyAsync(frame);
                    if (tamper && _tamper == Tamper.ReplayIntoNextConnection)
                    {
                        _captured.Add((header, frame));
                    }

                    if (!tamper || index != _frame)
                    {
                        await downstream.WriteAsync(header);
                        await downstream.WriteAsync(frame);
                        continue;
                    }

                    switch (_tamper)
                    {
                        case Tamper.FlipByte:
                            frame[frame.Length / 2] ^= 0x01;
                            await downstream.WriteAsync(header);
                            await downstream.WriteAsync(frame);
                            break;
                        case Tamper.Replay:
                            await downstream.WriteAsync(header);
                            await downstream.WriteAsync(frame);
                            await downstream.WriteAsync(header);
                            await downstream.WriteAsync(frame);
                            break;
                        case Tamper.Truncate:
                            await downstream.WriteAsync(header);
                            await downstream.WriteAsync(frame.AsMemory(0, frame.Length / 2));
                            server.Client.Shutdown(SocketShutdown.Send);
                            await Task.Delay(200);
                            client.Close();
                            return;
                        case Tamper.ReplayIntoNextConnection:
                            client.Close();
                            server.Close();
                            return;
                    }
                }
            }
            catch (Exception)
            {
                // Either side closed: the relay ends with it.
            }
            finally
            {
                client.Close();
                server.Close();
                await back.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    [Theory]
    [InlineData(Tamper.FlipByte)]
    [InlineData(Tamper.Replay)]
    [InlineData(Tamper.Truncate)]
    [InlineData(Tamper.ReplayIntoNextConnection)]
    public async Task An_altered_connection_ends_delivers_nothing_altered_and_traffic_resumes(Tamper tamper)
    {
        var key = NetworkKey.Generate();
        var options = new TcpTransportOptions { ReconnectMaxDelay = TimeSpan.FromMilliseconds(200) };
        var log = new ListLogger();
        await using var receiver = TcpTransport.Start(new IPEndPoint(IPAddress.Loopback, 0), key, options, log);
        await using var sender = TcpTransport.Start(new IPEndPoint(IPAddress.Loopback, 0), key, options, log);
        var inbox = new Inbox();
        receiver.SetReceiver(inbox);
        sender.SetReceiver(new Inbox());
        await using var proxy = new Proxy(TcpLink.ParseEndPoint(receiver.LocalAddress), tamper, frame: 6);

        // One message a frame: send them one by one so each has its own frame.
        for (ulong i = 0; i < 10; i++)
        {
            sender.Send(proxy.Address, new RouteAckMessage { Sender = new NodeHandle(NodeKey.Zero, sender.LocalAddress), HopId = i });
            await Task.Delay(20);
        }

        Assert.True(await TcpRingTests.EventuallyAsync(() => receiver.Refused >= 1, TimeSpan.FromSeconds(10)), "the altered connection was not refused");

        // Frames 1..5 carried messages 0..4; frame 6 (message 5) was altered. Whatever came through is intact and in order.
        var before = inbox.Ids.ToArray();
        Assert.Equal(Enumerable.Range(0, before.Length).Select(i => (ulong)i), before);
        Assert.True(before.Length >= 5 && before.Length <= (tamper == Tamper.Replay ? 6 : 5), $"{before.Length} delivered\n{log}");
        Assert.Contains(log.Lines, line => line.StartsWith("Warning", StringComparison.Ordinal)
            && (line.Contains("closed", StringComparison.Ordinal) || line.Contains("failed authentication", StringComparison.Ordinal)));

        // The sender notices, connects again (the proxy now relays faithfully), and later messages arrive.
        var next = 100ul;
        Assert.True(await TcpRingTests.EventuallyAsync(
            () =>
            {
                sender.Send(proxy.Address, new RouteAckMessage { Sender = new NodeHandle(NodeKey.Zero, sender.LocalAddress), HopId = next++ });
                return inbox.Ids.Any(id => id >= 100);
            },
            TimeSpan.FromSeconds(10)));
        Assert.DoesNotContain(inbox.Ids, id => id is > 9 and < 100);
    }

    [Fact]
    public async Task A_handshake_that_stalls_is_cut_off_after_the_timeout()
    {
        var key = NetworkKey.Generate();
        await using var receiver = TcpTransport.Start(new IPEndPoint(IPAddress.Loopback, 0), key, new TcpTransportOptions { HandshakeTimeout = TimeSpan.FromMilliseconds(500) });
        using var silent = new TcpClient();
        await silent.ConnectAsync(TcpLink.ParseEndPoint(receiver.LocalAddress));
        Assert.True(await TcpRingTests.EventuallyAsync(() => receiver.Refused == 1, TimeSpan.FromSeconds(5)));
        var buffer = new byte[256];
        var read = await silent.GetStream().ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(0, read);
    }

    [Fact]
    public async Task Keys_are_rejected_at_start_up_with_a_message_that_says_how_to_make_one()
    {
        Assert.Contains("openssl rand -base64 32", Assert.Throws<NetworkKeyException>(() => NetworkKey.Parse("c2hvcnQ=")).Message);
        Assert.Contains("not valid base64", Assert.Throws<NetworkKeyException>(() => NetworkKey.Parse("***")).Message);
        var path = Path.Combine(Path.GetTempPath(), "iris-test-" + Guid.NewGuid().ToString("N"), "network-key");
        var created = NetworkKey.LoadOrCreateDevelopmentKey(path);
        Assert.Equal(created.Fingerprint, NetworkKey.LoadOrCreateDevelopmentKey(path).Fingerprint);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        }
        Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
        await Task.CompletedTask;
    }

    [Fact]
    public void Both_directions_rekey_in_step_and_a_frame_sealed_under_an_old_key_is_refused()
    {
        var key = new byte[32];
        using var sealer = new FrameProtector((byte[])key.Clone(), rekeyAfterFrames: 3);
        using var opener = new FrameProtector((byte[])key.Clone(), rekeyAfterFrames: 3);
        var plaintext = new byte[] { 1, 2, 3 };
        var sealedFrame = new byte[plaintext.Length + FrameProtector.TagSize];
        var opened = new byte[plaintext.Length];
        byte[] first = [];
        for (var i = 0; i < 10; i++)
        {
            sealer.Seal([9], plaintext, sealedFrame);
            if (i == 0)
            {
                first = (byte[])sealedFrame.Clone();
            }

            opener.Open([9], sealedFrame, opened);
            Assert.Equal(plaintext, opened);
        }

        Assert.Equal(3u, sealer.Epoch);
        Assert.Throws<OverlayAuthenticationException>(() => opener.Open([9], first, opened));
    }
}
