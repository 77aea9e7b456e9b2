using System.Buffers.Binary;
using System.Security.Cryptography;
using Iris.Overlay.Kernel;
using Iris.Overlay.Timing;
using Iris.Overlay.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Iris.Overlay.Pastry;

/// <summary>
/// One node of the Pastry ring: its leaf set and routing table, routing of messages toward the root of a key, the
/// join protocol, failure detection by heartbeats and hop acknowledgements, and repair.
/// </summary>
/// <remarks>
/// All state sits behind one lock and every handler runs to completion without waiting, so the node is driven
/// entirely by the messages its transport delivers and by one deadline on its <see cref="TimerQueue"/>.
/// With the in-memory network and a fake time provider, a ring of thousands of nodes runs deterministically in one
/// thread. Knowledge of other nodes is only trusted first hand: a node is added to the tables when a message comes
/// from it; nodes heard of second hand are probed first, so stale tables never bring a dead node back.
/// </remarks>
internal sealed partial class PastryNode : IOverlayReceiver, IDisposable
{
    private readonly Lock _lock = new();
    private readonly IOverlayTransport _transport;
    private readonly TimerQueue _timers;
    private readonly PastryOptions _options;
    private readonly Random _random;
    private readonly ILogger _logger;
    private readonly long _heartbeatMs;
    private readonly long _ackTimeoutMs;
    private readonly long _ackCheckMs;
    private readonly LeafSet _leafSet;
    private readonly RoutingTable _table;
    private readonly Dictionary<NodeKey, Peer> _peers = [];
    private readonly Dictionary<NodeKey, Grave> _graveyard = [];
    private readonly Queue<NodeKey> _graveRotation = new();
    private readonly Dictionary<NodeKey, long> _probes = [];
    private readonly Dictionary<ulong, PendingHop> _pending = [];
    private readonly Dictionary<ushort, IRouteHandler> _handlers = [];
    private readonly List<NodeHandle> _joinCandidates = [];
    private readonly List<NodeHandle> _evicted = [];
    private readonly RecentSet<(NodeKey, ulong)> _recentHops = new(4096);
    private readonly Dictionary<NodeKey, (long SentMs, int Tries)> _tableChecks = [];
    private int _tableCheckCursor;
    private uint _leafVersionSeen = 1;
    private TimerQueue.Entry? _wake;
    private long _armedMs = long.MaxValue;
    private long _nextTickMs = long.MaxValue;
    private long _nextAckCheckMs = long.MaxValue;
    private ulong _hopSequence;
    private NodeState _state;
    private NodeAddress[] _bootstraps = [];
    private int _bootstrapIndex;
    private NodeAddress _bootstrap;
    private long _joinDeadlineMs;

    public PastryNode(NodeKey key, IOverlayTransport transport, TimerQueue timers, PastryOptions options, Random random, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(transport);
        ArgumentNullException.ThrowIfNull(timers);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(random);
        var validation = new PastryOptionsValidator().Validate(null, options);
        if (validation.Failed)
        {
            throw new ArgumentException(validation.FailureMessage, nameof(options));
        }

        Self = new NodeHandle(key, transport.LocalAddress);
        _transport = transport;
        _timers = timers;
        _options = options;
        _random = random;
        _logger = logger ?? NullLogger.Instance;
        _heartbeatMs = Math.Max(1, (long)options.HeartbeatInterval.TotalMilliseconds);
        _ackTimeoutMs = Math.Max(1, (long)options.HopAckTimeout.TotalMilliseconds);
        _ackCheckMs = Math.Max(1, _ackTimeoutMs / 4);
        _leafSet = new LeafSet(key, options.LeafSetSize);
        _table = new RoutingTable(key);

        // Receivers spot retransmitted hops by (sender key, hop id). A node restarted with the same key must not
        // reuse the ids of its previous run, or its first messages would be taken for duplicates and discarded: each
        // run starts its sequence at a random point of a 2^63 space, drawn from the system's generator so that it
        // differs between runs even where the node's Random is seeded (simulations, tests).
        _hopSequence = BinaryPrimitives.ReadUInt64LittleEndian(RandomNumberGenerator.GetBytes(8)) >> 1;
        transport.SetReceiver(this);
    }

    private enum NodeState
    {
        Created,
        Joining,
        Ready,
        Stopped,
    }

    /// <summary>This node's key and address.</summary>
    public NodeHandle Self { get; }

    /// <summary>How long this node remembers a node it declared dead (<see cref="PastryOptions.DeadNodeRetention"/>).</summary>
    internal TimeSpan DeadNodeRetention => _options.DeadNodeRetention;

    /// <summary>Whether the node has joined a ring (or started one) and not stopped.</summary>
    public bool IsReady
    {
        get { lock (_lock) { return _state == NodeState.Ready; } }
    }

    /// <summary>Whether the node has left, crashed or been disposed.</summary>
    public bool IsStopped
    {
        get { lock (_lock) { return _state == NodeState.Stopped; } }
    }

    /// <summary>Registers the handler of routed messages on <paramref name="channel"/>.</summary>
    public void RegisterHandler(ushort channel, IRouteHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        lock (_lock)
        {
            if (!_handlers.TryAdd(channel, handler))
            {
                throw new InvalidOperationException($"Channel {channel} already has a route handler on node {Self}.");
            }
        }
    }

    /// <summary>Starts a new ring with this node alone in it.</summary>
    public void Start()
    {
        lock (_lock)
        {
            EnsureState(NodeState.Created);
            _state = NodeState.Ready;
            StartTimer();
            Log.StartedRing(_logger, Self);
        }
    }

    /// <summary>Joins the ring that the node at <paramref name="bootstrap"/> belongs to. The node becomes ready when
    /// the root of its key answers; the join is retried every <see cref="PastryOptions.JoinTimeout"/> until then.</summary>
    public void Join(NodeAddress bootstrap) => Join([bootstrap]);

    /// <summary>Joins through the first of <paramref name="bootstraps"/>, moving to the next one on each retry.</summary>
    public void Join(IReadOnlyList<NodeAddress> bootstraps)
    {
        ArgumentNullException.ThrowIfNull(bootstraps);
        if (bootstraps.Count == 0)
        {
            throw new ArgumentException("Joining needs at least one node address to join through.", nameof(bootstraps));
        }

        lock (_lock)
        {
            EnsureState(NodeState.Created);
            _state = NodeState.Joining;
            _bootstraps = [.. bootstraps];
            _bootstrap = _bootstraps[0];
            StartTimer();
            Log.Joining(_logger, Self, _bootstrap);
            SendJoin();
            Rearm();
        }
    }

    /// <summary>
    /// Replaces the addresses a joining node tries (each retry moves to the next): a host that hears of other nodes
    /// while joining, or finds the one it tried dead, falls back to them. Ignored once the node is in a ring.
    /// </summary>
    public void SetJoinCandidates(IReadOnlyList<NodeAddress> bootstraps)
    {
        ArgumentNullException.ThrowIfNull(bootstraps);
        lock (_lock)
        {
            if (_state != NodeState.Joining || bootstraps.Count == 0)
            {
                return;
            }

            _bootstraps = [.. bootstraps];
            _bootstrapIndex = Math.Max(0, Array.IndexOf(_bootstraps, _bootstrap));
        }
    }

    /// <summary>
    /// Gives up joining and starts a new ring instead: for a host whose every way into a ring stopped answering and
    /// who would have started one had it not heard of them. Rings that formed apart merge when they hear each other.
    /// Returns false if the node is no longer joining.
    /// </summary>
    public bool StartInsteadOfJoining()
    {
        lock (_lock)
        {
            if (_state != NodeState.Joining)
            {
                return false;
            }

            _state = NodeState.Ready;
            _joinCandidates.Clear();
            Log.StartedRing(_logger, Self);
            Rearm();
            return true;
        }
    }

    /// <summary>Routes <paramref name="payload"/> to the root of <paramref name="key"/>, where the handler of
    /// <paramref name="channel"/> receives it (possibly on this node).</summary>
    /// <exception cref="OverlayMessageTooLargeException">The payload is larger than the transport carries.</exception>
    /// <exception cref="OverlayNodeStoppedException">The node has stopped.</exception>
    public void Route(NodeKey key, ushort channel, ReadOnlyMemory<byte> payload)
    {
        CheckPayload(payload);
        var callbacks = new Outbox();
        lock (_lock)
        {
            EnsureReady("route");

            var message = new RouteMessage
            {
                Sender = Self, Key = key, Hops = 0, Kind = RouteKind.Application, Channel = channel, Origin = Self, Payload = payload,
            };
            RouteOnward(message, 0, callbacks);
            Rearm();
        }

        callbacks.Run();
    }

    /// <summary>
    /// Sends <paramref name="payload"/> straight to <paramref name="to"/>, whose handler of
    /// <paramref name="channel"/> receives it once. The send is acknowledged and retransmitted like a hop; if
    /// <paramref name="to"/> never acknowledges it is taken as dead and the handler here hears
    /// <see cref="IRouteHandler.DirectFailed"/>. An unreliable send (heartbeats) is sent once and forgotten.
    /// </summary>
    /// <exception cref="OverlayMessageTooLargeException">The payload is larger than the transport carries.</exception>
    /// <exception cref="OverlayNodeStoppedException">The node has stopped.</exception>
    public void SendDirect(NodeHandle to, ushort channel, ReadOnlyMemory<byte> payload, bool reliable = true)
    {
        CheckPayload(payload);
        var callbacks = new Outbox();
        lock (_lock)
        {
            EnsureReady("send");

            var message = new DirectMessage { Sender = Self, Channel = channel, Payload = payload };
            if (to.Key == Self.Key)
            {
                if (_handlers.GetValueOrDefault(channel) is { } handler)
                {
                    var delivery = new DirectDelivery(Self, channel, payload);
                    callbacks.Add(() => handler.ReceiveDirect(delivery));
                }
            }
            else if (reliable)
            {
                SendHop(message, to, ++_hopSequence, 0, 0);
                Rearm();
            }
            else
            {
                // Hop id 0: not acknowledged, not retransmitted, not checked for duplicates (heartbeats).
                _transport.Send(to.Address, message);
            }
        }

        callbacks.Run();
    }

    /// <summary>The largest payload <see cref="Route"/> and <see cref="SendDirect"/> accept.</summary>
    public int MaxPayload => _transport.MaxPayload;

    private void CheckPayload(ReadOnlyMemory<byte> payload)
    {
        if (payload.Length > _transport.MaxPayload)
        {
            throw new OverlayMessageTooLargeException(payload.Length, _transport.MaxPayload);
        }
    }

    /// <summary>Raised, outside the lock, after the leaf set changed.</summary>
    public event Action? LeafSetChanged;

    /// <summary>
    /// Tells the node of another node heard of outside the ring (a discovery beacon). It is probed, and taken into
    /// the tables if it answers and fits: this is how two rings that formed apart merge.
    /// </summary>
    public void Introduce(NodeHandle node)
    {
        uint version;
        lock (_lock)
        {
            if (_state != NodeState.Ready)
            {
                return;
            }

            version = _leafVersionSeen;
            ConsiderIndirect(node);
            Rearm();
            _leafVersionSeen = _leafSet.Version;
        }

        NotifyLeafSetChange(version);
    }

    /// <summary>Whether this node is the root of <paramref name="key"/> as far as it knows.</summary>
    public bool IsRootFor(NodeKey key)
    {
        lock (_lock)
        {
            return _state == NodeState.Ready && NextHop(key, Self.Key) is null;
        }
    }

    /// <summary>Leaves the ring gracefully: tells the leaf set, so it repairs at once, then stops.</summary>
    public void Leave()
    {
        lock (_lock)
        {
            if (_state == NodeState.Stopped)
            {
                return;
            }

            Log.Leaving(_logger, Self);
            var leafSet = _leafSet.ToArray();
            foreach (var member in leafSet)
            {
                _transport.Send(member.Address, new LeaveMessage { Sender = Self, LeafSet = leafSet });
            }

            StopLocked();
        }
    }

    /// <summary>Stops without telling anyone, as a crash would.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            StopLocked();
        }
    }

    /// <summary>A snapshot of the leaf set: counter-clockwise side and clockwise side, nearest first.</summary>
    public (NodeHandle[] CounterClockwise, NodeHandle[] Clockwise) GetLeafSet()
    {
        lock (_lock)
        {
            return ([.. _leafSet.CounterClockwise], [.. _leafSet.Clockwise]);
        }
    }

    /// <summary>A snapshot of the filled routing-table slots.</summary>
    public List<(int Row, int Column, NodeHandle Node)> GetRoutingTable()
    {
        lock (_lock)
        {
            var result = new List<(int, int, NodeHandle)>();
            for (var row = 0; row < NodeKey.DigitCount; row++)
            {
                for (var column = 0; column < NodeKey.Base; column++)
                {
                    if (_table.Get(row, column) is { } entry)
                    {
                        result.Add((row, column, entry));
                    }
                }
            }

            return result;
        }
    }

    /// <summary>Where this node would send a message for <paramref name="key"/> next; null when it is the root.</summary>
    public NodeHandle? NextHopFor(NodeKey key)
    {
        lock (_lock)
        {
            return NextHop(key, Self.Key);
        }
    }

    public void Receive(OverlayMessage message)
    {
        var callbacks = new Outbox();
        (RouteMessage Message, IRouteHandler Handler)? intercepted = null;
        var version = Volatile.Read(ref _leafVersionSeen);
        lock (_lock)
        {
            if (_state is NodeState.Stopped or NodeState.Created)
            {
                return;
            }

            // Until the root answers, the node is not in the ring: only the state sent along its join route counts.
            if (_state == NodeState.Joining && message is not JoinStateMessage)
            {
                return;
            }

            switch (message)
            {
                case RouteMessage route when AcceptRoute(route):
                    if (route.Kind == RouteKind.Application && _handlers.GetValueOrDefault(route.Channel) is { InterceptsForwarding: true } hook
                        && NextHop(route.Key, Self.Key) is not null)
                    {
                        intercepted = (route, hook);
                    }
                    else
                    {
                        RouteOnward(route, 0, callbacks);
                    }

                    break;
                case DirectMessage direct:
                    OnDirect(direct, callbacks);
                    break;
                case RouteAckMessage ack:
                    ConsiderDirect(ack.Sender);
                    _pending.Remove(ack.HopId);
                    break;
                case PingMessage ping:
                    OnPing(ping);
                    break;
                case PongMessage pong:
                    OnPong(pong);
                    break;
                case JoinStateMessage joinState:
                    OnJoinState(joinState);
                    break;
                case RowRequestMessage request:
                    ConsiderDirect(request.Sender);
                    _transport.Send(request.Sender.Address, new RowReplyMessage { Sender = Self, Row = request.Row, Nodes = _table.Row(request.Row) });
                    break;
                case RowReplyMessage reply:
                    ConsiderDirect(reply.Sender);
                    foreach (var node in reply.Nodes)
                    {
                        ConsiderIndirect(node);
                    }

                    break;
                case LeaveMessage leave:
                    OnLeave(leave);
                    break;
            }

            Rearm();
            _leafVersionSeen = _leafSet.Version;
        }

        NotifyLeafSetChange(version);
        callbacks.Run();
        if (intercepted is { } hop && hop.Handler.Forward(Delivery(hop.Message), hop.Message.Sender))
        {
            // The handler let the message pass: route it on (the tables may have changed meanwhile).
            callbacks = new Outbox();
            lock (_lock)
            {
                if (_state == NodeState.Ready)
                {
                    RouteOnward(hop.Message, 0, callbacks);
                    Rearm();
                }
            }

            callbacks.Run();
        }
    }

    private void StopLocked()
    {
        _state = NodeState.Stopped;
        _wake?.Cancel();
        _wake = null;
        _pending.Clear();
    }

    private void EnsureReady(string action)
    {
        if (_state == NodeState.Stopped)
        {
            throw new OverlayNodeStoppedException(Self.ToString(), action);
        }

        if (_state != NodeState.Ready)
        {
            throw new InvalidOperationException($"Pastry node {Self} cannot {action}: it is {_state.ToString().ToLowerInvariant()}, not part of a ring.");
        }
    }

    private void EnsureState(NodeState expected)
    {
        if (_state != expected)
        {
            throw new InvalidOperationException($"Pastry node {Self} is {_state.ToString().ToLowerInvariant()}; it can start or join only once.");
        }
    }

    private void NotifyLeafSetChange(uint versionBefore)
    {
        if (LeafSetChanged is { } handler && Volatile.Read(ref _leafVersionSeen) != versionBefore)
        {
            handler();
        }
    }

    private long NowMs() => _timers.NowMs;
}
