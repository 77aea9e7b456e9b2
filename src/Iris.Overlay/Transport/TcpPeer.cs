using System.Net.Sockets;
using System.Threading.Channels;
using Iris.Overlay.Security;

namespace Iris.Overlay.Transport;

/// <summary>
/// Everything the TCP transport keeps for one remote address: a bounded queue of outbound messages, and the link
/// they go out on, made on demand and made again, with backoff, when it breaks. One link per pair of nodes carries
/// both directions; if both opened one at the same moment, both keep the one opened by the smaller address.
/// </summary>
/// <remarks>
/// <para>The send loop is the only writer of every link of this peer, so a link can be closed at any moment without
/// waiting for it, and a write in progress simply fails.</para>
/// <para>Handing over from one link to another loses nothing and reorders nothing. The link that gives way is
/// retired: the send loop writes a goodbye as the last frame on it, and, if it had written messages there, starts the
/// next link with a note naming the retired one. The other side reads a retired link until its goodbye, and delays
/// what arrives after such a note until that link is read to the end (or the handshake timeout passed). A link closes
/// once goodbyes went both ways, or the connection broke.</para>
/// </remarks>
internal sealed class TcpPeer : ILinkReader
{
    private const int MaxBatch = 256;
    private const int DrainedMemory = 16;
    private const int DialsBeforeDropping = 3;

    /// <summary>Put in the queue to wake the send loop when there is a link to retire and nothing to send. The loop may
    /// take it into a batch before it sees the link (a link retired while it dials or writes): so it never waits for
    /// the queue while a retired link is waiting for its goodbye (<see cref="HasRetiring"/>).</summary>
    private static readonly OverlayMessage Wake = new RouteAckMessage { Sender = new NodeHandle(NodeKey.Zero, new NodeAddress("wake")), HopId = 0 };

    private readonly TcpTransport _transport;
    private readonly Channel<OverlayMessage> _queue;
    private readonly Lock _gate = new();
    private Task _sendLoop = Task.CompletedTask;
    private readonly List<TcpLink> _retiring = [];
    private readonly Queue<UInt128> _drained = new();
    private readonly Dictionary<UInt128, TaskCompletionSource> _drainWaits = [];
    private TcpLink? _active;
    private bool _retired;
    private long _lastUsed;

    public TcpPeer(TcpTransport transport, NodeAddress address)
    {
        _transport = transport;
        Address = address;
        _lastUsed = transport.Time.GetTimestamp();
        _queue = Channel.CreateBounded<OverlayMessage>(new BoundedChannelOptions(transport.Options.OutboundQueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    /// <summary>Starts the send loop; called once, when the peer has its place in the transport's table.</summary>
    public void StartSending() => _sendLoop = Task.Run(SendLoopAsync);

    public NodeAddress Address { get; }

    /// <summary>Whether the transport pruned this peer; a new one takes its place when the address is used again.</summary>
    public bool IsRetired
    {
        get { lock (_gate) { return _retired; } }
    }

    /// <summary>Queues a message unless the queue is full or the peer retired. Under the gate, so that pruning, which
    /// checks the queue is empty and then closes it, never lets a message in between: one that got in would be sent
    /// by a retired peer, on a link that belongs to the address's new peer, a second writer.</summary>
    public bool TryEnqueue(OverlayMessage message)
    {
        lock (_gate)
        {
            Volatile.Write(ref _lastUsed, _transport.Time.GetTimestamp());
            return _queue.Writer.TryWrite(message);
        }
    }

    public ValueTask EnqueueAsync(OverlayMessage message, CancellationToken cancellationToken)
    {
        Volatile.Write(ref _lastUsed, _transport.Time.GetTimestamp());
        return _queue.Writer.WriteAsync(message, cancellationToken);
    }

    /// <summary>
    /// Adopts a link (accepted or dialled). The winner of a tie-break becomes the active link and the other one is
    /// retired; either way the caller reads the link until it ends, since the other side may have written on it
    /// before it learned it lost.
    /// </summary>
    public AttachResult Attach(TcpLink link)
    {
        lock (_gate)
        {
            if (_retired)
            {
                return AttachResult.PeerRetired;
            }

            Volatile.Write(ref _lastUsed, _transport.Time.GetTimestamp());
            if (_active is null || _active.IsClosed)
            {
                _active = link;
                return AttachResult.Active;
            }

            if (string.CompareOrdinal(link.InitiatorAddress.Value, _active.InitiatorAddress.Value) < 0)
            {
                RetireLocked(_active);
                _active = link;
                return AttachResult.Active;
            }

            RetireLocked(link);
            return AttachResult.Retired;
        }
    }

    /// <summary>A link's reading ended: at the other side's goodbye the link is retired (this side writes its own
    /// goodbye, then closes it); otherwise it is broken, dropped and closed.</summary>
    public void ReadEnded(TcpLink link, LinkEnd end)
    {
        var close = false;
        lock (_gate)
        {
            if (_active == link)
            {
                _active = null;
            }

            if (end.Goodbye && !link.GoodbyeSent && !link.IsClosed)
            {
                RetireLocked(link);
            }
            else
            {
                _retiring.Remove(link);
                close = true;
            }

            _drained.Enqueue(link.Id);
            if (_drained.Count > DrainedMemory)
            {
                _drained.Dequeue();
            }

            if (_drainWaits.Remove(link.Id, out var waiting))
            {
                waiting.TrySetResult();
            }
        }

        if (close)
        {
            _ = link.DisposeAsync().AsTask();
        }
    }

    public void Deliver(OverlayMessage message) => _transport.Deliver(this, message);

    public async ValueTask WaitForDrainAsync(UInt128 connectionId)
    {
        TaskCompletionSource waiting;
        lock (_gate)
        {
            if (_drained.Contains(connectionId))
            {
                return;
            }

            if (!_drainWaits.TryGetValue(connectionId, out waiting!))
            {
                waiting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _drainWaits[connectionId] = waiting;
            }
        }

        var timeout = _transport.Options.HandshakeTimeout;
        try
        {
            await waiting.Task.WaitAsync(timeout, _transport.Time, _transport.Stopping).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            lock (_gate)
            {
                _drainWaits.Remove(connectionId);
            }

            Log.HandOverTimedOut(_transport.Logger, Address, connectionId, timeout);
        }
    }

    /// <summary>Marks the peer retired if it has had no link and no traffic for <paramref name="idle"/>: its send loop
    /// ends. Returns whether it did.</summary>
    public bool TryRetireIdle(TimeSpan idle)
    {
        lock (_gate)
        {
            if (_retired || _active is not null || _retiring.Count > 0 || _queue.Reader.Count > 0
                || _transport.Time.GetElapsedTime(Volatile.Read(ref _lastUsed)) < idle)
            {
                return false;
            }

            _retired = true;
            _queue.Writer.TryComplete();
            return true;
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
        List<TcpLink> links;
        lock (_gate)
        {
            links = [.. _retiring];
            if (_active is not null)
            {
                links.Add(_active);
            }

            _active = null;
            _retiring.Clear();
        }

        foreach (var link in links)
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

    private void RetireLocked(TcpLink link)
    {
        if (!_retiring.Contains(link))
        {
            _retiring.Add(link);
        }

        // Wake the send loop so the goodbye goes out even when nothing else is queued. A full queue needs no
        // waking: the loop is busy and reaches the retired link before its next batch.
        _queue.Writer.TryWrite(Wake);
    }

    /// <summary>Whether a link is waiting for its goodbye. Checked by the send loop before it waits for the queue: the
    /// wake-up that came with the link may have been taken already, into a batch behind messages queued before it,
    /// and a goodbye that waits for the next message may wait for good (the other side keeps the link open until it
    /// arrives, or until nothing arrived for twice the handshake timeout).</summary>
    private bool HasRetiring
    {
        get { lock (_gate) { return _retiring.Count > 0; } }
    }

    private List<TcpLink> TakeRetiring()
    {
        lock (_gate)
        {
            if (_retiring.Count == 0)
            {
                return [];
            }

            List<TcpLink> links = [.. _retiring];
            _retiring.Clear();
            return links;
        }
    }

    /// <summary>Writes the goodbye on a retired link and closes it once reading it has ended: the other side's goodbye
    /// arrived, or the connection ended, or nothing at all arrived on it for twice the handshake timeout (the other
    /// end is gone without closing). Not sooner: the other side may still be writing there until it reads this
    /// goodbye. Returns whether the goodbye was written.</summary>
    private async ValueTask<bool> RetireAsync(TcpLink link)
    {
        try
        {
            await link.WriteGoodbyeAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !_transport.Stopping.IsCancellationRequested)
        {
            await link.DisposeAsync().ConfigureAwait(false);
            return false;
        }

        _ = CloseWhenDrainedAsync(link);
        return true;
    }

    /// <summary>Writes the goodbye on every link retired since the last call. Returns null unless <paramref name="current"/>
    /// (the link the send loop last wrote on) was one of them; then, the id the next link's note names, null if the
    /// goodbye could not be written (the connection broke: nothing to wait for).</summary>
    private async ValueTask<RetiredCurrent?> RetireTakenAsync(TcpLink? current)
    {
        RetiredCurrent? retiredCurrent = null;
        foreach (var retired in TakeRetiring())
        {
            var wroteGoodbye = await RetireAsync(retired).ConfigureAwait(false);
            if (retired == current)
            {
                retiredCurrent = new RetiredCurrent(wroteGoodbye ? retired.Id : null);
            }
        }

        return retiredCurrent;
    }

    /// <summary>The send loop's current link was retired; <paramref name="HandOver"/> is what the next link's note names.</summary>
    private readonly record struct RetiredCurrent(UInt128? HandOver);

    private async Task CloseWhenDrainedAsync(TcpLink link)
    {
        var idle = 2 * _transport.Options.HandshakeTimeout;
        while (true)
        {
            var before = link.BytesRead;
            try
            {
                await link.Drained.WaitAsync(idle, _transport.Time).ConfigureAwait(false);
                break;
            }
            catch (TimeoutException) when (link.BytesRead == before)
            {
                break;
            }
            catch (TimeoutException)
            {
                // Still arriving: keep reading.
            }
        }

        await link.DisposeAsync().ConfigureAwait(false);
    }

    private async Task SendLoopAsync()
    {
        var stopping = _transport.Stopping;
        var backoff = _transport.Options.ReconnectMinDelay;
        var batch = new List<OverlayMessage>(MaxBatch);
        var reader = _queue.Reader;
        TcpLink? current = null;
        UInt128? handOver = null;
        var failedDials = 0;
        try
        {
            while (HasRetiring || await reader.WaitToReadAsync(stopping).ConfigureAwait(false))
            {
                if (await RetireTakenAsync(current).ConfigureAwait(false) is { } retiredCurrent)
                {
                    current = null;
                    handOver = retiredCurrent.HandOver ?? handOver;
                }

                // Wake-ups only: nothing to send.
                while (reader.TryPeek(out var next) && ReferenceEquals(next, Wake))
                {
                    reader.TryRead(out _);
                }

                if (!reader.TryPeek(out _))
                {
                    continue;
                }

                var link = Active;
                if (link is null)
                {
                    // A hand-over still pending stays: the link the other side retired may be the only one there
                    // was, and what goes on the link dialled now must wait for what was sent on it.
                    try
                    {
                        link = await TcpLink.ConnectAsync(_transport.LocalAddress, Address, _transport.Key, _transport.Options, stopping).ConfigureAwait(false);
                        _transport.Start(this, link, "dialled");
                        link = Active ?? link;
                        backoff = _transport.Options.ReconnectMinDelay;
                        failedDials = 0;
                    }
                    catch (Exception e) when (e is SocketException or IOException or OverlayAuthenticationException or OverlayProtocolException or FormatException
                        or OperationCanceledException && !stopping.IsCancellationRequested)
                    {
                        // One failed attempt may be a busy peer: the queue waits for the next. A peer that cannot be
                        // reached several times running is gone, and what was queued for it is stale by the time
                        // it comes back.
                        var dropped = 0;
                        if (++failedDials >= DialsBeforeDropping)
                        {
                            while (reader.TryRead(out var message))
                            {
                                dropped += ReferenceEquals(message, Wake) ? 0 : 1;
                            }

                            _transport.CountDropped(dropped);
                        }

                        Log.DialFailed(_transport.Logger, Address, e.Message, dropped, backoff);
                        await Task.Delay(backoff, _transport.Time, stopping).ConfigureAwait(false);
                        backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, _transport.Options.ReconnectMaxDelay.Ticks));
                        continue;
                    }
                }

                batch.Clear();
                while (batch.Count < MaxBatch && reader.TryRead(out var message))
                {
                    if (!ReferenceEquals(message, Wake))
                    {
                        batch.Add(message);
                    }
                }

                if (link != current)
                {
                    // The link last written on was given up since the retired links were taken above (the other
                    // side's goodbye read, or a link that won the tie-break, while this loop dialled or read the
                    // batch): its goodbye goes out first, and this batch starts with the note naming it, or the other
                    // side, still reading it, could deliver this batch before what was written there.
                    if (current is not null && await RetireTakenAsync(current).ConfigureAwait(false) is { } givenUp)
                    {
                        handOver = givenUp.HandOver ?? handOver;
                    }

                    current = link;
                }

                try
                {
                    var refused = await link.WriteAsync(batch, handOver, Refuse).ConfigureAwait(false);
                    handOver = null;
                    _transport.CountSent(batch.Count - refused);
                }
                catch (Exception e) when (!stopping.IsCancellationRequested)
                {
                    // Whatever broke (the connection, or a bug in encoding), this batch is lost and the link with
                    // it; the loop goes on with a new link. The ring retransmits what it must not lose.
                    lock (_gate)
                    {
                        if (_active == link)
                        {
                            _active = null;
                        }
                    }

                    current = null;
                    handOver = null;
                    await link.DisposeAsync().ConfigureAwait(false);
                    _transport.CountDropped(batch.Count);
                    Log.WriteFailed(_transport.Logger, Address, e.Message, batch.Count, e);
                }
            }
        }
        catch (Exception) when (stopping.IsCancellationRequested)
        {
            // Transport shutting down: its links are being closed under the loop.
        }
    }

    private void Refuse(OverlayMessage message, string reason)
    {
        _transport.CountOversized();
        Log.Oversized(_transport.Logger, Address, message.Type, reason);
    }
}

/// <summary>What became of a link given to <see cref="TcpPeer.Attach"/>.</summary>
internal enum AttachResult
{
    /// <summary>It carries this peer's traffic from now on.</summary>
    Active,

    /// <summary>It lost the tie-break against the active link: read it to its end, write nothing but a goodbye.</summary>
    Retired,

    /// <summary>The peer was pruned; attach to the address's new peer.</summary>
    PeerRetired,
}
