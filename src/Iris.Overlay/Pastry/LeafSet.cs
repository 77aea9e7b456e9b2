using Iris.Overlay.Transport;

namespace Iris.Overlay.Pastry;

/// <summary>
/// The nodes numerically nearest to this one: up to <c>size / 2</c> on each side of the ring. A node can sit on both
/// sides when the ring is small. When a side is not full, the leaf set holds every node there is and covers the whole
/// ring. Every change bumps <see cref="Version"/>, which neighbours use to know whether they have seen it.
/// </summary>
internal sealed class LeafSet
{
    private readonly NodeKey _self;
    private readonly int _half;
    private readonly List<NodeHandle> _clockwise;
    private readonly List<NodeHandle> _counterClockwise;

    public LeafSet(NodeKey self, int size)
    {
        if (size < 2 || size % 2 != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(size), size, "The leaf set size must be even and at least 2.");
        }

        _self = self;
        _half = size / 2;
        _clockwise = new List<NodeHandle>(_half + 1);
        _counterClockwise = new List<NodeHandle>(_half + 1);
    }

    /// <summary>Starts at 1 so that 0 can mean "never seen".</summary>
    public uint Version { get; private set; } = 1;

    /// <summary>Members on the clockwise side (larger keys), nearest first.</summary>
    public IReadOnlyList<NodeHandle> Clockwise => _clockwise;

    /// <summary>Members on the counter-clockwise side (smaller keys), nearest first.</summary>
    public IReadOnlyList<NodeHandle> CounterClockwise => _counterClockwise;

    public int HalfSize => _half;

    /// <summary>
    /// Whether the leaf set covers the whole ring: either neither side is full (then both hold every other node there
    /// is), or the two sides meet or overlap (the ring has at most as many nodes as the leaf set has room for). One
    /// short side alone means a repair is under way, not a small ring.
    /// </summary>
    public bool CoversRing =>
        (_clockwise.Count < _half && _counterClockwise.Count < _half)
        || (_clockwise.Count > 0 && _counterClockwise.Count > 0
            && _self.ClockwiseDistance(_clockwise[^1].Key) >= _self.ClockwiseDistance(_counterClockwise[^1].Key));

    public bool IsEmpty => _clockwise.Count == 0;

    public bool Contains(NodeKey key) => IndexOf(_clockwise, key) >= 0 || IndexOf(_counterClockwise, key) >= 0;

    /// <summary>Whether <paramref name="key"/> would be taken as a member.</summary>
    public bool WouldAccept(NodeKey key)
    {
        if (key == _self || Contains(key))
        {
            return false;
        }

        return Fits(_clockwise, _self.ClockwiseDistance(key), clockwise: true)
            || Fits(_counterClockwise, key.ClockwiseDistance(_self), clockwise: false);
    }

    /// <summary>Adds a node to each side it belongs on. Returns true when the membership changed; nodes pushed out
    /// of both sides are added to <paramref name="evicted"/>.</summary>
    public bool TryAdd(NodeHandle handle, List<NodeHandle>? evicted = null)
    {
        if (handle.Key == _self)
        {
            return false;
        }

        var changed = Insert(_clockwise, handle, _self.ClockwiseDistance(handle.Key), clockwise: true, evicted)
            | Insert(_counterClockwise, handle, handle.Key.ClockwiseDistance(_self), clockwise: false, evicted);
        if (changed)
        {
            Version++;
            if (evicted is not null)
            {
                // A node pushed off one side may still sit on the other.
                evicted.RemoveAll(e => Contains(e.Key));
            }
        }

        return changed;
    }

    public bool Remove(NodeKey key)
    {
        var changed = false;
        var i = IndexOf(_clockwise, key);
        if (i >= 0)
        {
            _clockwise.RemoveAt(i);
            changed = true;
        }

        i = IndexOf(_counterClockwise, key);
        if (i >= 0)
        {
            _counterClockwise.RemoveAt(i);
            changed = true;
        }

        if (changed)
        {
            Version++;
        }

        return changed;
    }

    /// <summary>Whether <paramref name="key"/> lies between the farthest members of the two sides.</summary>
    public bool IsInRange(NodeKey key)
    {
        if (CoversRing)
        {
            return true;
        }

        // While one side is being repaired its known part still bounds the range; an empty side bounds it at us.
        var low = _counterClockwise.Count > 0 ? _counterClockwise[^1].Key : _self;
        var high = _clockwise.Count > 0 ? _clockwise[^1].Key : _self;
        return low.ClockwiseDistance(key) <= low.ClockwiseDistance(high);
    }

    /// <summary>The member closest to <paramref name="key"/>, or this node's key when none is closer. Skips
    /// <paramref name="exclude"/>.</summary>
    public NodeHandle? CloserThanSelf(NodeKey key, NodeKey exclude)
    {
        NodeHandle? best = null;
        var bestKey = _self;
        Scan(_clockwise);
        Scan(_counterClockwise);
        return best;

        void Scan(List<NodeHandle> side)
        {
            foreach (var member in side)
            {
                if (member.Key != exclude && key.IsCloser(member.Key, bestKey))
                {
                    best = member;
                    bestKey = member.Key;
                }
            }
        }
    }

    /// <summary>All members, each once: clockwise side first.</summary>
    public NodeHandle[] ToArray()
    {
        var result = new List<NodeHandle>(_clockwise.Count + _counterClockwise.Count);
        result.AddRange(_clockwise);
        foreach (var member in _counterClockwise)
        {
            if (IndexOf(_clockwise, member.Key) < 0)
            {
                result.Add(member);
            }
        }

        return [.. result];
    }

    private static int IndexOf(List<NodeHandle> side, NodeKey key)
    {
        for (var i = 0; i < side.Count; i++)
        {
            if (side[i].Key == key)
            {
                return i;
            }
        }

        return -1;
    }

    private UInt128 Distance(NodeKey key, bool clockwise) => clockwise ? _self.ClockwiseDistance(key) : key.ClockwiseDistance(_self);

    private bool Fits(List<NodeHandle> side, UInt128 distance, bool clockwise)
        => side.Count < _half || distance < Distance(side[^1].Key, clockwise);

    private bool Insert(List<NodeHandle> side, NodeHandle handle, UInt128 distance, bool clockwise, List<NodeHandle>? evicted)
    {
        var existing = IndexOf(side, handle.Key);
        if (existing >= 0)
        {
            // Same node, maybe a new address (restarted elsewhere): keep the newest.
            side[existing] = handle;
            return false;
        }

        if (!Fits(side, distance, clockwise))
        {
            return false;
        }

        var index = side.Count;
        while (index > 0 && distance < Distance(side[index - 1].Key, clockwise))
        {
            index--;
        }

        side.Insert(index, handle);
        if (side.Count > _half)
        {
            evicted?.Add(side[^1]);
            side.RemoveAt(side.Count - 1);
        }

        return true;
    }
}
