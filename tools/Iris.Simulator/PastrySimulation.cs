using System.Buffers.Binary;
using Iris.Overlay;
using Iris.Overlay.Pastry;
using Iris.Overlay.Timing;
using Iris.Overlay.Transport;
using Microsoft.Extensions.Time.Testing;

namespace Iris.Simulator;

/// <summary>Settings of a <see cref="PastrySimulation"/>.</summary>
internal sealed record PastrySimulationOptions
{
    public int Seed { get; init; } = 1;

    public PastryOptions Pastry { get; init; } = new()
    {
        HeartbeatInterval = TimeSpan.FromSeconds(1),
        MissCount = 3,
        HopAckTimeout = TimeSpan.FromMilliseconds(200),
        JoinTimeout = TimeSpan.FromSeconds(2),
    };

    public int MinLatencyMilliseconds { get; init; } = 1;

    public int MaxLatencyMilliseconds { get; init; } = 20;

    public double LossProbability { get; init; }

    /// <summary>Whether messages go through the binary codec, as on a socket. Slower; on in tests.</summary>
    public bool EncodeMessages { get; init; } = true;
}

/// <summary>Outcome of a batch of lookups.</summary>
internal sealed record LookupStats(int Lookups, int Delivered, int Correct, double MeanHops, int P99Hops, int MaxHops)
{
    /// <summary>Lookup hops and their acknowledgements sent during the batch (see <see cref="MessageTally"/>).</summary>
    public long LookupMessages { get; init; }

    /// <summary>Every other message sent while the batch ran: heartbeats, probes, repair.</summary>
    public long OtherMessages { get; init; }

    /// <summary>Messages a lookup cost on average: <see cref="LookupMessages"/> over lookups sent.</summary>
    public double MessagesPerLookup => Lookups == 0 ? 0 : (double)LookupMessages / Lookups;

    public double DeliveredFraction => Lookups == 0 ? 1 : (double)Delivered / Lookups;

    /// <summary>Of the delivered lookups, the fraction that reached the true root.</summary>
    public double CorrectFraction => Delivered == 0 ? 1 : (double)Correct / Delivered;
}

/// <summary>
/// A Pastry ring in one process: nodes on an <see cref="InMemoryNetwork"/>, all driven by one
/// <see cref="FakeTimeProvider"/>, so a run is a pure function of its seed. Knows the true membership, so it can
/// tell whether a lookup reached the right root and whether every leaf set is right.
/// </summary>
internal sealed class PastrySimulation : IDisposable
{
    public const ushort LookupChannel = 7;

    private readonly PastrySimulationOptions _options;
    private readonly Random _random;
    private readonly List<PastryNode> _nodes = [];
    private readonly Dictionary<NodeKey, PastryNode> _byKey = [];
    private readonly LookupRecorder _recorder = new();
    private readonly Microsoft.Extensions.Logging.ILogger? _logger;
    private UInt128[]? _sortedLive;

    // Ready nodes in creation order, kept up to date as joins finish rather than filtered from every node for each
    // join (that filter made joining N nodes cost N² node visits); null after a crash or leave, then rebuilt.
    private List<int>? _ready;
    private readonly List<int> _notYetReady = [];

    public PastrySimulation(PastrySimulationOptions? options = null)
    {
        _options = options ?? new PastrySimulationOptions();
        _random = new Random(_options.Seed);
        Time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        Timers = new TimerQueue(Time);
        Network = new InMemoryNetwork(Timers, new InMemoryNetworkOptions
        {
            Seed = _options.Seed,
            MinLatencyMilliseconds = _options.MinLatencyMilliseconds,
            MaxLatencyMilliseconds = _options.MaxLatencyMilliseconds,
            LossProbability = _options.LossProbability,
            EncodeMessages = _options.EncodeMessages,
        });
        if (Environment.GetEnvironmentVariable("IRIS_SIM_LOG") is { Length: > 0 } level)
        {
            _logger = new ConsoleSimLogger(Time, Enum.Parse<Microsoft.Extensions.Logging.LogLevel>(level, ignoreCase: true));
        }
    }

    public FakeTimeProvider Time { get; }

    public InMemoryNetwork Network { get; }

    /// <summary>The one deadline queue every node and the network share.</summary>
    public TimerQueue Timers { get; }

    public PastryOptions PastryOptions => _options.Pastry;

    /// <summary>Every node ever created, in creation order.</summary>
    public IReadOnlyList<PastryNode> Nodes => _nodes;

    public IEnumerable<PastryNode> LiveNodes => _nodes.Where(n => !n.IsStopped);

    public IEnumerable<PastryNode> ReadyNodes => _nodes.Where(n => n.IsReady);

    /// <summary>Every message the nodes sent, by type, and the messages lookups cost.</summary>
    public MessageTally Tally { get; } = new();

    /// <summary>Creates a node with a key drawn from the seed (or the given key) and joins it through a random
    /// ready node, or starts the ring when there is none. <paramref name="wrap"/>, when given, wraps the node's
    /// transport: a fault that only this node's messages meet.</summary>
    public PastryNode AddNode(NodeKey? key = null, Func<IOverlayTransport, IOverlayTransport>? wrap = null)
    {
        var nodeKey = key ?? NodeKey.Random(_random);
        var transport = Tally.Wrap(Network.Attach(new NodeAddress($"mem://{_nodes.Count}")));
        if (wrap is not null)
        {
            transport = wrap(transport);
        }

        var node = new PastryNode(nodeKey, transport, Timers, _options.Pastry, new Random(_random.Next()), _logger);
        node.RegisterHandler(LookupChannel, _recorder.For(node));
        var ready = CurrentReady();
        _notYetReady.Add(_nodes.Count);
        _nodes.Add(node);
        _byKey[nodeKey] = node;
        _sortedLive = null;
        if (ready.Count == 0)
        {
            node.Start();
        }
        else
        {
            node.Join(_nodes[ready[_random.Next(ready.Count)]].Self.Address);
        }

        return node;
    }

    /// <summary>Adds <paramref name="count"/> nodes, <paramref name="batch"/> at a time (default one),
    /// <paramref name="spacing"/> of simulated time apart, each joining through a random node already in the
    /// ring.</summary>
    public void AddNodes(int count, TimeSpan spacing, Action<int>? progress = null, int batch = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batch, 1);
        for (var i = 0; i < count;)
        {
            for (var j = 0; j < batch && i < count; j++)
            {
                AddNode();
                i++;
                progress?.Invoke(i);
            }

            Run(spacing);
        }
    }

    /// <summary>Advances simulated time; every message and timer due meanwhile runs, in time order.</summary>
    /// <remarks>Steps one millisecond at a time with <c>SetUtcNow</c>: a fake time provider shows callbacks the end of
    /// the step as the current time, and every deadline here is a whole millisecond. (<c>Advance</c> also sleeps
    /// for a real millisecond per call.)</remarks>
    public void Run(TimeSpan duration)
    {
        var end = Time.GetUtcNow() + duration;
        var step = TimeSpan.FromMilliseconds(1);
        for (var now = Time.GetUtcNow() + step; now <= end; now += step)
        {
            Time.SetUtcNow(now);
        }

        if (Time.GetUtcNow() < end)
        {
            Time.SetUtcNow(end);
        }
    }

    /// <summary>Advances simulated time in <paramref name="step"/>s until <paramref name="condition"/> holds or
    /// <paramref name="limit"/> has passed. Returns the simulated time it took, or null on timeout.</summary>
    public TimeSpan? RunUntil(Func<bool> condition, TimeSpan limit, TimeSpan? step = null)
    {
        var elapsed = TimeSpan.Zero;
        while (!condition())
        {
            if (elapsed >= limit)
            {
                return null;
            }

            var s = step ?? TimeSpan.FromMilliseconds(100);
            Run(s);
            elapsed += s;
        }

        return elapsed;
    }

    /// <summary>Crashes a node: no goodbye, its messages in flight are lost.</summary>
    public void Crash(PastryNode node)
    {
        node.Dispose();
        Network.Crash(node.Self.Address);
        _sortedLive = null;
        _ready = null;
    }

    /// <summary>Makes a node leave gracefully.</summary>
    public void Leave(PastryNode node)
    {
        node.Leave();
        _sortedLive = null;
        _ready = null;
    }

    /// <summary>Crashes a random <paramref name="fraction"/> of the live nodes at once.</summary>
    public List<PastryNode> Fail(double fraction)
    {
        var live = LiveNodes.ToList();
        var count = (int)Math.Round(live.Count * fraction);
        var victims = new List<PastryNode>(count);
        for (var i = 0; i < count; i++)
        {
            var index = _random.Next(live.Count);
            victims.Add(live[index]);
            live[index] = live[^1];
            live.RemoveAt(live.Count - 1);
        }

        foreach (var victim in victims)
        {
            Crash(victim);
        }

        return victims;
    }

    /// <summary>The live node numerically closest to <paramref name="key"/>, by the ring's tie rule.</summary>
    public PastryNode TrueRoot(NodeKey key)
    {
        var sorted = SortedLive();
        var index = Array.BinarySearch(sorted, key.Value);
        if (index >= 0)
        {
            return _byKey[new NodeKey(sorted[index])];
        }

        index = ~index;
        var above = new NodeKey(sorted[index % sorted.Length]);
        var below = new NodeKey(sorted[(index - 1 + sorted.Length) % sorted.Length]);
        return _byKey[key.IsCloser(above, below) ? above : below];
    }

    /// <summary>The leaf set a node would have if it knew the whole live ring.</summary>
    public (NodeKey[] CounterClockwise, NodeKey[] Clockwise) TrueLeafSet(NodeKey self)
    {
        var sorted = SortedLive();
        var half = _options.Pastry.LeafSetSize / 2;
        var others = sorted.Length - 1;
        var take = Math.Min(half, others);
        var index = Array.BinarySearch(sorted, self.Value);
        var ccw = new NodeKey[take];
        var cw = new NodeKey[take];
        for (var i = 0; i < take; i++)
        {
            cw[i] = new NodeKey(sorted[(index + 1 + i) % sorted.Length]);
            ccw[i] = new NodeKey(sorted[(index - 1 - i + (sorted.Length * 2)) % sorted.Length]);
        }

        return (ccw, cw);
    }

    /// <summary>Number of live nodes whose leaf set differs from the true one.</summary>
    public int WrongLeafSets()
    {
        var wrong = 0;
        foreach (var node in LiveNodes)
        {
            var (ccw, cw) = node.GetLeafSet();
            var (trueCcw, trueCw) = TrueLeafSet(node.Self.Key);
            if (!ccw.Select(h => h.Key).SequenceEqual(trueCcw) || !cw.Select(h => h.Key).SequenceEqual(trueCw))
            {
                wrong++;
            }
        }

        return wrong;
    }

    /// <summary>Describes the first few wrong leaf sets, for diagnosing a ring that does not converge.</summary>
    public string DescribeWrongLeafSets(int max = 5)
    {
        var text = new System.Text.StringBuilder();
        foreach (var node in LiveNodes)
        {
            var (ccw, cw) = node.GetLeafSet();
            var (trueCcw, trueCw) = TrueLeafSet(node.Self.Key);
            if (ccw.Select(h => h.Key).SequenceEqual(trueCcw) && cw.Select(h => h.Key).SequenceEqual(trueCw))
            {
                continue;
            }

            text.AppendLine($"{node.Self} ready={node.IsReady}");
            text.AppendLine($"  ccw has  {string.Join(' ', ccw.Select(h => h.Key.ToShortString()))}");
            text.AppendLine($"  ccw true {string.Join(' ', trueCcw.Select(k => k.ToShortString()))}");
            text.AppendLine($"  cw has   {string.Join(' ', cw.Select(h => h.Key.ToShortString()))}");
            text.AppendLine($"  cw true  {string.Join(' ', trueCw.Select(k => k.ToShortString()))}");
            if (--max == 0)
            {
                break;
            }
        }

        return text.ToString();
    }

    /// <summary>Runs until every live node is ready and has the true leaf set; returns the simulated time taken or
    /// null when <paramref name="limit"/> passed first.</summary>
    public TimeSpan? Stabilise(TimeSpan limit) =>
        RunUntil(() => LiveNodes.All(n => n.IsReady) && WrongLeafSets() == 0, limit, TimeSpan.FromMilliseconds(500));

    /// <summary>Routes <paramref name="count"/> lookups for random keys from random live nodes, all sent at once,
    /// runs until they arrive (or <paramref name="limit"/>), and checks each against the true root.</summary>
    public LookupStats Lookups(int count, TimeSpan? limit = null)
    {
        var live = ReadyNodes.ToList();
        var (sentBefore, lookupBefore) = (Tally.Sent, Tally.LookupMessages);
        var keys = new NodeKey[count];
        _recorder.Reset(count);
        Span<byte> payload = stackalloc byte[4];
        for (var i = 0; i < count; i++)
        {
            keys[i] = NodeKey.Random(_random);
            var origin = live[_random.Next(live.Count)];
            BinaryPrimitives.WriteInt32BigEndian(payload, i);
            origin.Route(keys[i], LookupChannel, payload.ToArray());
        }

        RunUntil(() => _recorder.Arrived == count, limit ?? TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(50));
        var lookupMessages = Tally.LookupMessages - lookupBefore;
        return _recorder.Summarise(keys, key => TrueRoot(key).Self.Key) with
        {
            LookupMessages = lookupMessages,
            OtherMessages = Tally.Sent - sentBefore - lookupMessages,
        };
    }

    /// <summary>Routes one message and reports the node it arrived at and its hops, or null if it did not arrive
    /// within <paramref name="limit"/>.</summary>
    public (PastryNode Root, int Hops)? Lookup(PastryNode from, NodeKey key, TimeSpan? limit = null)
    {
        _recorder.Reset(1);
        from.Route(key, LookupChannel, new byte[4]);
        RunUntil(() => _recorder.Arrived == 1, limit ?? TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(10));
        return _recorder.First(0) is { } arrival ? (_byKey[arrival.Node], arrival.Hops) : null;
    }

    public void Dispose()
    {
        foreach (var node in _nodes)
        {
            node.Dispose();
        }

        Network.Dispose();
        Timers.Dispose();
    }

    /// <summary>Indices of the ready nodes in creation order, as <c>ReadyNodes.ToList()</c> would list them: only
    /// the nodes still joining are looked at again, and those that became ready are put in at their place.</summary>
    private List<int> CurrentReady()
    {
        if (_ready is null)
        {
            _ready = [];
            _notYetReady.Clear();
            for (var i = 0; i < _nodes.Count; i++)
            {
                (_nodes[i].IsReady ? _ready : _notYetReady).Add(i);
            }

            return _ready;
        }

        var joined = 0;
        for (var i = 0; i < _notYetReady.Count; i++)
        {
            var index = _notYetReady[i];
            if (_nodes[index].IsReady)
            {
                // Joins finish out of creation order, but recent ones go near the end: a short move.
                var at = _ready.BinarySearch(index);
                _ready.Insert(~at, index);
                joined++;
            }
            else
            {
                _notYetReady[i - joined] = index;
            }
        }

        _notYetReady.RemoveRange(_notYetReady.Count - joined, joined);
        return _ready;
    }

    private UInt128[] SortedLive()
    {
        if (_sortedLive is null)
        {
            _sortedLive = [.. LiveNodes.Select(n => n.Self.Key.Value)];
            Array.Sort(_sortedLive);
        }

        return _sortedLive;
    }

    /// <summary>Records where each lookup first arrived and in how many hops.</summary>
    private sealed class LookupRecorder
    {
        private (NodeKey Node, int Hops, bool Set)[] _arrivals = [];

        public int Arrived { get; private set; }

        public void Reset(int count)
        {
            _arrivals = new (NodeKey, int, bool)[count];
            Arrived = 0;
        }

        public (NodeKey Node, int Hops)? First(int id) => _arrivals[id].Set ? (_arrivals[id].Node, _arrivals[id].Hops) : null;

        public IRouteHandler For(PastryNode node) => new Handler(this, node);

        public LookupStats Summarise(NodeKey[] keys, Func<NodeKey, NodeKey> trueRoot)
        {
            var hops = new List<int>(keys.Length);
            var correct = 0;
            for (var i = 0; i < keys.Length; i++)
            {
                if (!_arrivals[i].Set)
                {
                    continue;
                }

                hops.Add(_arrivals[i].Hops);
                if (_arrivals[i].Node == trueRoot(keys[i]))
                {
                    correct++;
                }
            }

            hops.Sort();
            var mean = hops.Count == 0 ? 0 : hops.Average();
            var p99 = hops.Count == 0 ? 0 : hops[Math.Min(hops.Count - 1, (int)Math.Ceiling(hops.Count * 0.99) - 1)];
            var max = hops.Count == 0 ? 0 : hops[^1];
            return new LookupStats(keys.Length, hops.Count, correct, mean, p99, max);
        }

        private void Arrive(int id, NodeKey node, int hops)
        {
            if ((uint)id < (uint)_arrivals.Length && !_arrivals[id].Set)
            {
                _arrivals[id] = (node, hops, true);
                Arrived++;
            }
        }

        private sealed class Handler(LookupRecorder recorder, PastryNode node) : IRouteHandler
        {
            public void Deliver(RouteDelivery delivery) =>
                recorder.Arrive(BinaryPrimitives.ReadInt32BigEndian(delivery.Payload.Span), node.Self.Key, delivery.Hops);
        }
    }
}
