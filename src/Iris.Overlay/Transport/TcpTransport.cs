using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Iris.Overlay.Security;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Iris.Overlay.Transport;

/// <summary>
/// The overlay transport between processes: TCP, every connection authenticated with the network key and encrypted
/// (<see cref="Handshake"/>, <see cref="FrameProtector"/>), length-prefixed frames read and written with
/// System.IO.Pipelines, one connection per pair of nodes, bounded queues per peer, reconnection with backoff, and a
/// shutdown that writes what is queued first. Addresses read <c>tcp://&lt;ip&gt;:&lt;port&gt;</c>.
/// </summary>
internal sealed class TcpTransport : IOverlayTransport, IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly ConcurrentDictionary<NodeAddress, TcpPeer> _peers = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _acceptLoop;
    private readonly ConcurrentDictionary<TcpLink, Task> _readLoops = new();
    private readonly Dictionary<IPAddress, LinkedList<PendingHandshake>> _handshakesByAddress = [];
    private readonly Lock _handshakeLock = new();
    private readonly ITimer _pruneTimer;
    private IOverlayReceiver? _receiver;
    private int _handshakes;
    private long _lastRefusalLogged;
    private long _refusalsNotLogged;
    private long _sent;
    private long _received;
    private long _dropped;
    private long _refused;
    private long _oversized;
    private long _receiverFailures;

    private TcpTransport(Socket listener, NetworkKey key, TcpTransportOptions options, ILogger logger, TimeProvider time)
    {
        _listener = listener;
        Time = time;
        Key = key;
        Options = options;
        Logger = logger;
        var endpoint = (IPEndPoint)listener.LocalEndPoint!;
        LocalAddress = new NodeAddress($"tcp://{endpoint}");
        var prune = options.IdlePeerTimeout / 2;
        _pruneTimer = Time.CreateTimer(static state => ((TcpTransport)state!).PruneIdlePeers(), this, prune, prune);
        _acceptLoop = Task.Run(AcceptLoopAsync);
        Log.Listening(logger, LocalAddress, key.ToString());
    }

    public NodeAddress LocalAddress { get; }

    public int MaxPayload => Math.Min(MessageCodec.MaxPayload, Options.MaxFrameSize - MessageCodec.MaxEnvelope);

    /// <summary>The clock of timeouts and backoff.</summary>
    public TimeProvider Time { get; }

    public NetworkKey Key { get; }

    public TcpTransportOptions Options { get; }

    public ILogger Logger { get; }

    public CancellationToken Stopping => _stopping.Token;

    /// <summary>Messages written to connections.</summary>
    public long Sent => Interlocked.Read(ref _sent);

    /// <summary>Messages received and handed to the receiver.</summary>
    public long Received => Interlocked.Read(ref _received);

    /// <summary>Messages dropped: queue full, peer unreachable, connection lost while writing, or too large.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Messages refused because they do not fit in a frame (also counted in <see cref="Dropped"/>).</summary>
    public long Oversized => Interlocked.Read(ref _oversized);

    /// <summary>Messages the receiver threw on.</summary>
    public long ReceiverFailures => Interlocked.Read(ref _receiverFailures);

    /// <summary>Accepted connections still in their handshake.</summary>
    public int HandshakesInProgress => Volatile.Read(ref _handshakes);

    /// <summary>Remote addresses with a peer (a queue and a send loop) now.</summary>
    public int Peers => _peers.Count;

    /// <summary>Connections open now (each being read).</summary>
    public int OpenConnections => _readLoops.Count;

    /// <summary>Connections refused or closed for a wrong key, a bad handshake, or a forged or malformed frame.</summary>
    public long Refused => Interlocked.Read(ref _refused);

    /// <summary>Listens on <paramref name="endpoint"/> (port 0 picks a free one) and returns the running transport.
    /// <paramref name="time"/> (default the system clock) times backoff, hand-overs and pruning.</summary>
    public static TcpTransport Start(IPEndPoint endpoint, NetworkKey key, TcpTransportOptions? options = null, ILogger? logger = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(key);
        options ??= new TcpTransportOptions();
        var validation = new TcpTransportOptionsValidator().Validate(null, options);
        if (validation.Failed)
        {
            throw new ArgumentException(validation.FailureMessage, nameof(options));
        }

        var listener = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(endpoint);
            listener.Listen(512);
        }
        catch
        {
            listener.Dispose();
            throw;
        }

        return new TcpTransport(listener, key, options, logger ?? NullLogger.Instance, time ?? TimeProvider.System);
    }

    public void SetReceiver(IOverlayReceiver receiver) => _receiver = receiver;

    public void Send(NodeAddress destination, OverlayMessage message)
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        var peer = Peer(destination);
        if (peer is not null && !peer.TryEnqueue(message) && peer.IsRetired)
        {
            // Pruned just now: the address gets a fresh peer.
            peer = Peer(destination);
            if (peer is not null && peer.TryEnqueue(message))
            {
                return;
            }
        }
        else if (peer is not null)
        {
            return;
        }

        Interlocked.Increment(ref _dropped);
        if (peer is not null)
        {
            Log.QueueFull(Logger, destination, Options.OutboundQueueCapacity);
        }
    }

    /// <summary>Queues a message, waiting while the peer's queue is full: back-pressure for callers that must not
    /// lose what they send.</summary>
    public ValueTask SendAsync(NodeAddress destination, OverlayMessage message, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_stopping.IsCancellationRequested, this);
        var peer = Peer(destination) ?? throw new ArgumentException($"'{destination}' is not a TCP overlay address: expected tcp://<ip>:<port>.", nameof(destination));
        if (peer.TryEnqueue(message))
        {
            return ValueTask.CompletedTask;
        }

        // Pruned just now: the address gets a fresh peer. Otherwise the queue is full: wait for room.
        return peer.IsRetired ? SendAsync(destination, message, cancellationToken) : peer.EnqueueAsync(message, cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        _listener.Dispose();
        await _pruneTimer.DisposeAsync().ConfigureAwait(false);
        await Task.WhenAll(_peers.Values.Select(p => p.DrainAsync(Options.ShutdownTimeout))).ConfigureAwait(false);
        await _stopping.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_peers.Values.Select(p => p.CloseAsync())).ConfigureAwait(false);
        await _acceptLoop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await Task.WhenAll(_readLoops.Values).WaitAsync(Options.ShutdownTimeout).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    internal void CountSent(int count) => Interlocked.Add(ref _sent, count);

    internal void CountDropped(int count) => Interlocked.Add(ref _dropped, count);

    internal void CountOversized()
    {
        Interlocked.Increment(ref _oversized);
        Interlocked.Increment(ref _dropped);
    }

    /// <summary>Puts a freshly opened link to work: attaches it to its peer and reads it until it ends, whether it
    /// carries the traffic from now on or lost a tie-break (the other side may have written on it already).</summary>
    internal void Start(TcpPeer peer, TcpLink link, string direction)
    {
        while (peer.Attach(link) == AttachResult.PeerRetired)
        {
            if (Peer(link.Remote) is not { } fresh)
            {
                _ = link.DisposeAsync().AsTask();
                return;
            }

            peer = fresh;
        }

        Log.Opened(Logger, link.Remote, direction);

        // Counted before it starts: a link whose reading ends at once (the other side's goodbye already arrived, as
        // on a dialled link the other side retired during the handshake) takes itself out when it ends, and must
        // not find itself not yet put in, to be put in for good afterwards.
        var loop = new Task<Task>(async () =>
        {
            var end = new LinkEnd("closed locally", Error: false, Goodbye: false);
            try
            {
                end = await link.ReadLoopAsync(peer).ConfigureAwait(false);
            }
            finally
            {
                peer.ReadEnded(link, end);
                _readLoops.TryRemove(link, out _);
                if (end.Error)
                {
                    // Logged before it is counted: whoever sees the count finds the reason in the log.
                    Log.ClosedOnError(Logger, link.Remote, end.Reason);
                    Interlocked.Increment(ref _refused);
                }
                else
                {
                    Log.Closed(Logger, link.Remote, end.Reason);
                }
            }
        }, TaskCreationOptions.DenyChildAttach);
        _readLoops[link] = loop.Unwrap();
        loop.Start(TaskScheduler.Default);
    }

    internal void Deliver(TcpPeer from, OverlayMessage message)
    {
        Interlocked.Increment(ref _received);
        try
        {
            _receiver?.Receive(message);
        }
        catch (Exception e)
        {
            // A receiver must not throw; if one does, the connection and the messages after this one are not to blame.
            Interlocked.Increment(ref _receiverFailures);
            Log.ReceiverFailed(Logger, from.Address, message.Type, e);
        }
    }

    private void PruneIdlePeers()
    {
        foreach (var (address, peer) in _peers)
        {
            if (peer.TryRetireIdle(Options.IdlePeerTimeout))
            {
                _peers.TryRemove(new KeyValuePair<NodeAddress, TcpPeer>(address, peer));
            }
        }
    }

    private TcpPeer? Peer(NodeAddress address)
    {
        if (_peers.TryGetValue(address, out var peer) && !peer.IsRetired)
        {
            return peer;
        }

        try
        {
            TcpLink.ParseEndPoint(address);
        }
        catch (FormatException)
        {
            return null;
        }

        while (true)
        {
            if (_peers.TryGetValue(address, out peer))
            {
                if (!peer.IsRetired)
                {
                    return peer;
                }

                // Pruned and not yet taken out of the table: the address gets a fresh peer now, or a message sent in
                // that moment would find only the retired one and be dropped.
                _peers.TryRemove(new KeyValuePair<NodeAddress, TcpPeer>(address, peer));
                continue;
            }

            // Its send loop starts only once it is in the table: a peer that lost the race to be added costs nothing.
            var fresh = new TcpPeer(this, address);
            if (_peers.TryAdd(address, fresh))
            {
                fresh.StartSending();
                return fresh;
            }
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (_stopping.IsCancellationRequested || e is ObjectDisposedException)
                {
                    return;
                }

                continue;
            }

            if (TryBeginHandshake(socket) is not { } pending)
            {
                Interlocked.Increment(ref _refused);
                socket.Dispose();
                continue;
            }

            _ = Task.Run(() => AcceptOneAsync(socket, pending));
        }
    }

    /// <summary>
    /// Counts a handshake in. Connections that have not proven they hold the key cost a socket and a task each, so
    /// their number is capped: per source address, an IPv6 /64 counting as one (beyond <see cref="TcpTransportOptions.MaxHandshakesPerAddress"/> a new one
    /// is refused) and in all (at <see cref="TcpTransportOptions.MaxHandshakesInProgress"/> the oldest handshake of the
    /// address holding the most is cut off to make room, so a flood from a few hosts cannot crowd out a real peer).
    /// Returns null when the connection is refused.
    /// </summary>
    private PendingHandshake? TryBeginHandshake(Socket socket)
    {
        var address = Source((socket.RemoteEndPoint as IPEndPoint)?.Address ?? IPAddress.None);
        PendingHandshake? evicted = null;
        PendingHandshake pending;
        lock (_handshakeLock)
        {
            var mine = _handshakesByAddress.GetValueOrDefault(address);
            var fromAddress = mine?.Count ?? 0;
            if (fromAddress >= Options.MaxHandshakesPerAddress)
            {
                Log.HandshakeCapReached(Logger, socket.RemoteEndPoint, _handshakes, fromAddress);
                return null;
            }

            if (_handshakes >= Options.MaxHandshakesInProgress)
            {
                var busiest = _handshakesByAddress.Values.MaxBy(l => l.Count)!;
                if (busiest.Count <= fromAddress + 1)
                {
                    Log.HandshakeCapReached(Logger, socket.RemoteEndPoint, _handshakes, fromAddress);
                    return null;
                }

                evicted = busiest.First!.Value;
                RemoveLocked(evicted);
            }

            pending = new PendingHandshake(address, _stopping.Token);
            if (mine is null)
            {
                mine = new LinkedList<PendingHandshake>();
                _handshakesByAddress[address] = mine;
            }

            pending.Node = mine.AddLast(pending);
            Volatile.Write(ref _handshakes, _handshakes + 1);
        }

        evicted?.Cancel.Cancel();
        return pending;
    }

    /// <summary>What counts as one source for the per-address cap: an IPv4 address, or an IPv6 /64 (one host commonly
    /// holds a whole /64, and could otherwise take every slot).</summary>
    internal static IPAddress Source(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            return address.MapToIPv4();
        }

        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return address;
        }

        var bytes = address.GetAddressBytes();
        bytes.AsSpan(8).Clear();
        return new IPAddress(bytes);
    }

    private void EndHandshake(PendingHandshake pending)
    {
        lock (_handshakeLock)
        {
            if (pending.Node?.List is not null)
            {
                RemoveLocked(pending);
            }
        }

        pending.Cancel.Dispose();
    }

    private void RemoveLocked(PendingHandshake pending)
    {
        var list = pending.Node!.List!;
        list.Remove(pending.Node);
        if (list.Count == 0)
        {
            _handshakesByAddress.Remove(pending.Address);
        }

        Volatile.Write(ref _handshakes, _handshakes - 1);
    }

    /// <summary>One accepted connection in its handshake: cancelled to cut it off.</summary>
    private sealed class PendingHandshake(IPAddress address, CancellationToken stopping)
    {
        public IPAddress Address { get; } = address;

        public CancellationTokenSource Cancel { get; } = CancellationTokenSource.CreateLinkedTokenSource(stopping);

        public LinkedListNode<PendingHandshake>? Node { get; set; }
    }

    private async Task AcceptOneAsync(Socket socket, PendingHandshake pending)
    {
        var remote = socket.RemoteEndPoint;
        TcpLink link;
        try
        {
            link = await TcpLink.AcceptAsync(socket, LocalAddress, Key, Options, _stopping.Token, pending.Cancel.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // Whatever went wrong before the peer proved it holds the key, the connection ends and costs nothing more.
            socket.Dispose();
            if (!_stopping.IsCancellationRequested)
            {
                LogRefused(remote, e is OperationCanceledException ? "cut off to make room for other handshakes" : e.Message);
                Interlocked.Increment(ref _refused);
            }

            return;
        }
        finally
        {
            EndHandshake(pending);
        }

        try
        {
            if (Peer(link.Remote) is { } peer)
            {
                Start(peer, link, "accepted");
            }
            else
            {
                await link.DisposeAsync().ConfigureAwait(false);
            }
        }
        catch (Exception e)
        {
            await link.DisposeAsync().ConfigureAwait(false);
            LogRefused(remote, e.Message);
        }
    }

    /// <summary>Logs a refused connection, at most once a second with a count of those not logged: a flood of bad
    /// connections must not become a flood of log lines.</summary>
    private void LogRefused(EndPoint? remote, string reason)
    {
        var now = Time.GetTimestamp();
        lock (_handshakeLock)
        {
            if (_lastRefusalLogged != 0 && Time.GetElapsedTime(_lastRefusalLogged, now) < TimeSpan.FromSeconds(1))
            {
                Interlocked.Increment(ref _refusalsNotLogged);
                return;
            }

            _lastRefusalLogged = now;
        }

        var skipped = Interlocked.Exchange(ref _refusalsNotLogged, 0);
        Log.Refused(Logger, remote, skipped == 0 ? reason : $"{reason} ({skipped} more refused in the last second, not logged)");
    }
}
