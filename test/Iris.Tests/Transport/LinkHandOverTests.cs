using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Iris.Overlay;
using Iris.Overlay.Pastry;
using Iris.Overlay.Security;
using Iris.Overlay.Transport;

namespace Iris.Tests.Transport;

/// <summary>The hand-over between links and the pruning of idle peers, checked against a scripted peer that speaks
/// the link protocol by hand, so that each interleaving is produced on purpose rather than hoped for.</summary>
public sealed class LinkHandOverTests : IAsyncLifetime
{
    private readonly NetworkKey _key = NetworkKey.Generate();
    private readonly TcpTransportOptions _options = new();
    private readonly List<IAsyncDisposable> _disposables = [];

    /// <summary>What a scripted peer reads on one link, in order: messages and hand-over notes.</summary>
    private sealed class Recorder : ILinkReader
    {
        public ConcurrentQueue<string> Events { get; } = new();

        public void Deliver(OverlayMessage message) => Events.Enqueue(message is RouteAckMessage ack ? $"message {ack.HopId}" : message.Type.ToString());

        public ValueTask WaitForDrainAsync(UInt128 connectionId)
        {
            Events.Enqueue($"continues {connectionId}");
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>A node played by the test: it listens, and every connection made to it is handshaken and read.</summary>
    private sealed class ScriptedPeer : IAsyncDisposable
    {
        private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        private readonly CancellationTokenSource _stopping = new();

        public ScriptedPeer(IPAddress? address = null)
        {
            _listener.Bind(new IPEndPoint(address ?? IPAddress.Loopback, 0));
            _listener.Listen(16);
            Address = new NodeAddress($"tcp://{_listener.LocalEndPoint}");
        }

        public NodeAddress Address { get; }

        public async Task<(TcpLink Link, Recorder Read, Task<LinkEnd> Reading)> AcceptAsync(NetworkKey key, TcpTransportOptions options)
        {
            var socket = await _listener.AcceptAsync(_stopping.Token).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            var link = await TcpLink.AcceptAsync(socket, Address, key, options, _stopping.Token, CancellationToken.None);
            var recorder = new Recorder();
            return (link, recorder, Task.Run(() => link.ReadLoopAsync(recorder)));
        }

        public async ValueTask DisposeAsync()
        {
            await _stopping.CancelAsync();
            _listener.Dispose();
        }
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var disposable in _disposables)
        {
            await disposable.DisposeAsync();
        }
    }

    private T Keep<T>(T disposable)
        where T : IAsyncDisposable
    {
        _disposables.Add(disposable);
        return disposable;
    }

    private static RouteAckMessage Numbered(NodeAddress from, ulong n) => new() { Sender = new NodeHandle(NodeKey.Zero, from), HopId = n };

    [Fact]
    public async Task A_write_on_a_link_closed_under_its_writer_fails_at_once_instead_of_waiting_forever()
    {
        var peer = Keep(new ScriptedPeer());
        var local = new NodeAddress("tcp://127.0.0.1:9");
        var message = Numbered(local, 0);

        // Closed before the write: the write fails at once (a close that kept a write lock wedged this for good).
        var dialling = TcpLink.ConnectAsync(local, peer.Address, _key, _options, CancellationToken.None);
        var (accepted, _, _) = await peer.AcceptAsync(_key, _options);
        var link = await dialling;
        await link.DisposeAsync();
        var write = link.WriteAsync([message], null, (_, _) => { }).AsTask();
        Assert.Same(write, await Task.WhenAny(write, Task.Delay(TimeSpan.FromSeconds(5))));
        await Assert.ThrowsAnyAsync<Exception>(() => write);

        await accepted.DisposeAsync();
    }

    [Fact]
    public async Task A_link_the_other_side_retired_is_named_by_the_next_link_even_when_that_one_is_dialled()
    {
        var peer = Keep(new ScriptedPeer());
        var transport = Keep(TcpTransport.Start(new IPEndPoint(IPAddress.Loopback, 0), _key, _options));

        transport.Send(peer.Address, Numbered(transport.LocalAddress, 0));
        var (first, firstRead, firstReading) = await peer.AcceptAsync(_key, _options);
        Assert.True(await TcpRingTests.EventuallyAsync(() => firstRead.Events.Contains("message 0"), TimeSpan.FromSeconds(10)));

        // The scripted peer gives the link up (as a node does when it keeps another link to this one): the transport
        // answers with its own goodbye, and has no other link.
        await first.WriteGoodbyeAsync();
        var end = await firstReading.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(end.Goodbye, end.Reason);

        // The next message needs a new link. Whatever arrives on it must wait for the end of the first link, which
        // the peer may not have read to the end yet: the new link starts with a note naming the first.
        transport.Send(peer.Address, Numbered(transport.LocalAddress, 1));
        var (second, secondRead, _) = await peer.AcceptAsync(_key, _options);
        Assert.True(await TcpRingTests.EventuallyAsync(() => secondRead.Events.Contains("message 1"), TimeSpan.FromSeconds(10)));
        Assert.Equal([$"continues {first.Id}", "message 1"], secondRead.Events);
        await first.DisposeAsync();
        await second.DisposeAsync();
    }

    [Fact]
    public async Task A_link_that_loses_the_tie_break_while_the_send_loop_dials_gets_its_goodbye_with_nothing_else_queued()
    {
        // The scripted peer listens on 127.0.0.2, so the transport's address is the smaller: the link it dials wins.
        var peer = Keep(new ScriptedPeer(IPAddress.Parse("127.0.0.2")));
        var transport = Keep(TcpTransport.Start(new IPEndPoint(IPAddress.Loopback, 0), _key, _options));

        // One message: the send loop dials, and waits in the handshake the scripted peer holds back ...
        transport.Send(peer.Address, Numbered(transport.LocalAddress, 0));

        // ... while the peer's own link to the transport is accepted, and attached as the only one.
        var theirs = await TcpLink.ConnectAsync(peer.Address, transport.LocalAddress, _key, _options, CancellationToken.None);
        var theirsReading = Task.Run(() => theirs.ReadLoopAsync(new Recorder()));
        Assert.True(await TcpRingTests.EventuallyAsync(() => transport.OpenConnections == 1, TimeSpan.FromSeconds(10)), "the peer's link was not attached");

        // The dial completes: the dialled link wins, the peer's link is retired (its wake-up queued behind message 0),
        // and message 0 goes out on the winner, the queue left empty.
        var (ours, oursRead, _) = await peer.AcceptAsync(_key, _options);
        Assert.True(await TcpRingTests.EventuallyAsync(() => oursRead.Events.Contains("message 0"), TimeSpan.FromSeconds(10)), "message 0 did not arrive");

        // The retired link still gets its goodbye, without waiting for the peer's own goodbye or for the next message:
        // a send loop that took the wake-up into its batch and then waited for the queue left it open for good.
        var end = await theirsReading.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(end.Goodbye, end.Reason);
        await theirs.DisposeAsync();
        await ours.DisposeAsync();
    }

    [Fact]
    public async Task A_message_sent_while_its_peer_is_being_pruned_goes_to_a_fresh_peer_and_arrives()
    {
        var receiver = Keep(TcpTransport.Start(new IPEndPoint(IPAddress.Loopback, 0), _key, _options));
        var inbox = new ConcurrentQueue<OverlayMessage>();
        receiver.SetReceiver(new Inbox(inbox));
        var sender = Keep(TcpTransport.Start(new IPEndPoint(IPAddress.Loopback, 0), _key, _options));

        // The pruning timer has marked the peer retired and not yet taken it out of the table: the moment between
        // TryRetireIdle and TryRemove, held open here.
        var peers = (ConcurrentDictionary<NodeAddress, TcpPeer>)typeof(TcpTransport)
            .GetField("_peers", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(sender)!;
        var idle = new TcpPeer(sender, receiver.LocalAddress);
        Assert.True(peers.TryAdd(receiver.LocalAddress, idle));
        Assert.True(idle.TryRetireIdle(TimeSpan.Zero));

        sender.Send(receiver.LocalAddress, Numbered(sender.LocalAddress, 0));
        Assert.True(await TcpRingTests.EventuallyAsync(() => inbox.Count == 1, TimeSpan.FromSeconds(10)), $"not delivered; {sender.Dropped} dropped");
        Assert.Equal(0, sender.Dropped);
    }

    /// <summary>The system clock, with a hook run once on the next reading taken on one thread.</summary>
    private sealed class HookedTime : TimeProvider
    {
        private Action? _hook;
        private int _thread;

        public void OnNextReading(Action hook)
        {
            _thread = Environment.CurrentManagedThreadId;
            _hook = hook;
        }

        public override long GetTimestamp()
        {
            if (Environment.CurrentManagedThreadId == _thread && Interlocked.Exchange(ref _hook, null) is { } hook)
            {
                hook();
            }

            return base.GetTimestamp();
        }
    }

    [Fact]
    public async Task No_message_is_taken_into_a_peer_once_pruning_found_it_idle()
    {
        // A transport already stopped: its peers' send loops end at once, so whatever a queue takes stays in it.
        var time = new HookedTime();
        var transport = TcpTransport.Start(new IPEndPoint(IPAddress.Loopback, 0), _key, _options, time: time);
        await transport.DisposeAsync();
        var peer = new TcpPeer(transport, new NodeAddress("tcp://127.0.0.1:1"));

        // Pruning reads the clock after finding the queue empty: a message sent from another thread at that moment.
        Task<bool>? enqueue = null;
        time.OnNextReading(() =>
        {
            enqueue = Task.Run(() => peer.TryEnqueue(Numbered(transport.LocalAddress, 0)));
            enqueue.Wait(TimeSpan.FromMilliseconds(200));
        });
        var retired = peer.TryRetireIdle(TimeSpan.Zero);
        Assert.NotNull(enqueue);
        var enqueued = await enqueue;

        // Both at once means a retired peer holding a message: its send loop would dial, and write on a link that
        // Attach gave to the address's new peer, whose send loop writes there too.
        Assert.False(retired && enqueued, "a message was queued on a peer after pruning found it idle");
        Assert.True(retired || enqueued);
    }

    [Fact]
    public async Task A_closed_link_leaves_nothing_behind_on_the_transport_it_belonged_to()
    {
        var remote = Keep(TcpTransport.Start(new IPEndPoint(IPAddress.Loopback, 0), _key, _options));
        using var stopping = new CancellationTokenSource();
        var closed = await OpenAndCloseAsync(remote.LocalAddress, stopping.Token);

        // The transport lives as long as the node; what each of its links ever made must not live as long. Work the
        // close set off (the socket's last completions, queued on a loaded machine's thread pool) may still hold the
        // link for a moment: collected within five seconds, or it is kept for good.
        for (var attempt = 0; attempt < 50 && closed.IsAlive; attempt++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            if (closed.IsAlive)
            {
                await Task.Delay(100);
            }
        }

        Assert.False(closed.IsAlive, "the closed link's cancellation source is still registered on the transport's token");
        GC.KeepAlive(stopping);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private async Task<WeakReference> OpenAndCloseAsync(NodeAddress remote, CancellationToken stopping)
    {
        var link = await TcpLink.ConnectAsync(new NodeAddress("tcp://127.0.0.1:9"), remote, _key, _options, stopping);
        var source = typeof(TcpLink).GetField("_closed", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(link)!;
        await link.DisposeAsync();
        return new WeakReference(source);
    }

    private sealed class Inbox(ConcurrentQueue<OverlayMessage> messages) : IOverlayReceiver
    {
        public void Receive(OverlayMessage message) => messages.Enqueue(message);
    }
}
