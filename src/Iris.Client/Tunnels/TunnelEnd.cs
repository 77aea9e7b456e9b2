using System.Runtime.CompilerServices;
using Iris.Calls;
using Iris.Diagnostics;
using Iris.Protocol;
using Iris.Requests;

namespace Iris.Tunnels;

/// <summary>
/// One end of a tunnel, in the process of the opener or of the member: the <see cref="ITunnel"/> the application
/// holds, in front of a <see cref="TunnelSender"/> and a <see cref="TunnelReceiver"/> (which make no calls), plus the
/// calls between the ends: a pump carries queued frames to the peer in batches, several calls in flight (Orleans
/// does not keep calls in order, the numbers do), grants go back as the application takes messages, and ending tells
/// the peer why.
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
    private readonly TunnelSender _sender;
    private readonly TunnelReceiver _receiver;
    private Task _pump = Task.CompletedTask;

    // What the peer is told (or was) of this end's ending; under _gate.
    private TunnelCloseReason? _peerReason;
    private TunnelEnding _ended;
    private TunnelSet? _set;

    public TunnelEnd(LocalTunnels owner, IGrainFactory grains, TunnelOptions options, string cluster, Guid tunnel, bool opener)
    {
        _owner = owner;
        _grains = grains;
        _options = options;
        Cluster = cluster;
        Id = opener ? tunnel : MemberSide(tunnel);
        PeerId = opener ? MemberSide(tunnel) : tunnel;
        _sender = new TunnelSender(cluster, options.MaxMessageBytes);
        _receiver = new TunnelReceiver(cluster, options.WindowBytes, options.MaxMessageBytes);
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
    public string? PeerProcess => _receiver.From;

    /// <summary>Cancelled when the tunnel closes, for whatever reason.</summary>
    public CancellationToken Closing => _closing.Token;

    /// <summary>Bytes waiting here to be taken by the application: out-of-order frames, a message being reassembled,
    /// whole messages.</summary>
    public long BufferedBytes => _receiver.BufferedBytes;

    public bool IsEnded
    {
        get
        {
            lock (_gate)
            {
                return _ended.Reason is not null;
            }
        }
    }

    /// <summary>
    /// An opener is about to offer the tunnel to the member process <paramref name="process"/>: frames from it are
    /// taken from now on. Asking another process than before starts receiving afresh: nothing of the earlier one
    /// reached the application (the open has not returned), and its end is answered as abandoned.
    /// </summary>
    public void Expect(string process) => _receiver.TakeFrom(process);

    /// <summary>Connects the end to its peer, which accepts <paramref name="peerWindow"/> bytes ahead; starts sending.</summary>
    public void Connect(MemberEndpoint peer, int peerWindow, TunnelSet? set = null)
    {
        lock (_gate)
        {
            Peer = peer;
            _set = set;
        }

        _receiver.TakeFrom(peer.Id);
        _sender.Open(peerWindow);
        set?.Add(this);

        // For the tunnel's whole life: under no span, not the opener's or the acceptance's, which end long before.
        _pump = IrisTracing.RunDetached(PumpAsync);
        if (_receiver.Granted is var early and > 0)
        {
            // The member's first messages came before its address did: grant what the application took of them.
            SendCredit(early);
        }
    }

    public ValueTask SendAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken = default) =>
        _sender.SendAsync(message, cancellationToken);

    public async ValueTask<byte[]> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var (message, grant, arrival) = _receiver.Take();
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

            try
            {
                await arrival.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested && !_receiver.IsEmptyAndOpen)
            {
                // Cancellation ends a wait, never what has arrived: a member's handler reads with the token that a
                // graceful close cancels, and the close comes in the same batch as the opener's last messages. Those
                // are taken first, then the stream ends with the close.
            }
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
            if (_ended.Reason is not null)
            {
                return;
            }
        }

        // A send waiting for credit is not sent yet: it ends (and drops what it queued of its message) so that the
        // close follows everything sent before it.
        if (!await _sender.CloseAsync(cancellationToken).ConfigureAwait(false))
        {
            return;
        }

        await _pump.WaitAsync(cancellationToken).ConfigureAwait(false);
        lock (_gate)
        {
            // The peer died before it had everything: the close was not graceful, say so.
            if (_ended.Reason is not null and not TunnelCloseReason.Closed and not TunnelCloseReason.ClosedByPeer)
            {
                _ended.ThrowIfEnded(Cluster);
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
        if (!string.Equals(_receiver.From, from, StringComparison.Ordinal))
        {
            return TunnelStatus.Abandoned;
        }

        var accepted = _receiver.Accept(from, frames);
        if (!accepted.Taken)
        {
            lock (_gate)
            {
                return _ended.Reason is null ? TunnelStatus.Abandoned
                    : _peerReason is TunnelCloseReason.PeerStopped ? TunnelStatus.Stopped
                    : _ended.Reason is TunnelCloseReason.Closed or TunnelCloseReason.ClosedByPeer ? TunnelStatus.Closed
                    : TunnelStatus.Unknown;
            }
        }

        if (accepted.TooLarge is { } tooLarge)
        {
            End(TunnelCloseReason.MessageTooLarge, tooLarge, notifyPeer: true);
        }
        else if (accepted.ClosedBy)
        {
            End(TunnelCloseReason.ClosedByPeer, null, notifyPeer: false);
        }
        else if (accepted.Grant > 0)
        {
            SendCredit(accepted.Grant);
        }

        return TunnelStatus.Open;
    }

    /// <summary>The peer's application has consumed <paramref name="grantedTotal"/> bytes since the tunnel opened (a
    /// running total). False when <paramref name="from"/> is not the peer's process (nothing is granted).</summary>
    public bool OnCredit(string from, long grantedTotal)
    {
        if (!string.Equals(_receiver.From, from, StringComparison.Ordinal))
        {
            return false;
        }

        _sender.OnCredit(grantedTotal);
        return true;
    }

    /// <summary>
    /// Ends the tunnel here: waiting and later operations throw (receives first take what already arrived), the
    /// pump stops, the handler's token is cancelled, and this process forgets the tunnel. With
    /// <paramref name="notifyPeer"/> the peer is told why, and ends too.
    /// </summary>
    public void End(TunnelCloseReason reason, string? detail, bool notifyPeer) => _ = EndAsync(reason, detail, notifyPeer);

    /// <summary>Ends the tunnel as <see cref="End"/> does; the task completes when the peer has been told (or could
    /// not be). The peer is told <paramref name="forPeer"/> when given (a stopping process ends its own side as closed
    /// and tells the peer it stopped), else what <paramref name="reason"/> means from its side. Never faults.</summary>
    public Task EndAsync(TunnelCloseReason reason, string? detail, bool notifyPeer, TunnelCloseReason? forPeer = null)
    {
        var peerReason = forPeer ?? (reason == TunnelCloseReason.Closed ? TunnelCloseReason.ClosedByPeer : reason);
        lock (_gate)
        {
            if (!_ended.TrySet(reason, detail))
            {
                return Task.CompletedTask;
            }

            _peerReason = peerReason;
        }

        _receiver.End(reason, detail);
        _sender.End(reason, detail);
        _owner.Forget(this, peerReason);
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
            return TellAsync(peer, host => host.TunnelFailed(_owner.SelfId, PeerId, peerReason, forPeer is null ? detail : null));
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

    /// <summary>Carries queued frames to the peer, in batches, a few calls at a time.</summary>
    private async Task PumpAsync()
    {
        using var calls = new SemaphoreSlim(MaxCallsInFlight, MaxCallsInFlight);
        var reader = _sender.Frames;
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
            await ToPeerAsync(
                peer,
                host => host.TunnelData(_owner.SelfId, PeerId, batch),
                (service, silo) => service.TunnelData(silo, _owner.SelfId, PeerId, batch)).ConfigureAwait(false);
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
            _ = ToPeerAsync(
                peer,
                host => host.TunnelCredit(_owner.SelfId, PeerId, grantedTotal),
                (service, silo) => service.TunnelCredit(silo, _owner.SelfId, PeerId, grantedTotal));
        }
    }

    /// <summary>
    /// Makes a data or credit call to the peer. A call that fails or does not answer within 8 s is made again, with
    /// growing pauses, for up to three keep-alive timeouts: a lost call (the client's gateway went away, a message
    /// dropped) costs a pause (the call policy's), not the tunnel; frames carry their numbers and credit its running
    /// total, so a repeat is harmless. A call still unanswered after a second is followed by a copy
    /// (<see cref="CallPolicy.HedgedAsync{T}(Task{T}, Func{Task{T}}, HedgeWhile)"/>): a silo that dies with a call on its way through it fails nothing, and
    /// the peer answers these calls at once. Even "silo unavailable" is repeated: a client reports it for every call
    /// that was on its way through a gateway that died, whichever silo the call was for. The tunnel ends when the peer no longer has it, when the
    /// repeats run out on a failure that may be the peer's (<see cref="LocalTunnels.MayBlame"/>: one at another silo on
    /// the way renews them), or when the keep-alive finds the peer gone.
    /// </summary>
    private async Task ToPeerAsync(MemberEndpoint peer, Func<IMemberHost, Task<TunnelStatus>> call, Func<IMemberHostService, SiloAddress, Task<TunnelStatus>> direct)
    {
        var budget = _owner.Policy.Start(3 * _options.KeepAliveTimeout);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                // Unanswered calls time out after 8 s (the methods' response timeout), not Orleans' default 30 s.
                var status = await _owner.Policy.HedgedAsync(CallPeer(peer, call, direct), () => CallPeer(peer, call, direct), new HedgeWhile(budget, default, default))
                    .ConfigureAwait(false);
                if (status != TunnelStatus.Open)
                {
                    End(LocalTunnels.ReasonFor(status), null, notifyPeer: false);
                }

                return;
            }
            catch (Exception e) when (!IsEnded && (!budget.IsExpired || !LocalTunnels.MayBlame(e, peer)))
            {
                if (budget.IsExpired)
                {
                    // The call failed at another silo on its way (one that died holding the peer's directory entry, until
                    // the cluster declares it dead): that says nothing of the peer, whose death the keep-alive decides.
                    budget = _owner.Policy.Start(3 * _options.KeepAliveTimeout);
                }

                await _owner.Policy.PauseAsync(attempt, budget, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                End(TunnelCloseReason.PeerDied, e.Message, notifyPeer: false);
                return;
            }
        }
    }

    /// <summary>
    /// A data or credit call to the peer: from an Orleans client to a silo's member, in one hop to the member's silo when
    /// <see cref="DirectRoutes"/> has a route there (as requests go), else through the member host grain, which Orleans
    /// sends through whichever gateway it picks, forwarded from there to the member's silo. A one-hop call refused on the
    /// way or cut off passes that gateway over, so its repeats go through the grain. Either route is safe to mix and
    /// repeat: frames carry their numbers and credit its running total.
    /// </summary>
    private Task<TunnelStatus> CallPeer(MemberEndpoint peer, Func<IMemberHost, Task<TunnelStatus>> call, Func<IMemberHostService, SiloAddress, Task<TunnelStatus>> direct) =>
        _owner.Direct?.To(peer) is { } service ? OneHopAsync(peer, service, direct) : peer.Call(_grains, call);

    private async Task<TunnelStatus> OneHopAsync(MemberEndpoint peer, IMemberHostService service, Func<IMemberHostService, SiloAddress, Task<TunnelStatus>> direct)
    {
        try
        {
            return await direct(service, peer.Silo!).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            _owner.Direct!.Failed(peer, e);
            throw;
        }
    }

    /// <summary>The member end's id for tunnel <paramref name="tunnel"/>.</summary>
    public static Guid MemberSide(Guid tunnel)
    {
        Span<byte> bytes = stackalloc byte[16];
        tunnel.TryWriteBytes(bytes);
        bytes[15] ^= 0x01;
        return new Guid(bytes);
    }
}
