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
    private IOverlayReceiver? _receiver;
    private long _sent;
    private long _received;
    private long _dropped;
    private long _refused;

    private TcpTransport(Socket listener, NetworkKey key, TcpTransportOptions options, ILogger logger)
    {
        _listener = listener;
        Key = key;
        Options = options;
        Logger = logger;
        var endpoint = (IPEndPoint)listener.LocalEndPoint!;
        LocalAddress = new NodeAddress($"tcp://{endpoint}");
        _acceptLoop = Task.Run(AcceptLoopAsync);
        Log.Listening(logger, LocalAddress, key.ToString());
    }

    public NodeAddress LocalAddress { get; }

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

    /// <summary>Connections open now (each being read).</summary>
    public int OpenConnections => _readLoops.Count;

    /// <summary>Connections refused or closed for a wrong key, a bad handshake, or a forged or malformed frame.</summary>
    public long Refused => Interlocked.Read(ref _refused);

    /// <summary>Listens on <paramref name="endpoint"/> (port 0 picks a free one) and returns the running transport.</summary>
    public static TcpTransport Start(IPEndPoint endpoint, NetworkKey key, TcpTransportOptions? options = null, ILogger? logger = null)
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

        return new TcpTransport(listener, key, options, logger ?? NullLogger.Instance);
    }

    public void SetReceiver(IOverlayReceiver receiver) => _receiver = receiver;

    public void Send(NodeAddress destination, OverlayMessage message)
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        var peer = Peer(destination);
        if (peer is null || !peer.TryEnqueue(message))
        {
            Interlocked.Increment(ref _dropped);
            if (peer is not null)
            {
                Log.QueueFull(Logger, destination, Options.OutboundQueueCapacity);
            }
        }
    }

    /// <summary>Queues a message, waiting while the peer's queue is full: back-pressure for callers that must not
    /// lose what they send.</summary>
    public ValueTask SendAsync(NodeAddress destination, OverlayMessage message, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_stopping.IsCancellationRequested, this);
        var peer = Peer(destination) ?? throw new ArgumentException($"'{destination}' is not a TCP overlay address: expected tcp://<ip>:<port>.", nameof(destination));
        return peer.EnqueueAsync(message, cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        _listener.Dispose();
        await Task.WhenAll(_peers.Values.Select(p => p.DrainAsync(Options.ShutdownTimeout))).ConfigureAwait(false);
        await _stopping.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_peers.Values.Select(p => p.CloseAsync())).ConfigureAwait(false);
        await _acceptLoop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await Task.WhenAll(_readLoops.Values).WaitAsync(Options.ShutdownTimeout).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    internal void CountSent(int count) => Interlocked.Add(ref _sent, count);

    internal void CountDropped(int count) => Interlocked.Add(ref _dropped, count);

    /// <summary>Puts a freshly opened link to work: attaches it to its peer and starts reading from it.</summary>
    internal void Start(TcpPeer peer, TcpLink link, string direction)
    {
        if (!peer.Attach(link))
        {
            return;
        }

        Log.Opened(Logger, link.Remote, direction);
        var loop = Task.Run(async () =>
        {
            var (reason, error) = await link.ReadLoopAsync(Deliver).ConfigureAwait(false);
            peer.Detach(link);
            if (error)
            {
                Interlocked.Increment(ref _refused);
                Log.ClosedOnError(Logger, link.Remote, reason);
            }
            else
            {
                Log.Closed(Logger, link.Remote, reason);
            }

            _readLoops.TryRemove(link, out _);
        });
        _readLoops[link] = loop;
    }

    private void Deliver(OverlayMessage message)
    {
        Interlocked.Increment(ref _received);
        _receiver?.Receive(message);
    }

    private TcpPeer? Peer(NodeAddress address)
    {
        if (_peers.TryGetValue(address, out var peer))
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

        return _peers.GetOrAdd(address, a => new TcpPeer(this, a));
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

            _ = Task.Run(() => AcceptOneAsync(socket));
        }
    }

    private async Task AcceptOneAsync(Socket socket)
    {
        var remote = socket.RemoteEndPoint;
        try
        {
            var link = await TcpLink.AcceptAsync(socket, LocalAddress, Key, Options, _stopping.Token).ConfigureAwait(false);
            if (Peer(link.Remote) is { } peer)
            {
                Start(peer, link, "accepted");
            }
            else
            {
                await link.DisposeAsync().ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is OverlayAuthenticationException or OverlayProtocolException or IOException or SocketException or OperationCanceledException)
        {
            socket.Dispose();
            if (!_stopping.IsCancellationRequested)
            {
                Interlocked.Increment(ref _refused);
                Log.Refused(Logger, remote, e.Message);
            }
        }
    }
}
