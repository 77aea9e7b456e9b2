using Iris.Overlay.Diagnostics;
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
internal sealed class PastryNode : IOverlayReceiver, IDisposable
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
        // run starts its sequence at a random point of a 2^63 space.
        _hopSequence = (ulong)random.NextInt64(1, long.MaxValue);
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

    /// <summary>Acknowledges a routed message and decides whether this node takes it further. False for a
    /// retransmitted duplicate or our own join coming back.</summary>
    private bool AcceptRoute(RouteMessage message)
    {
        _transport.Send(message.Sender.Address, new RouteAckMessage { Sender = Self, HopId = message.HopId });
        if (message.HopId != 0 && !_recentHops.Add((message.Sender.Key, message.HopId)))
        {
            // A retransmission of a hop we already took (its acknowledgement was lost): acknowledged again, not
            // routed again.
            return false;
        }

        var isJoin = message.Kind == RouteKind.Join;
        if (isJoin && message.Origin.Key == Self.Key)
        {
            return false;
        }

        // A joining node is not part of the ring until the root has answered it: do not route to it yet.
        if (!(isJoin && message.Sender.Key == message.Origin.Key))
        {
            ConsiderDirect(message.Sender);
        }

        return true;
    }

    private static RouteDelivery Delivery(RouteMessage message) =>
        new(message.Key, message.Origin, message.Channel, message.Payload, message.Hops);

    private void OnDirect(DirectMessage message, Outbox callbacks)
    {
        if (message.HopId != 0)
        {
            _transport.Send(message.Sender.Address, new RouteAckMessage { Sender = Self, HopId = message.HopId });
            if (!_recentHops.Add((message.Sender.Key, message.HopId)))
            {
                return;
            }
        }

        ConsiderDirect(message.Sender);
        if (_handlers.GetValueOrDefault(message.Channel) is { } handler)
        {
            var delivery = new DirectDelivery(message.Sender, message.Channel, message.Payload);
            callbacks.Add(() => handler.ReceiveDirect(delivery));
        }
    }

    private void RouteOnward(RouteMessage message, int attempts, Outbox callbacks)
    {
        var isJoin = message.Kind == RouteKind.Join;
        var next = NextHop(message.Key, isJoin ? message.Origin.Key : Self.Key);
        if (isJoin && (next is null || attempts == 0))
        {
            SendJoinState(message.Origin, isRoot: next is null);
        }

        if (next is null)
        {
            if (!isJoin)
            {
                OverlayMetrics.Hops.Record(message.Hops);
                DeliverLater(Delivery(message), callbacks);
            }

            return;
        }

        if (message.Hops >= _options.MaxHops)
        {
            OverlayMetrics.RoutesDropped.Add(1);
            Log.RouteDropped(_logger, Self, message.Key, message.Channel, $"it already took {message.Hops} hops (limit {_options.MaxHops})");
            return;
        }

        OverlayMetrics.MessagesRouted.Add(1);
        SendHop(message, next.Value, ++_hopSequence, attempts, retransmits: 0);
    }

    private void SendHop(OverlayMessage message, NodeHandle to, ulong hopId, int attempts, int retransmits)
    {
        var now = NowMs();
        _pending[hopId] = new PendingHop(message, to, now + _ackTimeoutMs, attempts, retransmits);
        if (_nextAckCheckMs == long.MaxValue)
        {
            _nextAckCheckMs = now + _ackCheckMs;
        }

        _transport.Send(to.Address, message switch
        {
            RouteMessage route => route.NextHop(Self, hopId),
            DirectMessage direct => direct.WithHopId(hopId),
            _ => throw new InvalidOperationException($"{message.Type} is not sent hop by hop."),
        });
    }

    /// <summary>
    /// Pastry's routing rule: inside the leaf set's range, the member closest to the key; else the routing-table
    /// entry sharing one more digit with the key; else (a hole in the table) any known node closer to the key.
    /// Returns null when this node is the root as far as it knows.
    /// </summary>
    private NodeHandle? NextHop(NodeKey key, NodeKey exclude)
    {
        if (_leafSet.IsInRange(key))
        {
            return _leafSet.CloserThanSelf(key, exclude);
        }

        if (!_table.TryGetSlot(key, out var row, out var column))
        {
            return null;
        }

        if (_table.Get(row, column) is { } entry && entry.Key != exclude)
        {
            return entry;
        }

        // The rare case. Prefer nodes that share at least as many digits with the key as we do: every hop then
        // either lengthens the shared prefix or, at equal prefix, gets numerically closer, so routes cannot loop.
        // Only when no such node is closer does any closer node do.
        NodeHandle? best = null;
        NodeHandle? fallback = null;
        foreach (var candidate in _leafSet.Clockwise.Concat(_leafSet.CounterClockwise).Concat(_table.All()))
        {
            if (candidate.Key == exclude || !key.IsCloser(candidate.Key, Self.Key))
            {
                continue;
            }

            if (candidate.Key.SharedPrefixLength(key) >= row)
            {
                if (best is null || key.IsCloser(candidate.Key, best.Value.Key))
                {
                    best = candidate;
                }
            }
            else if (fallback is null || key.IsCloser(candidate.Key, fallback.Value.Key))
            {
                fallback = candidate;
            }
        }

        return best ?? fallback;
    }

    private void SendJoin()
    {
        _joinDeadlineMs = NowMs() + (long)_options.JoinTimeout.TotalMilliseconds;
        _transport.Send(_bootstrap, new RouteMessage
        {
            Sender = Self, HopId = 0, Key = Self.Key, Hops = 1, Kind = RouteKind.Join, Origin = Self, Payload = ReadOnlyMemory<byte>.Empty,
        });
    }

    private void SendJoinState(NodeHandle origin, bool isRoot)
    {
        var rows = Self.Key.SharedPrefixLength(origin.Key);
        var nodes = _table.Rows(rows);
        if (isRoot)
        {
            nodes.AddRange(_leafSet.ToArray());
        }

        _transport.Send(origin.Address, new JoinStateMessage { Sender = Self, IsRoot = isRoot, Nodes = [.. nodes] });
    }

    private void OnJoinState(JoinStateMessage message)
    {
        if (_state != NodeState.Joining)
        {
            ConsiderDirect(message.Sender);
            return;
        }

        _joinCandidates.Add(message.Sender);
        _joinCandidates.AddRange(message.Nodes);
        if (!message.IsRoot)
        {
            return;
        }

        // The root answered: the node is part of the ring. Announce it to every node learned on the way; their
        // answers fill the leaf set and the routing table.
        _state = NodeState.Ready;
        ConsiderDirect(message.Sender);
        var announced = new HashSet<NodeKey> { Self.Key };
        foreach (var candidate in _joinCandidates)
        {
            if (announced.Add(candidate.Key) && !_graveyard.ContainsKey(candidate.Key))
            {
                SendProbe(candidate);
            }
        }

        _joinCandidates.Clear();
        Log.Joined(_logger, Self, message.Sender);
    }

    private void OnPing(PingMessage ping)
    {
        ConsiderDirect(ping.Sender);
        var peer = _peers.GetValueOrDefault(ping.Sender.Key);
        if (ping.LeafSet is not null)
        {
            Merge(ping.LeafSet);
            peer?.SeenTheirs = ping.LeafVersion;
        }

        // SeenVersion 0 means the pinger never tracked our leaf set (a routing-table check): it only gets the leaf
        // set when it asks.
        var include = ping.WantLeafSet || (ping.SeenVersion != 0 && ping.SeenVersion != _leafSet.Version);
        if (peer is not null)
        {
            peer.PingReceived = true;
            peer.TheyHaveSeenMine = include ? _leafSet.Version : ping.SeenVersion;
        }

        _transport.Send(ping.Sender.Address, new PongMessage
        {
            Sender = Self,
            LeafVersion = _leafSet.Version,
            SeenVersion = peer?.SeenTheirs ?? 0,
            LeafSet = include ? _leafSet.ToArray() : null,
        });
    }

    private void OnPong(PongMessage pong)
    {
        _probes.Remove(pong.Sender.Key);
        ConsiderDirect(pong.Sender);
        var peer = _peers.GetValueOrDefault(pong.Sender.Key);
        if (pong.LeafSet is not null)
        {
            Merge(pong.LeafSet);
            peer?.SeenTheirs = pong.LeafVersion;
        }

        peer?.TheyHaveSeenMine = pong.SeenVersion;
    }

    private void OnLeave(LeaveMessage message)
    {
        if (_graveyard.ContainsKey(message.Sender.Key))
        {
            return;
        }

        Log.PeerLeft(_logger, Self, message.Sender);
        Remove(message.Sender);
        Merge(message.LeafSet);
    }

    private void Merge(NodeHandle[] nodes)
    {
        foreach (var node in nodes)
        {
            ConsiderIndirect(node);
        }
    }

    /// <summary>A message came from <paramref name="node"/> itself: it is alive, and may belong in the tables.</summary>
    private void ConsiderDirect(NodeHandle node)
    {
        if (node.Key == Self.Key)
        {
            return;
        }

        if (_graveyard.Remove(node.Key))
        {
            Log.Revived(_logger, Self, node);
        }

        _probes.Remove(node.Key);
        _tableChecks.Remove(node.Key);
        _evicted.Clear();
        if (_leafSet.TryAdd(node, _evicted))
        {
            _peers.TryAdd(node.Key, new Peer());
            foreach (var evicted in _evicted)
            {
                _peers.Remove(evicted.Key);
            }
        }

        _table.TryAdd(node);
        if (_peers.TryGetValue(node.Key, out var peer))
        {
            peer.LastHeardMs = NowMs();
        }
    }

    /// <summary>Another node mentioned <paramref name="node"/>: probe it if it would be useful and is not known.</summary>
    private void ConsiderIndirect(NodeHandle node)
    {
        if (node.Key == Self.Key || _graveyard.ContainsKey(node.Key) || _probes.ContainsKey(node.Key))
        {
            return;
        }

        // A node already in the routing table may still belong in the leaf set (WouldAccept is false for members).
        if (_leafSet.WouldAccept(node.Key) || _table.HasRoomFor(node.Key))
        {
            SendProbe(node);
        }
    }

    private void SendProbe(NodeHandle node)
    {
        _probes[node.Key] = NowMs();
        _transport.Send(node.Address, new PingMessage { Sender = Self, LeafVersion = _leafSet.Version, WantLeafSet = true });
    }

    /// <summary>Takes a node out of the tables for good (dead or left) and starts the repair of what it held.</summary>
    private void Remove(NodeHandle node)
    {
        var wasLeaf = _leafSet.Remove(node.Key);
        _peers.Remove(node.Key);
        var row = _table.Remove(node.Key);
        _probes.Remove(node.Key);
        _tableChecks.Remove(node.Key);
        if (_graveyard.TryAdd(node.Key, new Grave(node, NowMs() + (long)_options.DeadNodeRetention.TotalMilliseconds)))
        {
            _graveRotation.Enqueue(node.Key);
        }

        if (wasLeaf)
        {
            // The farthest member on each side knows the nodes just beyond our view.
            OverlayMetrics.Repairs.Add(1);
            AskForLeafSet(_leafSet.Clockwise);
            AskForLeafSet(_leafSet.CounterClockwise);
        }

        if (row >= 0)
        {
            OverlayMetrics.Repairs.Add(1);
            RepairRow(row);
        }
    }

    private void AskForLeafSet(IReadOnlyList<NodeHandle> side)
    {
        if (side.Count > 0)
        {
            var farthest = side[^1];
            _transport.Send(farthest.Address, new PingMessage
            {
                Sender = Self, LeafVersion = _leafSet.Version, SeenVersion = _peers.GetValueOrDefault(farthest.Key)?.SeenTheirs ?? 0, WantLeafSet = true,
            });
        }
    }

    private void RepairRow(int row)
    {
        // Nodes in the same row, or failing that the next one, share enough digits to know candidates for it.
        for (var r = row; r < Math.Min(row + 2, NodeKey.DigitCount); r++)
        {
            var entries = _table.Row(r);
            if (entries.Length > 0)
            {
                var helper = entries[_random.Next(entries.Length)];
                _transport.Send(helper.Address, new RowRequestMessage { Sender = Self, Row = row });
                return;
            }
        }
    }

    private void DeclareDead(NodeHandle node, string reason)
    {
        OverlayMetrics.FailuresDetected.Add(1);
        Log.DeclaredDead(_logger, Self, node, reason);
        Remove(node);
    }

    private void StartTimer()
    {
        _wake = _timers.Create(OnTimer);
        // A random phase keeps thousands of nodes from beating in step.
        _nextTickMs = NowMs() + 1 + _random.NextInt64(_heartbeatMs);
        Rearm();
    }

    private void OnTimer()
    {
        var callbacks = new Outbox();
        var version = Volatile.Read(ref _leafVersionSeen);
        lock (_lock)
        {
            if (_state == NodeState.Stopped)
            {
                return;
            }

            _armedMs = long.MaxValue;
            var now = NowMs();
            if (now >= _nextAckCheckMs)
            {
                CheckAcks(now, callbacks);
            }

            if (now >= _nextTickMs)
            {
                _nextTickMs = now + _heartbeatMs;
                if (_state == NodeState.Joining)
                {
                    RetryJoin(now);
                }
                else
                {
                    Tick(now);
                }
            }

            Rearm();
            _leafVersionSeen = _leafSet.Version;
        }

        NotifyLeafSetChange(version);
        callbacks.Run();
    }

    private void CheckAcks(long now, Outbox callbacks)
    {
        List<(ulong, PendingHop)>? expired = null;
        foreach (var (hopId, hop) in _pending)
        {
            if (hop.DeadlineMs <= now)
            {
                (expired ??= []).Add((hopId, hop));
                _pending.Remove(hopId);
            }
        }

        if (expired is null)
        {
            _nextAckCheckMs = _pending.Count > 0 ? now + _ackCheckMs : long.MaxValue;
            return;
        }

        _nextAckCheckMs = now + _ackCheckMs;

        foreach (var (hopId, hop) in expired)
        {
            if (hop.Retransmits < _options.HopRetransmits)
            {
                // Same node, same hop id: the receiver recognises a duplicate if only the acknowledgement was lost.
                SendHop(hop.Message, hop.To, hopId, hop.Attempts, hop.Retransmits + 1);
                continue;
            }

            if (_leafSet.Contains(hop.To.Key) || _table.Contains(hop.To.Key))
            {
                DeclareDead(hop.To, $"hop not acknowledged within {_options.HopAckTimeout}");
            }

            if (hop.Message is DirectMessage direct)
            {
                if (_handlers.GetValueOrDefault(direct.Channel) is { } handler)
                {
                    var to = hop.To;
                    callbacks.Add(() => handler.DirectFailed(to, direct.Channel, direct.Payload));
                }

                continue;
            }

            var route = (RouteMessage)hop.Message;
            if (hop.Attempts + 1 >= _options.MaxRouteAttempts)
            {
                OverlayMetrics.RoutesDropped.Add(1);
                Log.RouteDropped(_logger, Self, route.Key, route.Channel, $"{hop.Attempts + 1} next hops failed to acknowledge");
                continue;
            }

            OverlayMetrics.Reroutes.Add(1);
            RouteOnward(route, hop.Attempts + 1, callbacks);
        }
    }

    private void Tick(long now)
    {
        var silenceLimit = _heartbeatMs * _options.MissCount;
        List<NodeHandle>? dead = null;
        NodeHandle[]? leafSet = null;
        foreach (var member in _leafSet.ToArray())
        {
            var peer = _peers[member.Key];
            if (now - peer.LastHeardMs >= silenceLimit)
            {
                (dead ??= []).Add(member);
                continue;
            }

            // One ping per pair and interval is enough: if the other side pinged us since the last tick, we know it
            // lives, and its ping told it the same about us.
            if (!peer.PingReceived)
            {
                var include = peer.TheyHaveSeenMine != _leafSet.Version;
                _transport.Send(member.Address, new PingMessage
                {
                    Sender = Self,
                    LeafVersion = _leafSet.Version,
                    SeenVersion = peer.SeenTheirs,
                    WantLeafSet = peer.SeenTheirs == 0,
                    LeafSet = include ? leafSet ??= _leafSet.ToArray() : null,
                });
            }

            peer.PingReceived = false;
        }

        if (dead is not null)
        {
            foreach (var node in dead)
            {
                DeclareDead(node, $"silent for {_options.MissCount} heartbeat intervals");
            }
        }

        ExpireProbes(now);
        CheckRoutingTable(now);
        VisitGraveyard(now);
    }

    /// <summary>
    /// Pastry's periodic table maintenance: each tick one routing-table entry outside the leaf set is pinged, so
    /// entries of nodes that died are found and replaced even if no message ever goes their way. An entry that
    /// answers neither the check nor two more pings, one interval apart, is declared dead.
    /// </summary>
    private void CheckRoutingTable(long now)
    {
        if (_tableChecks.Count > 0)
        {
            List<NodeKey>? stale = null;
            foreach (var (key, check) in _tableChecks)
            {
                if (now - check.SentMs >= _heartbeatMs)
                {
                    (stale ??= []).Add(key);
                }
            }

            if (stale is not null)
            {
                foreach (var key in stale)
                {
                    var (_, tries) = _tableChecks[key];
                    if (!_table.TryGetSlot(key, out var row, out var column) || _table.Get(row, column) is not { } entry || entry.Key != key)
                    {
                        _tableChecks.Remove(key);
                    }
                    else if (tries >= 3)
                    {
                        _tableChecks.Remove(key);
                        DeclareDead(entry, "did not answer routing-table checks");
                    }
                    else
                    {
                        _tableChecks[key] = (now, tries + 1);
                        SendTableCheck(entry);
                    }
                }
            }
        }

        if (_table.Count == 0)
        {
            return;
        }

        const int Slots = NodeKey.DigitCount * NodeKey.Base;
        for (var scanned = 0; scanned < Slots; scanned++)
        {
            _tableCheckCursor = (_tableCheckCursor + 1) % Slots;
            if (_table.Get(_tableCheckCursor / NodeKey.Base, _tableCheckCursor % NodeKey.Base) is { } entry)
            {
                if (!_leafSet.Contains(entry.Key) && _tableChecks.TryAdd(entry.Key, (now, 1)))
                {
                    SendTableCheck(entry);
                }

                return;
            }
        }
    }

    private void SendTableCheck(NodeHandle entry) =>
        _transport.Send(entry.Address, new PingMessage { Sender = Self, LeafVersion = _leafSet.Version });

    private void RetryJoin(long now)
    {
        if (now >= _joinDeadlineMs)
        {
            Log.JoinRetry(_logger, Self, _bootstrap, _options.JoinTimeout);
            _bootstrapIndex = (_bootstrapIndex + 1) % _bootstraps.Length;
            _bootstrap = _bootstraps[_bootstrapIndex];
            _joinCandidates.Clear();
            SendJoin();
        }
    }

    private void ExpireProbes(long now)
    {
        if (_probes.Count == 0)
        {
            return;
        }

        List<NodeKey>? expired = null;
        foreach (var (key, sentMs) in _probes)
        {
            if (now - sentMs >= _heartbeatMs * _options.MissCount)
            {
                (expired ??= []).Add(key);
            }
        }

        expired?.ForEach(key => _probes.Remove(key));
    }

    /// <summary>Forgets old graves and probes one remembered dead node per tick: after a partition heals, the two
    /// sides find each other this way.</summary>
    private void VisitGraveyard(long now)
    {
        while (_graveRotation.TryDequeue(out var key))
        {
            if (!_graveyard.TryGetValue(key, out var grave))
            {
                continue;
            }

            if (grave.ExpiresMs <= now)
            {
                _graveyard.Remove(key);
                continue;
            }

            _graveRotation.Enqueue(key);
            _transport.Send(grave.Node.Address, new PingMessage { Sender = Self, LeafVersion = _leafSet.Version, WantLeafSet = true });
            return;
        }
    }

    private void Rearm()
    {
        if (_wake is null || _state == NodeState.Stopped)
        {
            return;
        }

        var due = Math.Min(_nextTickMs, _pending.Count > 0 ? _nextAckCheckMs : long.MaxValue);
        if (due < _armedMs)
        {
            _armedMs = due;
            _wake.ScheduleAt(due);
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

    private void DeliverLater(RouteDelivery delivery, Outbox callbacks)
    {
        if (_handlers.GetValueOrDefault(delivery.Channel) is not { } handler)
        {
            Log.RouteDropped(_logger, Self, delivery.Key, delivery.Channel, "no handler is registered for the channel");
            return;
        }

        callbacks.Add(() => handler.Deliver(delivery));
    }

    private long NowMs() => _timers.NowMs;

    private sealed class Peer
    {
        public long LastHeardMs;
        public bool PingReceived;
        public uint SeenTheirs;
        public uint TheyHaveSeenMine;
    }

    private readonly record struct Grave(NodeHandle Node, long ExpiresMs);

    /// <summary>A hop or direct message awaiting its acknowledgement. For a route, the message as this node received
    /// it (the next hop's copy is made when sending).</summary>
    private readonly record struct PendingHop(OverlayMessage Message, NodeHandle To, long DeadlineMs, int Attempts, int Retransmits);
}
