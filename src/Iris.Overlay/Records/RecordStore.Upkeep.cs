using Iris.Overlay.Kernel;
using Iris.Overlay.Timing;
using Iris.Overlay.Transport;

namespace Iris.Overlay.Records;

/// <summary>
/// The acceptor side's upkeep. A root moves a record only when an operation reaches it, so a record nobody used kept
/// the acceptors it had at its last operation: written in a ring of two, it stayed on one node after the ring grew,
/// and an idle record whose acceptors crashed one by one lost its majority though the ring had live nodes to spare.
/// So each acceptor compares the configuration of the records it holds with the nodes it sees closest to their keys,
/// and reads a record that is out of place: the read goes to the root, which moves the record as before any
/// operation (one member per <see cref="ReconfigureInterval"/>). A member that comes back under its node key (a fixed
/// key, restarted) looks in place but may hold nothing: the record is read twice, the first read showing the root the
/// member's new incarnation, the second moving the record.
/// </summary>
/// <remarks>
/// Everything here runs at the node's timer under the store's lock, and nothing waits for the reads it starts, so a
/// simulated ring stays deterministic.
/// </remarks>
internal sealed partial class RecordStore
{
    /// <summary>How often an acceptor looks at its records: a little longer than <see cref="ReconfigureInterval"/>, so a
    /// read that follows a move finds the root allowed to make the next one.</summary>
    public static readonly TimeSpan UpkeepInterval = ReconfigureInterval + TimeSpan.FromSeconds(1);

    /// <summary>Upkeep reads one store starts per interval at most: a silo that finds many records out of place at
    /// once (a neighbour crashed) spreads their moves over the next intervals.</summary>
    private const int UpkeepReadsPerInterval = 64;

    /// <summary>Intervals between two looks at every record held when the leaf set did not change meanwhile.</summary>
    private const int FullUpkeepIntervals = 8;

    private readonly Dictionary<NodeKey, Misplaced> _misplaced = [];

    // Records seeded here since the last look: a record moved onto this node may still be short of members (a record
    // of one acceptor is moved one member at a time), and its new acceptors look after it from their next tick.
    private readonly HashSet<NodeKey> _seeded = [];
    // The leaf set at the last change, and the nodes that came into it since the last look (or came back at another
    // address): under a fixed node key, a restarted acceptor comes back as the same key holding nothing.
    private readonly Dictionary<NodeKey, NodeAddress> _leaves = [];
    private readonly HashSet<NodeKey> _arrived = [];
    private TimerQueue.Entry? _upkeep;
    private bool _leafSetChanged = true;
    private int _upkeepTicks;

    private void StartUpkeep()
    {
        var (ccw, cw) = _pastry.GetLeafSet();
        foreach (var leaf in cw.Concat(ccw))
        {
            _leaves[leaf.Key] = leaf.Address;
        }

        _upkeep = _timers.Create(OnUpkeep);
        _upkeep.ScheduleAt(_timers.NowMs + (long)UpkeepInterval.TotalMilliseconds);
        _pastry.LeafSetChanged += OnLeafSetChanged;
    }

    private void StopUpkeep()
    {
        _pastry.LeafSetChanged -= OnLeafSetChanged;
        _upkeep?.Cancel();
    }

    private void OnLeafSetChanged()
    {
        var (ccw, cw) = _pastry.GetLeafSet();
        lock (_lock)
        {
            _leafSetChanged = true;
            NoteLeaves(ccw, cw);
        }
    }

    /// <summary>Notes the nodes that came into the leaf set, or are in it at another address, since it was last looked
    /// at. Called at each change (a node declared dead and back) and at each tick (the leaf set takes a known key's new
    /// address in place, which is no change of its members).</summary>
    private void NoteLeaves(NodeHandle[] ccw, NodeHandle[] cw)
    {
        var now = cw.Concat(ccw).DistinctBy(h => h.Key).ToDictionary(h => h.Key, h => h.Address);
        foreach (var (key, address) in now)
        {
            if (!_leaves.TryGetValue(key, out var before) || before != address)
            {
                _arrived.Add(key);
                _leafSetChanged = true;
            }
        }

        _leaves.Clear();
        foreach (var (key, address) in now)
        {
            _leaves[key] = address;
        }
    }

    /// <summary>Records out of place by this node's view, for tests and diagnostics.</summary>
    internal int MisplacedRecords()
    {
        lock (_lock)
        {
            return _misplaced.Count;
        }
    }

    private void OnUpkeep()
    {
        var reads = new List<NodeKey>();
        var (ccw, cw) = _pastry.GetLeafSet();
        lock (_lock)
        {
            if (_stopped)
            {
                return;
            }

            var now = _timers.NowMs;
            var interval = (long)UpkeepInterval.TotalMilliseconds;
            _upkeep!.ScheduleAt(now + interval);
            if (_leaving)
            {
                return;
            }

            NoteLeaves(ccw, cw);
            var view = Neighbourhood();
            var wanted = Math.Min(ReplicationFactor, view.Count);
            if (wanted % 2 == 0)
            {
                wanted--;
            }

            var full = _leafSetChanged || ++_upkeepTicks % FullUpkeepIntervals == 0;
            _leafSetChanged = false;
            var looked = full ? _acceptors.Keys.ToList() : _misplaced.Keys.Concat(_seeded).Distinct().ToList();
            _seeded.Clear();
            foreach (var key in looked)
            {
                if (!NeedsRead(key, view, wanted, out var rank, out var arrived) && _misplaced.GetValueOrDefault(key) is not { Confirm: > 0 })
                {
                    _misplaced.Remove(key);
                }
                else if (!_misplaced.ContainsKey(key))
                {
                    // The live member closest to the key reads first; the others only if it is still out of place. A
                    // member that arrived again may hold nothing: the root learns so from the first read, and moves
                    // the record at the second.
                    _misplaced[key] = new Misplaced { DueMs = now + (rank * interval), Confirm = arrived ? 2 : 0 };
                }
            }

            _arrived.Clear();

            foreach (var (key, misplaced) in _misplaced)
            {
                if (reads.Count == UpkeepReadsPerInterval)
                {
                    break;
                }

                if (misplaced.DueMs <= now)
                {
                    misplaced.DueMs = now + (interval << Math.Min(misplaced.Reads++, 3));
                    misplaced.Confirm = Math.Max(0, misplaced.Confirm - 1);
                    reads.Add(key);
                }
            }
        }

        foreach (var key in reads)
        {
            _ = UpkeepReadAsync(key);
        }
    }

    /// <summary>
    /// Whether this node should read the record: its configuration (the latest this node knows) counts this node's
    /// acceptor, and its members are not the <paramref name="wanted"/> nodes closest to the key among this node and its
    /// leaf set, or one of them <paramref name="arrived"/> again since the last look (checked by the closest member that
    /// did not). <paramref name="rank"/> is where this node stands, by distance to the key, among the members it sees
    /// alive that did not arrive.
    /// </summary>
    private bool NeedsRead(NodeKey key, List<NodeHandle> view, int wanted, out int rank, out bool arrived)
    {
        rank = 0;
        arrived = false;
        if (!_acceptors.TryGetValue(key, out var acceptor)
            || RecordConfiguration.Latest([KnownConfigurationLocked(key), acceptor.Value.Next]) is not { } configuration
            || !configuration.Contains(Self.Key, _incarnation))
        {
            return false;
        }

        // In place: as many members as wanted, each in view, and no other node in view closer to the key than the
        // farthest of them. Checked without sorting the view for each record: a node holds many.
        var members = configuration.Members;
        var inPlace = members.Length == wanted;
        var farthest = Self.Key;
        foreach (var member in members)
        {
            arrived |= _arrived.Contains(member.Key);
            if (!view.Exists(h => h.Key == member.Key))
            {
                inPlace = false;
                continue;
            }

            if (key.IsCloser(farthest, member.Key))
            {
                farthest = member.Key;
            }

            if (key.IsCloser(member.Key, Self.Key) && !_arrived.Contains(member.Key))
            {
                rank++;
            }
        }

        inPlace = inPlace && !view.Exists(h => key.IsCloser(h.Key, farthest) && !Array.Exists(members, m => m.Key == h.Key));
        // An arrival is checked by the member closest to the key that did not arrive: one read in place of five.
        arrived &= rank == 0;
        return !inPlace || arrived;
    }

    /// <summary>Reads the record, for the root to move it; a failure only means it is read again when next due.</summary>
    private async Task UpkeepReadAsync(NodeKey key)
    {
        try
        {
            await ReadAsync(key).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RecordTimeoutException or RecordUnavailableException or OverlayNodeStoppedException or ObjectDisposedException or InvalidOperationException)
        {
        }
    }

    /// <summary>A record found out of place: when to read it next, and how often it was read meanwhile.</summary>
    private sealed class Misplaced
    {
        public long DueMs { get; set; }

        public int Reads { get; set; }

        /// <summary>Reads still to make though the record looks in place: one of its members arrived again.</summary>
        public int Confirm { get; set; }
    }
}
