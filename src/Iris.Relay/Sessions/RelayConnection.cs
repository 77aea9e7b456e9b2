using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Threading.Channels;
using Iris.Relay.Diagnostics;
using Iris.Relay.Protocol;

namespace Iris.Relay.Sessions;

/// <summary>
/// One client of the relay: the handshake, then its messages in the order read, until it closes, breaks the protocol,
/// falls too far behind, or the silo stops. Requests, tunnels and the member's work run concurrently; broadcasts,
/// publications and (un)subscriptions go to the network in the order the client sent them, one at a time, and the
/// reader waits while they hold more than half the connection's queue limit. A client that breaks the protocol is told
/// why in a Close and loses only its own connection.
/// </summary>
internal sealed class RelayConnection
{
    private readonly Socket _socket;
    private readonly RelayContext _context;
    private readonly RelayOutbox _outbox;
    private readonly ByteGate _sendBytes;
    private readonly ByteGate _requestBytes;
    private readonly Channel<(RelayFrame Frame, Task? Started)> _sends = Channel.CreateUnbounded<(RelayFrame, Task?)>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly CancellationTokenSource _ending = new();
    private readonly ConcurrentDictionary<ulong, byte> _requests = new();
    private readonly ConcurrentDictionary<ulong, RelayTunnel> _tunnels = new();
    private readonly ConcurrentDictionary<ulong, byte> _openingTunnels = new();
    private readonly ConcurrentDictionary<ulong, (ITunnel Tunnel, TaskCompletionSource<RelayTunnel> Confirmed)> _tunnelBuilds = new();
    private readonly Dictionary<string, Task<IAsyncDisposable>> _subscriptions = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private RelayMember? _member;
    private IAsyncDisposable? _registration;
    private Task? _shutdown;
    private Task? _sending;
    private Task _admission = Task.CompletedTask;
    private long _lastBuildId;
    private int _deferred;
    private volatile bool _accepting = true;

    public RelayConnection(Socket socket, RelayContext context)
    {
        _socket = socket;
        _context = context;
        _outbox = new RelayOutbox(context.Options.MaxQueuedBytes);
        _sendBytes = new ByteGate(context.Options.MaxQueuedBytes);
        _requestBytes = new ByteGate(context.Options.MaxQueuedBytes);
        Remote = socket.RemoteEndPoint?.ToString() ?? "?";
    }

    public string Remote { get; }

    private CancellationToken Ending => _ending.Token;

    /// <summary>Serves the connection until it is closed; never throws.</summary>
    public async Task RunAsync()
    {
        var stream = new NetworkStream(_socket, ownsSocket: true);
        var input = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 16 * 1024, leaveOpen: true));
        var output = PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: 64 * 1024, leaveOpen: true));
        Task? writing = null;
        Task? sending = null;
        try
        {
            var init = await ReadHandshakeAsync(input).ConfigureAwait(false);
            if (init is null)
            {
                return;
            }

            Task<string?> admission;
            lock (_sends)
            {
                // A shutdown that ran before the Init came would never remove a member registered after it.
                admission = _shutdown is null ? AdmitAsync(init.Value) : Task.FromResult<string?>("the Iris node is shutting down");
                _admission = admission;
            }

            if (await admission.ConfigureAwait(false) is { } denial)
            {
                RelayLog.Denied(_context.Logger, Remote, denial);
                RelayWriter.Write(output, RelayOut.Deny(denial));
                await output.FlushAsync(CancellationToken.None).ConfigureAwait(false);
                return;
            }

            RelayLog.Connected(_context.Logger, Remote, init.Value.Cluster);
            writing = WriteAsync(output);
            sending = _sending = SendAsync();
            await ReadAsync(input).ConfigureAwait(false);
            if (_shutdown is null)
            {
                // The client went without a Close: nothing can reach it any more.
                await ShutdownAsync("the connection was lost", reachable: false).ConfigureAwait(false);
            }
        }
        catch (RelayProtocolException e)
        {
            RelayLog.Violation(_context.Logger, Remote, e.Message);
            if (writing is null)
            {
                // Before the handshake was answered: the answer is a refusal.
                RelayWriter.Write(output, RelayOut.Deny(e.Message));
                await Quietly.Await(output.FlushAsync(CancellationToken.None)).ConfigureAwait(false);
            }
            else
            {
                await ShutdownAsync(e.Message, reachable: true).ConfigureAwait(false);
            }
        }
        catch (Exception e)
        {
            // The connection is gone (or something unforeseen broke it): it ends as a lost one.
            if (e is not (IOException or SocketException or ObjectDisposedException or OperationCanceledException))
            {
                RelayLog.Violation(_context.Logger, Remote, $"the connection failed: {e}");
            }

            await ShutdownAsync("the connection was lost", reachable: false).ConfigureAwait(false);
        }
        finally
        {
            try
            {
                // An ordered shutdown (a Close, a stop) finishes first: its Close is the last message out.
                if (_shutdown is not null)
                {
                    await _shutdown.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                }

                _sends.Writer.TryComplete();
                _outbox.Complete();
                if (writing is not null)
                {
                    // What the relay still had to say goes out first, within reason.
                    await writing.WaitAsync(LingerTime).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                }

                await _ending.CancelAsync().ConfigureAwait(false);
                if (sending is not null)
                {
                    await sending.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                }

                _socket.Dispose();
                if (writing is not null)
                {
                    await writing.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                }

                await Quietly.Await(input.CompleteAsync()).ConfigureAwait(false);
                await Quietly.Await(output.CompleteAsync()).ConfigureAwait(false);
                await Quietly.Await(stream.DisposeAsync()).ConfigureAwait(false);
            }
            finally
            {
                RelayLog.Disconnected(_context.Logger, Remote);
                _ended.TrySetResult();
            }
        }
    }

    /// <summary>Closes the connection because the silo stops: the member leaves first, serving what reaches it
    /// meanwhile, then the client gets a Close with the reason. Completes when the connection is gone.</summary>
    public async Task StopAsync(string reason)
    {
        await ShutdownAsync(reason, reachable: true).ConfigureAwait(false);
        await _ended.Task.ConfigureAwait(false);
    }

    /// <summary>Queues a message the network pushes at the client. A client that does not read loses its connection:
    /// false then. <paramref name="force"/> queues it whatever the queue holds (the few messages that end
    /// something).</summary>
    public bool Push(in RelayOut frame, bool force = false)
    {
        if (force ? _outbox.PostForced(frame) : _outbox.TryPost(frame))
        {
            return true;
        }

        if (_accepting)
        {
            _ = ShutdownAsync($"the client did not read its connection: more than {_outbox.Limit} bytes were waiting for it (Iris:Relay:MaxQueuedBytes)", reachable: true);
        }

        return false;
    }

    /// <summary>Queues a message once there is room; false if the connection is closing.</summary>
    public ValueTask<bool> PostAsync(RelayOut frame, CancellationToken cancellationToken) => _outbox.PostAsync(frame, cancellationToken);

    /// <summary>The client broke the protocol somewhere other than the reader: it is told why and disconnected.</summary>
    public void Violate(string reason)
    {
        RelayLog.Violation(_context.Logger, Remote, reason);
        _ = ShutdownAsync($"protocol violation: {reason}", reachable: true);
    }

    /// <summary>A tunnel that ended.</summary>
    public void Forget(RelayTunnel tunnel) => _tunnels.TryRemove(new KeyValuePair<ulong, RelayTunnel>(tunnel.Id, tunnel));

    /// <summary>An incoming tunnel for the member: announced to the client, which confirms it with its own id within
    /// the confirm timeout, or the tunnel is dropped.</summary>
    public async Task ServeTunnelAsync(ITunnel tunnel, CancellationToken cancellationToken)
    {
        var buildId = (ulong)Interlocked.Increment(ref _lastBuildId);
        var confirmed = new TaskCompletionSource<RelayTunnel>(TaskCreationOptions.RunContinuationsAsynchronously);
        _tunnelBuilds[buildId] = (tunnel, confirmed);
        RelayTunnel relayed;
        try
        {
            if (!_accepting || !Push(RelayOut.TunnelInit(buildId, RelayProtocol.ChunkLimit)))
            {
                // Before the first await: the opener hears that the tunnel was refused, and why.
                throw new InvalidOperationException("the relay member's connection is closing");
            }

            relayed = await confirmed.Task.WaitAsync(_context.Options.TunnelConfirmTimeout, Ending).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            if (confirmed.TrySetCanceled())
            {
                // Accepted already (the opener learnt so when this handler started): the opener hears its peer is gone.
                RelayLog.TunnelNotConfirmed(_context.Logger, Remote, _context.Options.TunnelConfirmTimeout);
                if (tunnel is Iris.Tunnels.TunnelEnd end)
                {
                    end.End(TunnelCloseReason.PeerDied, $"the relay member did not confirm the tunnel within {_context.Options.TunnelConfirmTimeout.TotalSeconds} s", notifyPeer: true);
                }

                return;
            }

            // Confirmed as the wait ended.
            relayed = await confirmed.Task.ConfigureAwait(false);
        }
        finally
        {
            _tunnelBuilds.TryRemove(buildId, out _);
        }

        await RunTunnelAsync(relayed).ConfigureAwait(false);
    }

    private async Task<RelayFrame?> ReadHandshakeAsync(PipeReader input)
    {
        using var timeout = new CancellationTokenSource(_context.Options.HandshakeTimeout);
        try
        {
            while (true)
            {
                var read = await input.ReadAsync(timeout.Token).ConfigureAwait(false);
                var buffer = read.Buffer;
                if (buffer.Length > 0 && buffer.FirstSpan[0] != (byte)RelayOpcode.Init)
                {
                    throw new RelayProtocolException($"the first message must be Init (0x00), not opcode 0x{buffer.FirstSpan[0]:x2}");
                }

                if (RelayReader.TryRead(ref buffer, _context.Limits, out var frame))
                {
                    input.AdvanceTo(buffer.Start);
                    return frame;
                }

                input.AdvanceTo(buffer.Start, buffer.End);
                if (read.IsCompleted)
                {
                    return null;
                }
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            throw new RelayProtocolException($"no complete Init within {_context.Options.HandshakeTimeout.TotalSeconds} s of connecting");
        }
    }

    /// <summary>Checks the client's Init and registers a member's cluster: null when admitted, else why not.</summary>
    private async Task<string?> AdmitAsync(RelayFrame init)
    {
        if (init.Name != RelayProtocol.ClientMagic)
        {
            return $"wrong magic: a client's Init starts with '{RelayProtocol.ClientMagic}'";
        }

        if (init.Text != RelayProtocol.Version)
        {
            return $"protocol version '{init.Text}' is not supported: this relay speaks {RelayProtocol.Version}";
        }

        if (init.Cluster.Length == 0)
        {
            return null;
        }

        var member = new RelayMember(this, init.Cluster);
        var limits = new MemberLimits { MaxConcurrentRequests = _context.Options.MemberConcurrency, MaxQueuedBytes = _context.Options.MaxQueuedBytes / 2 };
        try
        {
            // Answered only once the member can be reached from the whole network: a request sent right after the
            // handshake reaches it.
            // Not cancelled by the connection's end: a registration cancelled part-way could stay behind with no handle
            // to remove it. A shutdown meanwhile waits for it and then removes it.
            _registration = await _context.Iris.RegisterAsync(init.Cluster, member, new MemberOptions { Limits = limits }, CancellationToken.None).ConfigureAwait(false);
            _member = member;
            return null;
        }
        catch (Exception e)
        {
            return $"registration as a member of cluster '{init.Cluster}' failed: {e.Message}";
        }
    }

    private async Task WriteAsync(PipeWriter output)
    {
        try
        {
            // Not cancelled by the connection's end: the Close that ends it is written last.
            await _outbox.RunAsync(output, RelayOut.Accept(), CancellationToken.None).ConfigureAwait(false);
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
            // The connection is gone; the reader finds out too. A member that is leaving meanwhile can no longer reach
            // its client: what it holds fails now, and what comes goes to other members.
            _member?.Fail("the connection was lost");
            _ = ShutdownAsync("the connection was lost", reachable: false);
            _socket.Dispose();
        }
    }

    private async Task ReadAsync(PipeReader input)
    {
        while (true)
        {
            var read = await input.ReadAsync(CancellationToken.None).ConfigureAwait(false);
            var buffer = read.Buffer;
            try
            {
                while (RelayReader.TryRead(ref buffer, _context.Limits, out var frame))
                {
                    if (await DispatchAsync(frame).ConfigureAwait(false))
                    {
                        return;
                    }
                }
            }
            finally
            {
                input.AdvanceTo(buffer.Start, buffer.End);
            }

            if (read.IsCompleted || read.IsCanceled)
            {
                if (buffer.Length > 0 && _shutdown is null)
                {
                    throw new RelayProtocolException($"the connection ended inside a message ({buffer.Length} bytes of it)");
                }

                return;
            }
        }
    }

    /// <summary>Acts on one message; true when the reading is over.</summary>
    private async ValueTask<bool> DispatchAsync(RelayFrame frame)
    {
        switch (frame.Op)
        {
            case RelayOpcode.Init:
                throw new RelayProtocolException("Init sent twice");
            case RelayOpcode.Close:
                RelayLog.ClosedByClient(_context.Logger, Remote);
                _ = ShutdownAsync(string.Empty, reachable: true);
                return false;
            case RelayOpcode.Broadcast:
            case RelayOpcode.Publish:
            case RelayOpcode.Subscribe:
            case RelayOpcode.Unsubscribe:
                if (frame.Cluster.Length == 0)
                {
                    throw new RelayProtocolException($"{frame.Op} with an empty {(frame.Op == RelayOpcode.Broadcast ? "cluster" : "topic")} name");
                }

                if (_accepting)
                {
                    await _sendBytes.TakeAsync(frame.Data.Length, _sendBytes.Limit / 2, Ending).ConfigureAwait(false);
                    _sends.Writer.TryWrite((frame, StartSend(frame)));
                }

                return false;
            case RelayOpcode.Request:
                await StartRequestAsync(frame).ConfigureAwait(false);
                return false;
            case RelayOpcode.Reply:
                (_member ?? throw new RelayProtocolException("Reply from a client that is not a member")).Complete(frame);
                return false;
            case RelayOpcode.TunnelInit:
                StartTunnel(frame);
                return false;
            case RelayOpcode.TunnelConfirm:
                if (_tunnelBuilds.TryRemove(frame.Id, out var build))
                {
                    // Known before the next message is read: the client's allowance for it follows at once.
                    var confirmed = new RelayTunnel(this, frame.Value, build.Tunnel, _context.Options.TunnelBufferBytes, _context.TunnelMessageBytes);
                    if (_openingTunnels.ContainsKey(frame.Value) || !_tunnels.TryAdd(frame.Value, confirmed))
                    {
                        throw new RelayProtocolException($"tunnel id {frame.Value} was confirmed while a tunnel with that id is open");
                    }

                    if (!build.Confirmed.TrySetResult(confirmed))
                    {
                        _tunnels.TryRemove(frame.Value, out _);
                        LateConfirm(frame.Value);
                    }
                }
                else
                {
                    LateConfirm(frame.Value);
                }

                return false;
            case RelayOpcode.TunnelAllowance:
                if (_tunnels.TryGetValue(frame.Id, out var granted))
                {
                    granted.Grant(frame.Value);
                }

                return false;
            case RelayOpcode.TunnelTransfer:
                if (_tunnels.TryGetValue(frame.Id, out var tunnel))
                {
                    tunnel.Receive(frame);
                }

                return false;
            case RelayOpcode.TunnelClose:
                if (_tunnels.TryGetValue(frame.Id, out var closing))
                {
                    closing.CloseByClient();
                }

                return false;
            default:
                throw new RelayProtocolException($"opcode 0x{(byte)frame.Op:x2} is not one a client sends");
        }
    }

    private async ValueTask StartRequestAsync(RelayFrame frame)
    {
        if (!_accepting)
        {
            _outbox.TryPost(RelayOut.Faulted(frame.Id, "the relay connection is closing"));
            return;
        }

        if (frame.Cluster.Length == 0)
        {
            throw new RelayProtocolException("Request with an empty cluster name");
        }

        if (_requests.Count >= _context.Options.MaxPendingRequests)
        {
            throw new RelayProtocolException($"more than {_context.Options.MaxPendingRequests} requests in flight (Iris:Relay:MaxPendingRequests)");
        }

        if (!_requests.TryAdd(frame.Id, 0))
        {
            throw new RelayProtocolException($"request id {frame.Id} is already in flight");
        }

        // The bytes of requests in flight count against the connection's limit. Past it the request is refused, not
        // waited for: the reader must go on reading the replies and allowances that free the room.
        if (!_requestBytes.TryTake(frame.Data.Length))
        {
            _requests.TryRemove(frame.Id, out _);
            _outbox.TryPost(RelayOut.Faulted(frame.Id, $"overloaded: this connection already has {_requestBytes.Used} bytes of requests in flight (Iris:Relay:MaxQueuedBytes); retry when some have been answered"));
            return;
        }

        _ = ForwardRequestAsync(frame);
    }

    private async Task ForwardRequestAsync(RelayFrame frame)
    {
        RelayOut answer;
        var started = Stopwatch.GetTimestamp();
        var timeout = TimeSpan.FromMilliseconds(frame.Value);
        try
        {
            var reply = frame.Value == 0 ? null : await _context.Iris.RequestAsync(frame.Cluster, frame.Data, timeout, Ending).ConfigureAwait(false);

            // A reply that came after the caller's time (its timer had not fired yet on a busy machine) is late: the
            // client hears that the request timed out, as its timeout promised.
            answer = reply is null || Stopwatch.GetElapsedTime(started) >= timeout ? RelayOut.ReplyTimedOut(frame.Id) : RelayOut.Replied(frame.Id, reply);
        }
        catch (IrisTimeoutException)
        {
            answer = RelayOut.ReplyTimedOut(frame.Id);
        }
        catch (RemoteException e)
        {
            answer = RelayOut.Faulted(frame.Id, e.RemoteMessage);
        }
        catch (OperationCanceledException) when (Ending.IsCancellationRequested)
        {
            return;
        }
        catch (Exception e)
        {
            // No members (the message names the cluster), overloaded, outcome unknown: a fault that says so.
            answer = RelayOut.Faulted(frame.Id, e.Message);
        }
        finally
        {
            // Before the answer goes: a client may reuse the id as soon as it has it.
            _requests.TryRemove(frame.Id, out _);
            _requestBytes.Return(frame.Data.Length);
        }

        await Quietly.Await(_outbox.PostAsync(answer, Ending)).ConfigureAwait(false);
    }

    private void StartTunnel(RelayFrame frame)
    {
        if (!_accepting)
        {
            _outbox.TryPost(RelayOut.TunnelTimedOut(frame.Id));
            return;
        }

        if (_tunnels.Count + _openingTunnels.Count >= _context.Options.MaxTunnels)
        {
            throw new RelayProtocolException($"more than {_context.Options.MaxTunnels} tunnels open (Iris:Relay:MaxTunnels)");
        }

        if (frame.Cluster.Length == 0)
        {
            throw new RelayProtocolException("TunnelInit with an empty cluster name");
        }

        if (_tunnels.ContainsKey(frame.Id) || !_openingTunnels.TryAdd(frame.Id, 0))
        {
            throw new RelayProtocolException($"tunnel id {frame.Id} is already in use");
        }

        _ = OpenTunnelAsync(frame);
    }

    private async Task OpenTunnelAsync(RelayFrame frame)
    {
        ITunnel tunnel;
        try
        {
            if (frame.Value == 0)
            {
                throw new IrisTimeoutException(frame.Cluster, TimeSpan.Zero);
            }

            tunnel = await _context.Iris.OpenTunnelAsync(frame.Cluster, TimeSpan.FromMilliseconds(frame.Value), Ending).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // v1 has one failure: timed out (no members, no answer in time, or refused).
            RelayLog.TunnelNotOpened(_context.Logger, Remote, frame.Cluster, e.Message);
            _openingTunnels.TryRemove(frame.Id, out _);
            await Quietly.Await(_outbox.PostAsync(RelayOut.TunnelTimedOut(frame.Id), Ending)).ConfigureAwait(false);
            return;
        }

        var relayed = new RelayTunnel(this, frame.Id, tunnel, _context.Options.TunnelBufferBytes, _context.TunnelMessageBytes);
        _tunnels[frame.Id] = relayed;
        _openingTunnels.TryRemove(frame.Id, out _);
        if (!_accepting || !await Quietly.Await(_outbox.PostAsync(RelayOut.TunnelOpened(frame.Id, RelayProtocol.ChunkLimit), Ending)).ConfigureAwait(false))
        {
            _tunnels.TryRemove(frame.Id, out _);
            await Quietly.Await(tunnel.DisposeAsync()).ConfigureAwait(false);
            return;
        }

        await RunTunnelAsync(relayed).ConfigureAwait(false);
    }

    private async Task RunTunnelAsync(RelayTunnel tunnel)
    {
        // A tunnel that became known after the connection started closing is closed here, not left running.
        if (!_accepting)
        {
            tunnel.Abort("the relay connection is closing");
        }

        await tunnel.RunAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Starts a broadcast or publication here, on the reader's turn, when no (un)subscription is waiting before it: the
    /// hand-over queues it in order at once, and the pump only waits for its acceptance; one thread hop less between
    /// the client and the network. Behind an (un)subscription it waits its turn in the pump, so that a client that
    /// subscribes and then publishes is subscribed first. Null when the pump is to do it.
    /// </summary>
    private Task? StartSend(in RelayFrame frame)
    {
        if (frame.Op is RelayOpcode.Broadcast or RelayOpcode.Publish && Volatile.Read(ref _deferred) == 0)
        {
            return Send(frame);
        }

        // Behind something the pump has not started yet: it goes in its turn.
        Interlocked.Increment(ref _deferred);
        return null;
    }

    private Task Send(in RelayFrame frame) => frame.Op == RelayOpcode.Broadcast
        ? _context.Iris.BroadcastAsync(frame.Cluster, frame.Data, Ending)
        : _context.Iris.PublishAsync(frame.Cluster, frame.Data, Ending);

    /// <summary>Broadcasts, publications and (un)subscriptions, in the client's order.</summary>
    private async Task SendAsync()
    {
        await foreach (var (frame, startedByReader) in _sends.Reader.ReadAllAsync(Ending).ConfigureAwait(false))
        {
            var started = startedByReader;
            try
            {
                switch (frame.Op)
                {
                    case RelayOpcode.Broadcast:
                    case RelayOpcode.Publish:
                        var sending = started;
                        if (sending is null)
                        {
                            // Queued in order now: what the reader starts after this goes behind it.
                            sending = Send(frame);
                            Interlocked.Decrement(ref _deferred);
                            started = sending;
                        }

                        await sending.ConfigureAwait(false);
                        break;
                    case RelayOpcode.Subscribe:
                        if (!_subscriptions.TryGetValue(frame.Cluster, out var earlier) || earlier.IsFaulted || earlier.IsCanceled)
                        {
                            // The subscriber takes this silo's publications from the call on, so what the client
                            // publishes next reaches it at once; the network's once the subscription is registered,
                            // which the pump does not wait for. An Unsubscribe waits for it.
                            var subscribing = _context.Iris.SubscribeAsync(frame.Cluster, new RelaySubscriber(this, frame.Cluster), Ending);
                            _subscriptions[frame.Cluster] = subscribing;
                            _ = ReportAsync(subscribing, frame.Cluster);
                        }

                        break;
                    case RelayOpcode.Unsubscribe:
                        if (_subscriptions.Remove(frame.Cluster, out var subscription)
                            && await Quietly.Await(new ValueTask<IAsyncDisposable>(subscription)).ConfigureAwait(false) is { } registered)
                        {
                            await registered.DisposeAsync().ConfigureAwait(false);
                        }

                        break;
                }
            }
            catch (Exception e) when (!Ending.IsCancellationRequested)
            {
                // Best effort, as the protocol has no answer to these: logged, and the connection goes on.
                RelayLog.SendFailed(_context.Logger, Remote, frame.Op.ToString(), frame.Cluster, e.Message);
            }
            finally
            {
                if (started is null)
                {
                    // An (un)subscription done, or a send that failed to start.
                    Interlocked.Decrement(ref _deferred);
                }

                _sendBytes.Return(frame.Data.Length);
            }
        }
    }

    /// <summary>Logs a subscription that failed to register (the protocol has no answer to a Subscribe).</summary>
    private async Task ReportAsync(Task<IAsyncDisposable> subscribing, string topic)
    {
        try
        {
            await subscribing.ConfigureAwait(false);
        }
        catch (Exception e) when (!Ending.IsCancellationRequested)
        {
            RelayLog.SendFailed(_context.Logger, Remote, nameof(RelayOpcode.Subscribe), topic, e.Message);
        }
        catch (Exception)
        {
            // The connection is ending: its subscriptions go with it.
        }
    }

    /// <summary>How long a closing connection's last messages may take to go out.</summary>
    private static readonly TimeSpan LingerTime = TimeSpan.FromSeconds(5);

    private async Task CloseSocketAfterAsync(TimeSpan delay)
    {
        await Task.Delay(delay).ConfigureAwait(false);
        _socket.Dispose();
    }

    /// <summary>A confirm for an incoming tunnel that was dropped already (not confirmed in time): the client hears it
    /// is closed, unless the id names a tunnel it has open.</summary>
    private void LateConfirm(ulong id)
    {
        if (!_tunnels.ContainsKey(id))
        {
            Push(RelayOut.TunnelClose(id, $"the tunnel was not confirmed within {_context.Options.TunnelConfirmTimeout.TotalSeconds} s"), force: true);
        }
    }

    private Task ShutdownAsync(string reason, bool reachable)
    {
        lock (_sends)
        {
            return _shutdown ??= RunShutdownAsync(reason, reachable);
        }
    }

    /// <summary>
    /// Ends the connection once. A member leaves first: while it leaves it still serves what reaches it, so its
    /// client's replies are still read; a client that cannot be reached fails what it holds at once, and what had not
    /// reached it goes to other members. Then subscriptions end, tunnels close, the client's own requests are dropped,
    /// and a client that can still be reached gets a Close with the reason (empty when it asked to close).
    /// </summary>
    private async Task RunShutdownAsync(string reason, bool reachable)
    {
        await Task.Yield();
        _accepting = false;

        // Broadcasts and publications the client sent before it closed still go: a client that broadcasts and closes
        // at once loses nothing.
        _sends.Writer.TryComplete();
        await _admission.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        var why = reason.Length == 0 ? "the client closed its connection" : reason;
        if (!reachable)
        {
            _member?.Fail(why);
        }

        if (_registration is not null)
        {
            try
            {
                await _registration.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                RelayLog.LeaveFailed(_context.Logger, Remote, _member?.Cluster ?? string.Empty, e.Message);
            }
        }

        _member?.Fail(why);
        if (_sending is not null)
        {
            await _sending.WaitAsync(LingerTime).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        await _ending.CancelAsync().ConfigureAwait(false);
        if (_sending is not null)
        {
            await _sending.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        foreach (var subscription in _subscriptions.Values)
        {
            if (await Quietly.Await(new ValueTask<IAsyncDisposable>(subscription)).ConfigureAwait(false) is { } registered)
            {
                await Quietly.Await(registered.DisposeAsync()).ConfigureAwait(false);
            }
        }

        foreach (var tunnel in _tunnels.Values)
        {
            tunnel.Abort(why);
        }

        if (reachable)
        {
            _outbox.PostLast(RelayOut.Close(reason));
        }
        else
        {
            _outbox.Complete();
        }

        // A client that does not read would keep its connection (and the Close waiting behind what it does not read)
        // forever: past the linger time the socket closes whatever is still queued.
        _ = CloseSocketAfterAsync(LingerTime);
    }
}
