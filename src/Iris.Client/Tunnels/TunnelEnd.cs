using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Iris.Calls;
using Iris.Diagnostics;
using Iris.Protocol;

namespace Iris.Tunnels;

/// <summary>
/// One end of a tunnel, in the process of the opener or of the member. Sending: a message is cut into chunks of at
/// most 64 KiB, numbered, and queued once the peer's window has room for each; a pump carries queued frames to the
/// peer in batches, several calls in flight (Orleans does not keep calls in order, the numbers do). Receiving: frames
/// are put back in order, chunks reassembled, whole messages queued for the application; bytes are granted back to
/// the peer as the application takes them, so what waits here stays within the window (plus one large message being
/// reassembled, whose chunks are granted while nothing else waits).
/// </summary>
internal sealed class TunnelEnd : ITunnel
{
    private const int MaxCallsInFlight = 4;
    private const int MaxBatchFrames = 256;
    private const int MaxBatchBytes = 256 * 1024;

    private readonly LocalTunnels _owner;
    private readonly IGrainFactory _grains;
    private readonly TunnelOptions _options;
    private readonly CancellationTokenSource _closing = new();
    private readonly Lock _gate = new();

    // Sending.
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly Channel<TunnelFrame> _outgoing = Channel.CreateUnbounded<TunnelFrame>(new UnboundedChannelOptions { SingleReader = true });
    private long _peerWindow;
    private long _spent;
    private long _grantedByPeer;
    private long _nextSend;
    private TaskCompletionSource? _creditWaiter;
    private Task _pump = Task.CompletedTask;

    // Receiving.
    private readonly Dictionary<long, TunnelFrame> _early = [];
    private readonly Queue<(byte[] Message, int Ungranted)> _messages = new();
    private readonly int _grantThreshold;
    private long _nextReceive;
    private List<byte[]>? _partial;
    private long _partialBytes;
    private int _partialUngranted;
    private int _toGrant;
    private long _granted;
    private long _buffered;
    private TaskCompletionSource? _receiveWaiter;

    // Ending.
    private TunnelCloseReason? _ended;
    private string? _endedDetail;
    private TunnelSet? _set;
    private volatile bool _closeRequested;
    private string? _peerProcess;

    public TunnelEnd(LocalTunnels owner, IGrainFactory grains, TunnelOptions options, string cluster, Guid tunnel, bool opener)
    {
        _owner = owner;
        _grains = grains;
        _options = options;
        Cluster = cluster;
        Id = opener ? tunnel : MemberSide(tunnel);
        PeerId = opener ? MemberSide(tunnel) : tunnel;
        _grantThreshold = options.WindowBytes / 4;
    }

    public string Cluster { get; }

    /// <summary>This end's id in its process: the tunnel's id at the opener, a variant of it at the member, so that
    /// both ends can live in one process.</summary>
    public Guid Id { get; }

    /// <summary>The other end's id in its process.</summary>
    public Guid PeerId { get; }

    /// <summary>The other end's process, once known.</summary>
    public MemberEndpoint? Peer { get; private set; }

    /// <summary>
    /// The process frames are taken from: the connected peer, or, while an opener waits for an answer, the member
    /// process it is asking. Frames and calls from any other process are answered as for an abandoned tunnel, so the
    /// end there (a member that accepted an open whose answer was lost) closes: a tunnel has one member end.
    /// </summary>
    public string? PeerProcess
    {
        get
        {
            lock (_gate)
            {
                return _peerProcess;
            }
        }
    }

    /// <summary>Cancelled when the tunnel closes, for whatever reason.</summary>
    public CancellationToken Closing => _closing.Token;

    /// <summary>Bytes waiting here to be taken by the application: out-of-order frames, a message being reassembled,
    /// whole messages.</summary>
    public long BufferedBytes
    {
        get
        {
            lock (_gate)
            {
                return _buffered;
            }
        }
    }

    public bool IsEnded
    {
        get
        {
            lock (_gate)
            {
                return _ended is not null;
            }
        }
    }

    /// <summary>
    /// An opener is about to offer the tunnel to the member process <paramref name="process"/>: frames from it are
    /// taken from now on. Asking another process than before starts receiving afresh: nothing of the earlier one
    /// reached the application (the open has not returned), and its end is answered as abandoned.
    /// </summary>
    public void Expect(string process)
    {
        lock (_gate)
        {
            if (_peerProcess == process)
            {
                return;
            }

            _peerProcess = process;
            _early.Clear();
            _messages.Clear();
            _partial = null;
            _partialBytes = 0;
            _partialUngranted = 0;
            _nextReceive = 0;
            _toGrant = 0;
            _granted = 0;
            _buffered = 0;
        }
    }

    /// <summary>Connects the end to its peer, which accepts <paramref name="peerWindow"/> bytes ahead; starts sending.</summary>
    public void Connect(MemberEndpoint peer, int peerWindow, TunnelSet? set = null)
    {
        long early;
        lock (_gate)
        {
            Peer = peer;
            _peerProcess = peer.Id;
            _set = set;
            _peerWindow = peerWindow;
            early = _granted;
        }

        set?.Add(this);

        _pump = Task.Run(PumpAsync);
        if (early > 0)
        {
            // The member's first messages came before its address did: grant what the application took of them.
            SendCredit(early);
        }
    }

    public async ValueTask SendAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken = default)
    {
        ThrowIfEnded();
        if (message.Length > _options.MaxMessageBytes)
        {
            throw new TunnelMessageTooLargeException(Cluster, message.Length, _options.MaxMessageBytes);
        }

        await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        var partlySent = false;
        try
        {
            var offset = 0;
            do
            {
                var size = Math.Min(TunnelOptions.ChunkBytes, message.Length - offset);
                await TakeCreditAsync(size, cancellationToken).ConfigureAwait(false);
                var last = offset + size == message.Length;
                Enqueue(last ? TunnelFrameKind.Final : TunnelFrameKind.Chunk, message.Slice(offset, size).ToArray());
                offset += size;
                partlySent = !last;
            }
            while (offset < message.Length);

            IrisMetrics.TunnelMessages.Add(1, IrisMetrics.Sent);
            IrisMetrics.TunnelBytes.Add(message.Length, IrisMetrics.Sent);
        }
        catch (Exception) when (partlySent)
        {
            // Part of the message went out: the receiver drops it.
            Enqueue(TunnelFrameKind.Abort, []);
            throw;
        }
        finally
        {
            _sendLock.Release();
        }
    }

    public async ValueTask<byte[]> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            Task waiter;
            byte[]? message = null;
            long grant = 0;
            lock (_gate)
            {
                if (_messages.TryDequeue(out var next))
                {
                    message = next.Message;
                    _buffered -= message.Length;
                    var released = next.Ungranted;
                    if (_messages.Count == 0)
                    {
                        // Nothing else waits: the chunks of a message being reassembled may come on.
                        released += _partialUngranted;
                        _partialUngranted = 0;
                    }

                    grant = Release(released);
                }
                else if (_ended is { } reason)
                {
                    throw new TunnelClosedException(Cluster, reason, _endedDetail);
                }

                waiter = message is null ? (_receiveWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task : Task.CompletedTask;
            }

            if (message is not null)
            {
                IrisMetrics.TunnelMessages.Add(1, IrisMetrics.Received);
                IrisMetrics.TunnelBytes.Add(message.Length, IrisMetrics.Received);
                if (grant > 0)
                {
                    SendCredit(grant);
                }

                return message;
            }

            await waiter.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public async IAsyncEnumerable<byte[]> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (true)
        {
            byte[] message;
            try
            {
                message = await ReceiveAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (TunnelClosedException e) when (e.Reason is TunnelCloseReason.ClosedByPeer or TunnelCloseReason.Closed)
            {
                yield break;
            }

            yield return message;
        }
    }

    public async Task CloseAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (_ended is not null)
            {
                return;
            }
        }

        // A send waiting for credit is not sent yet: it ends (and drops what it queued of its message) so that the
        // close follows everything sent before it.
        _closeRequested = true;
        WakeSenders();
        await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (IsEnded)
            {
                return;
            }

            Enqueue(TunnelFrameKind.Close, []);
            _outgoing.Writer.TryComplete();
        }
        finally
        {
            _sendLock.Release();
        }

        await _pump.WaitAsync(cancellationToken).ConfigureAwait(false);
        lock (_gate)
        {
            // The peer died before it had everything: the close was not graceful, say so.
            if (_ended is { } reason and not TunnelCloseReason.Closed and not TunnelCloseReason.ClosedByPeer)
            {
                throw new TunnelClosedException(Cluster, reason, _endedDetail);
            }
        }

        End(TunnelCloseReason.Closed, null, notifyPeer: false);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await CloseAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is TunnelClosedException or OrleansException or TimeoutException)
        {
            // Already closed, or its peer is gone: either way it is closed now.
        }
    }

    /// <summary>Frames arrived from process <paramref name="from"/> (called by this process's member host); frames of
    /// any process but the peer's are answered as for an abandoned tunnel.</summary>
    public TunnelStatus OnData(string from, TunnelFrame[] frames)
    {
        long grant = 0;
        var closedByPeer = false;
        TunnelClosedException? tooLarge = null;
        lock (_gate)
        {
            if (!string.Equals(_peerProcess, from, StringComparison.Ordinal))
            {
                return TunnelStatus.Abandoned;
            }

            if (_ended is { } ended)
            {
                return ended is TunnelCloseReason.Closed or TunnelCloseReason.ClosedByPeer ? TunnelStatus.Closed : TunnelStatus.Unknown;
            }

            foreach (var frame in frames)
            {
                if (frame.Sequence >= _nextReceive && _early.TryAdd(frame.Sequence, frame))
                {
                    _buffered += frame.Data.Length;
                }
            }

            while (_early.Remove(_nextReceive, out var frame))
            {
                _nextReceive++;
                switch (frame.Kind)
                {
                    case TunnelFrameKind.Chunk:
                        (_partial ??= []).Add(frame.Data);
                        _partialBytes += frame.Data.Length;
                        if (_partialBytes > _options.MaxMessageBytes)
                        {
                            tooLarge = new TunnelClosedException(Cluster, TunnelCloseReason.MessageTooLarge, $"more than {_options.MaxMessageBytes} bytes");
                        }
                        else if (_messages.Count == 0)
                        {
                            grant = Math.Max(grant, Release(frame.Data.Length));
                        }
                        else
                        {
                            _partialUngranted += frame.Data.Length;
                        }

                        break;
                    case TunnelFrameKind.Final:
                        var message = _partial is null ? frame.Data : Concatenate(_partial, frame.Data, _partialBytes);
                        if (message.Length > _options.MaxMessageBytes)
                        {
                            tooLarge = new TunnelClosedException(Cluster, TunnelCloseReason.MessageTooLarge, $"{message.Length} bytes, more than {_options.MaxMessageBytes}");
                            break;
                        }

                        _messages.Enqueue((message, _partialUngranted + frame.Data.Length));
                        _partial = null;
                        _partialBytes = 0;
                        _partialUngranted = 0;
                        WakeReceiver();
                        break;
                    case TunnelFrameKind.Abort:
                        _buffered -= _partialBytes;
                        grant = Math.Max(grant, Release(_partialUngranted));
                        _partial = null;
                        _partialBytes = 0;
                        _partialUngranted = 0;
                        break;
                    case TunnelFrameKind.Close:
                        closedByPeer = true;
                        break;
                }

                if (tooLarge is not null || closedByPeer)
                {
                    break;
                }
            }
        }

        if (tooLarge is not null)
        {
            End(TunnelCloseReason.MessageTooLarge, tooLarge.Detail, notifyPeer: true);
        }
        else if (closedByPeer)
        {
            End(TunnelCloseReason.ClosedByPeer, null, notifyPeer: false);
        }
        else if (grant > 0)
        {
            SendCredit(grant);
        }

        return TunnelStatus.Open;
    }

    /// <summary>The peer's application has consumed <paramref name="grantedTotal"/> bytes since the tunnel opened. A
    /// running total, not an increment: a credit call sent twice, or overtaken by a later one, grants nothing extra.
    /// False when <paramref name="from"/> is not the peer's process (nothing is granted).</summary>
    public bool OnCredit(string from, long grantedTotal)
    {
        lock (_gate)
        {
            if (!string.Equals(_peerProcess, from, StringComparison.Ordinal))
            {
                return false;
            }

            _grantedByPeer = Math.Max(_grantedByPeer, grantedTotal);
        }

        WakeSenders();
        return true;
    }

    /// <summary>
    /// Ends the tunnel here: waiting and later operations throw (receives first take what already arrived), the
    /// pump stops, the handler's token is cancelled, and this process forgets the tunnel. With
    /// <paramref name="notifyPeer"/> the peer is told why, and ends too.
    /// </summary>
    public void End(TunnelCloseReason reason, string? detail, bool notifyPeer) => _ = EndAsync(reason, detail, notifyPeer);

    /// <summary>Ends the tunnel as <see cref="End"/> does; the task completes when the peer has been told (or could
    /// not be). Never faults.</summary>
    public Task EndAsync(TunnelCloseReason reason, string? detail, bool notifyPeer)
    {
        lock (_gate)
        {
            if (_ended is not null)
            {
                return Task.CompletedTask;
            }

            _ended = reason;
            _endedDetail = detail;
            _early.Clear();
            _partial = null;
            _buffered = _messages.Sum(m => (long)m.Message.Length);
            WakeReceiver();
        }

        WakeSenders();
        _outgoing.Writer.TryComplete();
        _owner.Forget(this, reason);
        _set?.Remove(this);
        try
        {
            _closing.Cancel();
        }
        catch (AggregateException)
        {
            // A callback of the application's threw; the tunnel is closed regardless.
        }

        if (notifyPeer && Peer is { } peer)
        {
            var forPeer = reason == TunnelCloseReason.Closed ? TunnelCloseReason.ClosedByPeer : reason;
            return TellAsync(peer, host => host.TunnelFailed(_owner.SelfId, PeerId, forPeer, detail));
        }

        return Task.CompletedTask;
    }

    private async Task TellAsync(MemberEndpoint peer, Func<IMemberHost, Task> call)
    {
        try
        {
            await peer.Call(_grains, call).WaitAsync(_options.KeepAliveTimeout).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // The peer is gone or unreachable: its keep-alive finds out.
        }
    }

    private void ThrowIfEnded()
    {
        lock (_gate)
        {
            if (_ended is { } reason)
            {
                throw new TunnelClosedException(Cluster, reason, _endedDetail);
            }
        }

        if (_closeRequested)
        {
            throw new TunnelClosedException(Cluster, TunnelCloseReason.Closed);
        }
    }

    private async Task TakeCreditAsync(int size, CancellationToken cancellationToken)
    {
        var stalled = false;
        while (true)
        {
            Task waiter;
            lock (_gate)
            {
                if (_ended is { } reason)
                {
                    throw new TunnelClosedException(Cluster, reason, _endedDetail);
                }

                if (_peerWindow + _grantedByPeer - _spent >= size)
                {
                    _spent += size;
                    return;
                }

                // Closing: a send that would have to wait is not sent (one that has credit goes on, the close follows it).
                if (_closeRequested)
                {
                    throw new TunnelClosedException(Cluster, TunnelCloseReason.Closed);
                }

                waiter = (_creditWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
            }

            if (!stalled)
            {
                stalled = true;
                IrisMetrics.TunnelCreditStalls.Add(1);
            }

            await waiter.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private void Enqueue(TunnelFrameKind kind, byte[] data)
    {
        long sequence;
        lock (_gate)
        {
            sequence = _nextSend++;
        }

        _outgoing.Writer.TryWrite(new TunnelFrame(sequence, kind, data));
    }

    /// <summary>Carries queued frames to the peer, in batches, a few calls at a time.</summary>
    private async Task PumpAsync()
    {
        using var calls = new SemaphoreSlim(MaxCallsInFlight, MaxCallsInFlight);
        var reader = _outgoing.Reader;
        var peer = Peer!;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            var batch = new List<TunnelFrame>();
            var bytes = 0;
            while (batch.Count < MaxBatchFrames && bytes < MaxBatchBytes && reader.TryRead(out var frame))
            {
                batch.Add(frame);
                bytes += frame.Data.Length;
            }

            await calls.WaitAsync().ConfigureAwait(false);
            _ = SendBatchAsync(peer, [.. batch], calls);
        }

        for (var i = 0; i < MaxCallsInFlight; i++)
        {
            await calls.WaitAsync().ConfigureAwait(false);
        }
    }

    private async Task SendBatchAsync(MemberEndpoint peer, TunnelFrame[] batch, SemaphoreSlim calls)
    {
        try
        {
            await ToPeerAsync(peer, host => host.TunnelData(_owner.SelfId, PeerId, batch)).ConfigureAwait(false);
        }
        finally
        {
            calls.Release();
        }
    }

    /// <summary>Tells the peer the running total of bytes granted; not connected yet, <see cref="Connect"/> does.</summary>
    private void SendCredit(long grantedTotal)
    {
        if (Peer is { } peer)
        {
            _ = ToPeerAsync(peer, host => host.TunnelCredit(_owner.SelfId, PeerId, grantedTotal));
        }
    }

    /// <summary>
    /// Makes a data or credit call to the peer. A call that fails or does not answer within 8 s is made again, with
    /// growing pauses, for up to three keep-alive timeouts: a lost call (the client's gateway went away, a message
    /// dropped) costs a pause (the call policy's), not the tunnel; frames carry their numbers and credit its running total, so a repeat is
    /// harmless. Even "silo unavailable" is repeated: a client reports it for every call that was on its way through a
    /// gateway that died, whichever silo the call was for. The tunnel ends when the peer no longer has it, when the
    /// repeats run out, or when the keep-alive finds the peer gone.
    /// </summary>
    private async Task ToPeerAsync(MemberEndpoint peer, Func<IMemberHost, Task<TunnelStatus>> call)
    {
        var budget = _owner.Policy.Start(3 * _options.KeepAliveTimeout);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                // Unanswered calls time out after 8 s (the methods' response timeout), not Orleans' default 30 s.
                var status = await peer.Call(_grains, call).ConfigureAwait(false);
                if (status != TunnelStatus.Open)
                {
                    End(LocalTunnels.ReasonFor(status), null, notifyPeer: false);
                }

                return;
            }
            catch (Exception) when (!budget.IsExpired && !IsEnded)
            {
                await _owner.Policy.PauseAsync(attempt, budget, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                End(TunnelCloseReason.PeerDied, e.Message, notifyPeer: false);
                return;
            }
        }
    }

    /// <summary>Counts consumed bytes; once a quarter window has gathered, returns the new running total to grant the
    /// peer (0: nothing to send yet).</summary>
    private long Release(int bytes)
    {
        _toGrant += bytes;
        if (_toGrant < _grantThreshold)
        {
            return 0;
        }

        _granted += _toGrant;
        _toGrant = 0;
        return _granted;
    }

    private void WakeReceiver()
    {
        _receiveWaiter?.TrySetResult();
        _receiveWaiter = null;
    }

    private void WakeSenders()
    {
        TaskCompletionSource? waiter;
        lock (_gate)
        {
            waiter = _creditWaiter;
            _creditWaiter = null;
        }

        waiter?.TrySetResult();
    }

    /// <summary>The member end's id for tunnel <paramref name="tunnel"/>.</summary>
    public static Guid MemberSide(Guid tunnel)
    {
        Span<byte> bytes = stackalloc byte[16];
        tunnel.TryWriteBytes(bytes);
        bytes[15] ^= 0x01;
        return new Guid(bytes);
    }

    private static byte[] Concatenate(List<byte[]> chunks, byte[] last, long length)
    {
        var message = new byte[length + last.Length];
        var offset = 0;
        foreach (var chunk in chunks)
        {
            chunk.CopyTo(message, offset);
            offset += chunk.Length;
        }

        last.CopyTo(message, offset);
        return message;
    }
}
