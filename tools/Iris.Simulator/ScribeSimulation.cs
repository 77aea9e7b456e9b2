using Iris.Overlay;
using Iris.Overlay.Pastry;
using Iris.Overlay.Scribe;
using Iris.Overlay.Transport;

namespace Iris.Simulator;

/// <summary>
/// Scribe on a simulated Pastry ring: a <see cref="ScribeNode"/> on every node, and a record of what every member
/// received, so multicast completeness, duplicates and anycast shares can be checked against the true membership.
/// </summary>
internal sealed class ScribeSimulation : IDisposable
{
    private readonly Dictionary<NodeKey, ScribeNode> _scribes = [];
    private readonly Dictionary<string, (PastryNode Node, double Capacity, NodeKey[] Keys)> _members = new(StringComparer.Ordinal);

    public ScribeSimulation(PastrySimulation ring, ScribeOptions? options = null)
    {
        Ring = ring;
        Options = options ?? new ScribeOptions();
        Recorder = new ScribeRecorder();
    }

    public PastrySimulation Ring { get; }

    public ScribeOptions Options { get; }

    public ScribeRecorder Recorder { get; }

    /// <summary>Creates a Scribe node on every ready ring node that has none yet.</summary>
    public void AttachAll()
    {
        foreach (var node in Ring.ReadyNodes)
        {
            if (!_scribes.ContainsKey(node.Self.Key))
            {
                _scribes[node.Self.Key] = new ScribeNode(node, Ring.Timers, Options, new Random(unchecked((int)(uint)(node.Self.Key.Value >> 96))), Recorder.For(node));
            }
        }
    }

    public ScribeNode ScribeOf(PastryNode node) => _scribes[node.Self.Key];

    public IEnumerable<ScribeNode> LiveScribes => Ring.LiveNodes.Select(n => _scribes.GetValueOrDefault(n.Self.Key)).OfType<ScribeNode>();

    /// <summary>Makes <paramref name="member"/> on <paramref name="node"/> a member of every key of a (split) group.</summary>
    public void Subscribe(PastryNode node, string member, double capacity, NodeKey[] keys)
    {
        _members[member] = (node, capacity, keys);
        foreach (var key in keys)
        {
            ScribeOf(node).Subscribe(key, member, capacity);
        }
    }

    public void Unsubscribe(string member)
    {
        var (node, _, keys) = _members[member];
        _members.Remove(member);
        foreach (var key in keys)
        {
            ScribeOf(node).Unsubscribe(key, member);
        }
    }

    /// <summary>Members of <paramref name="key"/> whose node is alive, with their capacities.</summary>
    public Dictionary<string, double> LiveMembers(NodeKey key) =>
        _members.Where(m => !m.Value.Node.IsStopped && m.Value.Keys.Contains(key)).ToDictionary(m => m.Key, m => m.Value.Capacity, StringComparer.Ordinal);

    /// <summary>Crashes a ring node and its Scribe node.</summary>
    public void Crash(PastryNode node)
    {
        _scribes.GetValueOrDefault(node.Self.Key)?.Dispose();
        Ring.Crash(node);
    }

    public List<PastryNode> Fail(double fraction)
    {
        var victims = Ring.Fail(fraction);
        foreach (var victim in victims)
        {
            _scribes.GetValueOrDefault(victim.Self.Key)?.Dispose();
        }

        return victims;
    }

    /// <summary>
    /// Whether the tree of <paramref name="key"/> is whole: exactly one live node calls itself root, and it is the
    /// key's true root; every live member's node is attached on a path of live nodes that starts at that root.
    /// </summary>
    public bool TreeIsWhole(NodeKey key)
    {
        var root = Ring.TrueRoot(key);
        var roots = LiveScribes.Where(s => s.GetGroup(key) is { IsRoot: true }).ToList();
        if (roots.Count > 1 || (roots.Count == 1 && roots[0].Self.Key != root.Self.Key))
        {
            return false;
        }

        var live = Ring.LiveNodes.Select(n => n.Self.Key).ToHashSet();
        foreach (var (_, (node, _, keys)) in _members)
        {
            if (node.IsStopped || !keys.Contains(key))
            {
                continue;
            }

            if (ScribeOf(node).GetGroup(key) is not { } group || group.Path.Count == 0 || group.Path[0] != root.Self.Key
                || group.Path[^1] != node.Self.Key || !group.Path.All(live.Contains))
            {
                return false;
            }
        }

        return true;
    }

    public void Dispose()
    {
        foreach (var scribe in _scribes.Values)
        {
            scribe.Dispose();
        }
    }
}

/// <summary>Everything members received, for checking.</summary>
internal sealed class ScribeRecorder
{
    public Dictionary<ScribeMessageId, HashSet<string>> Multicasts { get; } = [];

    public Dictionary<ScribeMessageId, string> Anycasts { get; } = [];

    public HashSet<ScribeMessageId> NoMembers { get; } = [];

    public long Duplicates { get; private set; }

    public long AnycastDuplicates { get; private set; }

    public void Clear()
    {
        Multicasts.Clear();
        Anycasts.Clear();
        NoMembers.Clear();
        Duplicates = 0;
        AnycastDuplicates = 0;
    }

    public IScribeHandler For(PastryNode node) => new Handler(this);

    private sealed class Handler(ScribeRecorder recorder) : IScribeHandler
    {
        public void OnMulticast(NodeKey group, string member, ScribeMessageId id, ReadOnlyMemory<byte> payload, NodeHandle origin)
        {
            if (!recorder.Multicasts.TryGetValue(id, out var members))
            {
                members = new HashSet<string>(StringComparer.Ordinal);
                recorder.Multicasts[id] = members;
            }

            if (!members.Add(member))
            {
                recorder.Duplicates++;
            }
        }

        public void OnAnycast(NodeKey group, string member, ScribeMessageId id, ReadOnlyMemory<byte> payload, NodeHandle origin)
        {
            if (!recorder.Anycasts.TryAdd(id, member))
            {
                recorder.AnycastDuplicates++;
            }
        }

        public void OnNoMembers(NodeKey group, ScribeMessageId id) => recorder.NoMembers.Add(id);
    }
}
