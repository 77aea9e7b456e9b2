using Iris.Overlay.Pastry;
using Iris.Overlay.Timing;
using Iris.Overlay.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Iris.Overlay.Scribe;

/// <summary>
/// Scribe on one Pastry node: the trees of the groups this node hosts members of or forwards for, multicast down
/// them, and anycast that picks a member in proportion to capacity.
/// </summary>
/// <remarks>
/// A join is routed toward the group key; each node on the way adopts the previous hop as a child and, if it was not
/// in the tree yet, joins in turn; the key's root is the tree's root. Parents and children exchange heartbeats:
/// parents send the path from the root and the capacity outside the child's subtree, children their subtree's
/// capacity. So every tree node knows the capacity in every direction, and anycast, choosing among its local members,
/// its children and its parent in proportion to capacity (never back where the message came from), lands on each
/// member with probability proportional to its capacity. Messages to the outside run outside the lock.
/// </remarks>
internal sealed partial class ScribeNode : IRouteHandler, IDisposable
{
    /// <summary>The overlay channel Scribe messages travel on.</summary>
    public const ushort Channel = 2;

    private const int MaxAnycastHops = 64;

    private readonly Lock _lock = new();
    private readonly PastryNode _pastry;
    private readonly TimerQueue _timers;
    private readonly IScribeHandler _handler;
    private readonly Random _random;
    private readonly ILogger _logger;
    private readonly long _heartbeatMs;
    private readonly long _silenceMs;
    private readonly long _joinTimeoutMs;
    private readonly Dictionary<NodeKey, GroupState> _groups = [];
    private readonly RecentSet<ScribeMessageId> _seen = new(16384);
    private readonly Dictionary<ScribeMessageId, PendingAnycast> _anycasts = [];
    private readonly TimerQueue.Entry _tick;
    private ulong _sequence;
    private bool _stopped;

    public ScribeNode(PastryNode pastry, TimerQueue timers, ScribeOptions options, Random random, IScribeHandler handler, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(pastry);
        ArgumentNullException.ThrowIfNull(timers);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(random);
        ArgumentNullException.ThrowIfNull(handler);
        var validation = new ScribeOptionsValidator().Validate(null, options);
        if (validation.Failed)
        {
            throw new ArgumentException(validation.FailureMessage, nameof(options));
        }

        _pastry = pastry;
        _timers = timers;
        _handler = handler;
        _random = random;
        _logger = logger ?? NullLogger.Instance;
        _heartbeatMs = Math.Max(1, (long)options.HeartbeatInterval.TotalMilliseconds);
        _silenceMs = _heartbeatMs * options.MissCount;
        _joinTimeoutMs = Math.Max(1, (long)options.JoinTimeout.TotalMilliseconds);
        pastry.RegisterHandler(Channel, this);
        _tick = timers.Create(OnTick);
        _tick.ScheduleAt(timers.NowMs + 1 + random.NextInt64(_heartbeatMs));
    }

    /// <summary>Raised, outside the lock, when this node's view of a group changes: members, children, parent,
    /// root.</summary>
    public event Action<NodeKey>? GroupChanged;

    public NodeHandle Self => _pastry.Self;

    public bool InterceptsForwarding => true;

    /// <summary>Adds (or updates) a local member of <paramref name="group"/>; the node joins the tree if needed.</summary>
    public void Subscribe(NodeKey group, string member, double capacity = 1)
    {
        ArgumentNullException.ThrowIfNull(member);
        if (!(capacity > 0) || double.IsInfinity(capacity))
        {
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "A member's capacity must be a positive, finite number.");
        }

        var outbox = new Outbox();
        lock (_lock)
        {
            var state = GetOrAdd(group);
            state.Members[member] = capacity;
            if (!state.Attached && !state.Joining)
            {
                StartJoin(state, outbox);
            }

            outbox.Changed(group);
        }

        Flush(outbox);
    }

    /// <summary>Changes a local member's capacity; reported upward with the next heartbeat.</summary>
    public void SetCapacity(NodeKey group, string member, double capacity) => Subscribe(group, member, capacity);

    /// <summary>Removes a local member; the node leaves the tree when nothing is left below it.</summary>
    public void Unsubscribe(NodeKey group, string member)
    {
        var outbox = new Outbox();
        lock (_lock)
        {
            if (_groups.TryGetValue(group, out var state) && state.Members.Remove(member))
            {
                if (state.IsEmpty)
                {
                    Prune(state, outbox);
                }

                outbox.Changed(group);
            }
        }

        Flush(outbox);
    }

    /// <summary>Sends <paramref name="payload"/> to every member of <paramref name="group"/>, through its root.</summary>
    public ScribeMessageId Multicast(NodeKey group, ReadOnlyMemory<byte> payload)
    {
        ScribeMessageId id;
        lock (_lock)
        {
            id = new ScribeMessageId(Self.Key, ++_sequence);
        }

        _pastry.Route(group, Channel, new ScribeMessage(ScribeMessageType.Multicast, group) { Id = id, Origin = Self, Payload = payload }.Encode());
        return id;
    }

    /// <summary>Sends <paramref name="payload"/> to one member of <paramref name="group"/>, chosen in proportion to
    /// capacity. If the group has no member, <see cref="IScribeHandler.OnNoMembers"/> is called here.</summary>
    public ScribeMessageId Anycast(NodeKey group, ReadOnlyMemory<byte> payload)
    {
        var outbox = new Outbox();
        ScribeMessageId id;
        lock (_lock)
        {
            id = new ScribeMessageId(Self.Key, ++_sequence);
            var message = new ScribeMessage(ScribeMessageType.Anycast, group) { Id = id, Origin = Self, Payload = payload };
            if (_groups.TryGetValue(group, out var state) && state.Attached)
            {
                HandleAnycast(state, message, cameFrom: null, [], outbox);
            }
            else
            {
                outbox.Add(() => _pastry.Route(group, Channel, message.Encode()));
            }
        }

        Flush(outbox);
        return id;
    }

    /// <summary>What this node knows of <paramref name="group"/>'s tree, or null if it is not in it.</summary>
    public GroupSnapshot? GetGroup(NodeKey group)
    {
        lock (_lock)
        {
            if (!_groups.TryGetValue(group, out var state))
            {
                return null;
            }

            return new GroupSnapshot(
                group,
                state.IsRoot,
                state.Parent,
                [.. state.Children.Values.Select(c => new ScribeChild(c.Node, c.Capacity))],
                new Dictionary<string, double>(state.Members, StringComparer.Ordinal),
                [.. state.Path],
                state.AboveCapacity);
        }
    }

    /// <summary>The groups this node is in the tree of.</summary>
    public NodeKey[] Groups()
    {
        lock (_lock)
        {
            return [.. _groups.Keys];
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _stopped = true;
            _tick.Cancel();
        }
    }

    public bool Forward(RouteDelivery message, NodeHandle previousHop)
    {
        if (Decode(message.Payload, message.Origin) is not { } scribe)
        {
            return true;
        }

        var outbox = new Outbox();
        var passOn = true;
        lock (_lock)
        {
            if (_stopped)
            {
                return true;
            }

            switch (scribe.Type)
            {
                case ScribeMessageType.Join:
                    passOn = !HandleJoin(scribe.Group, message.Origin, atRoot: false, outbox);
                    break;
                case ScribeMessageType.Anycast when _groups.TryGetValue(scribe.Group, out var state) && state.Attached:
                    // The first tree node on the route takes the anycast into the tree.
                    HandleAnycast(state, scribe, cameFrom: null, [], outbox);
                    passOn = false;
                    break;
            }
        }

        Flush(outbox);
        return passOn;
    }

    public void Deliver(RouteDelivery delivery)
    {
        if (Decode(delivery.Payload, delivery.Origin) is not { } scribe)
        {
            return;
        }

        var outbox = new Outbox();
        lock (_lock)
        {
            if (_stopped)
            {
                return;
            }

            // This node is the key's root: if it is in the tree, it is the tree's root.
            if (_groups.TryGetValue(scribe.Group, out var state) && !state.IsRoot)
            {
                BecomeRoot(state, outbox);
            }

            switch (scribe.Type)
            {
                case ScribeMessageType.Join:
                    HandleJoin(scribe.Group, delivery.Origin, atRoot: true, outbox);
                    break;
                case ScribeMessageType.Multicast when state is not null:
                    Disseminate(state, scribe, from: null, outbox);
                    break;
                case ScribeMessageType.Anycast when state is not null:
                    HandleAnycast(state, scribe, cameFrom: null, [], outbox);
                    break;
                case ScribeMessageType.Anycast:
                    SendNoMembers(scribe, outbox);
                    break;
            }
        }

        Flush(outbox);
    }

    public void ReceiveDirect(DirectDelivery delivery)
    {
        if (Decode(delivery.Payload, delivery.From) is not { } scribe)
        {
            return;
        }

        var from = delivery.From;
        var outbox = new Outbox();
        lock (_lock)
        {
            if (_stopped)
            {
                return;
            }

            var state = _groups.GetValueOrDefault(scribe.Group);
            switch (scribe.Type)
            {
                case ScribeMessageType.JoinAck:
                    OnJoinAck(state, from, scribe, outbox);
                    break;
                case ScribeMessageType.ParentBeat:
                    OnParentBeat(state, from, scribe, outbox);
                    break;
                case ScribeMessageType.ChildReport:
                    OnChildReport(state, from, scribe, outbox);
                    break;
                case ScribeMessageType.Leave when state is not null:
                    if (state.Children.Remove(from.Key))
                    {
                        outbox.Changed(state.Key);
                        if (state.IsEmpty)
                        {
                            Prune(state, outbox);
                        }
                    }

                    break;
                case ScribeMessageType.Reject when state?.Parent is { } parent && parent.Key == from.Key:
                    Orphan(state, "it is no longer in the tree", outbox);
                    StartJoin(state, outbox);
                    break;
                case ScribeMessageType.Data when state is not null:
                    Disseminate(state, scribe, from, outbox);
                    break;
                case ScribeMessageType.Anycast when state is not null && state.Attached:
                    HandleAnycast(state, scribe, from.Key, [], outbox);
                    break;
                case ScribeMessageType.Anycast:
                    // No longer in this tree: send it back into the ring toward the group's root.
                    outbox.Add(() => _pastry.Route(scribe.Group, Channel, (scribe with { Hops = scribe.Hops + 1 }).Encode()));
                    break;
                case ScribeMessageType.NoMembers:
                    outbox.Add(() => _handler.OnNoMembers(scribe.Group, scribe.Id));
                    break;
            }
        }

        Flush(outbox);
    }

    public void DirectFailed(NodeHandle to, ushort channel, ReadOnlyMemory<byte> payload)
    {
        if (Decode(payload, to) is not { } scribe)
        {
            return;
        }

        var outbox = new Outbox();
        lock (_lock)
        {
            if (_stopped || !_groups.TryGetValue(scribe.Group, out var state))
            {
                return;
            }

            if (state.Parent is { } parent && parent.Key == to.Key)
            {
                Orphan(state, "it did not acknowledge", outbox);
                StartJoin(state, outbox);
            }

            if (state.Children.Remove(to.Key))
            {
                outbox.Changed(state.Key);
            }

            // An anycast sent into a dead subtree tries another direction.
            if (scribe.Type == ScribeMessageType.Anycast && _anycasts.Remove(scribe.Id, out var pending))
            {
                pending.Tried.Add(to.Key);
                HandleAnycast(state, scribe, pending.CameFrom, pending.Tried, outbox);
            }
        }

        Flush(outbox);
    }

    private void Send(NodeHandle to, ScribeMessage message, bool reliable, Outbox outbox)
    {
        var bytes = message.Encode();
        outbox.Add(() => _pastry.SendDirect(to, Channel, bytes, reliable));
    }

    private ScribeMessage? Decode(ReadOnlyMemory<byte> payload, NodeHandle sender)
    {
        try
        {
            return ScribeMessage.Decode(payload.Span);
        }
        catch (OverlayProtocolException e)
        {
            Log.Malformed(_logger, Self, sender, e.Message);
            return null;
        }
    }

    private void Flush(Outbox outbox)
    {
        outbox.Work.Run();
        if (outbox.ChangedGroups is { } changed && GroupChanged is { } handler)
        {
            foreach (var group in changed)
            {
                handler(group);
            }
        }
    }

    /// <summary>Work decided under the lock and done after it: the node's sends and deliveries (the shared
    /// <see cref="Kernel.Outbox"/>), then the change events of the groups it touched, once each.</summary>
    private sealed class Outbox
    {
        public Kernel.Outbox Work { get; } = new();

        public HashSet<NodeKey>? ChangedGroups { get; private set; }

        public void Add(Action action) => Work.Add(action);

        public void Changed(NodeKey group) => (ChangedGroups ??= []).Add(group);
    }
}
