using System.Net.Sockets;
using System.Threading.Channels;
using Iris.Overlay.Security;
using Microsoft.Extensions.Logging;

namespace Iris.Overlay.Transport;

/// <summary>
/// Everything the TCP transport keeps for one remote address: a bounded queue of outbound messages, and the link
/// they go out on, made on demand and made again, with backoff, when it breaks. One link per pair of nodes carries
/// both directions; if both opened one at the same moment, both keep the one opened by the smaller address.
/// </summary>
internal sealed class TcpPeer
{
    private const int MaxBatch = 256;

    private readonly TcpTransport _transport;
    private readonly Channel<OverlayMessage> _queue;
    private readonly Lock _gate = new();
    private readonly Task _sendLoop;
    private TcpLink? _active;

    public TcpPeer(TcpTransport transport, NodeAddress address)
    {
        _transport = transport;
        Address = address;
        _queue = Channel.CreateBounded<OverlayMessage>(new BoundedChannelOptions(transport.Options.OutboundQueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _sendLoop = Task.Run(SendLoopAsync);
    }

    public NodeAddress Address { get; }

    public bool TryEnqueue(OverlayMessage message) => _queue.Writer.TryWrite(message);

    public ValueTask EnqueueAsync(OverlayMessage message, CancellationToken cancellationToken) => _queue.Writer.WriteAsync(message, cancellationToken);

    /// <summary>Adopts a link (accepted or dialled); returns false if it lost the tie-break and was closed.</summary>
    public bool Attach(TcpLink link)
    {
        TcpLink? loser;
        lock (_gate)
        {
            if (_active is null || _active.IsClosed)
            {
                _active = link;
                return true;
            }

            if (string.CompareOrdinal(link.InitiatorAddress.Value, _active.InitiatorAddress.Value) < 0)
            {
                loser = _active;
                _active = link;
            }
            else
            {
                loser = link;
            }
        }

        _ = loser.DisposeAsync().AsTask();
        return loser != link;
    }

    public void Detach(TcpLink link)
    {
        lock (_gate)
        {
            if (_active == link)
            {
                _active = null;
            }
        }
    }

    /// <summary>Stops taking messages and waits (up to <paramref name="timeout"/>) for the queued ones to be written.</summary>
    public async Task DrainAsync(TimeSpan timeout)
    {
        _queue.Writer.TryComplete();
        await _sendLoop.WaitAsync(timeout).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    public async Task CloseAsync()
    {
        TcpLink? link;
        lock (_gate)
        {
            link = _active;
            _active = null;
        }

        if (link is not null)
        {
            await link.DisposeAsync().ConfigureAwait(false);
        }
    }

    private TcpLink? Active
    {
        get
        {
            lock (_gate)
            {
                return _active is { IsClosed: false } link ? link : null;
            }
        }
    }

    private async Task SendLoopAsync()
    {
        var stopping = _transport.Stopping;
        var backoff = _transport.Options.ReconnectMinDelay;
        var batch = new List<OverlayMessage>(MaxBatch);
        var reader = _queue.Reader;
        try
        {
            while (await reader.WaitToReadAsync(stopping).ConfigureAwait(false))
            {
                var link = Active;
                if (link is null)
                {
                    try
                    {
                        link = await TcpLink.ConnectAsync(_transport.LocalAddress, Address, _transport.Key, _transport.Options, stopping).ConfigureAwait(false);
                        _transport.Start(this, link, "dialled");
                        link = Active ?? link;
                        backoff = _transport.Options.ReconnectMinDelay;
                    }
                    catch (Exception e) when (e is SocketException or IOException or OverlayAuthenticationException or OverlayProtocolException or FormatException
                        or OperationCanceledException && !stopping.IsCancellationRequested)
                    {
                        // The peer is unreachable: what was queued for it is stale by the time it comes back.
                        var dropped = 0;
                        while (reader.TryRead(out _))
                        {
                            dropped++;
                        }

                        _transport.CountDropped(dropped);
                        Log.DialFailed(_transport.Logger, Address, e.Message, dropped, backoff);
                        await Task.Delay(backoff, stopping).ConfigureAwait(false);
                        backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, _transport.Options.ReconnectMaxDelay.Ticks));
                        continue;
                    }
                }

                batch.Clear();
                while (batch.Count < MaxBatch && reader.TryRead(out var message))
                {
                    batch.Add(message);
                }

                try
                {
                    var refused = await link.WriteAsync(batch, stopping).ConfigureAwait(false);
                    _transport.CountSent(batch.Count - refused);
                    if (refused > 0)
                    {
                        // Too large for a frame: refused here, the link and the rest of the batch are fine.
                        Log.Oversized(_transport.Logger, Address, refused, _transport.Options.MaxFrameSize);
                        _transport.CountDropped(refused);
                    }
                }
                catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
                {
                    Detach(link);
                    _transport.CountDropped(batch.Count);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Transport shutting down.
        }
    }
}
