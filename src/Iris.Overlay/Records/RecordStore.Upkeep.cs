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
/// key, restarted) holds nothing: each node asks the nodes that come into its leaf set again (and now and then every
/// neighbour) which incarnation they run, and counts a member running another one as gone.
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

    /// <summary>Records whose successors one store asks per interval at most, after their value was stopped here for
    /// a configuration that does not count this node (<see cref="AskSuccessors"/>).</summary>
    private const int SuccessorQueriesPerInterval = 64;

    /// <summary>The request id of the queries <see cref="AskSuccessors"/> sends: never a round's (those count from 1)
    /// nor an incarnation query's (0).</summary>
    private const ulong SuccessorQuery = ulong.MaxValue;

    /// <summary>How long a node gone from the leaf set, and silent, is remembered: twice as long as Pastry remembers a
    /// dead node (<see cref="Pastry.PastryOptions.DeadNodeRetention"/>), so 20 minutes by default.</summary>
    private TimeSpan ForgetNodesAfter => 2 * _pastry.DeadNodeRetention;

    /// <summary>Intervals between two looks at every record held when the leaf set did not change meanwhile.</summary>
    private const int FullUpkeepIntervals = 8;

    private readonly Dictionary<NodeKey, Misplaced> _misplaced = [];

    // Records seeded here since the last look: a record moved onto this node may still be short of members (a record
    // of one acceptor is moved one member at a time), and its new acceptors look after it from their next tick.
    private readonly HashSet<NodeKey> _seeded = [];

    // The leaf set as last looked at: a node that comes into it again, or at another address, is asked its incarnation
    // at once (under a fixed node key, a restarted acceptor comes back as the same key holding nothing).
    private readonly Dictionary<NodeKey, NodeAddress> _leaves = [];
    private TimerQueue.Entry? _upkeep;
    private ulong _successorTurn;
    private bool _leafSetChanged = true;
    private int _upkeepTicks;

    private void StartUpkeep()
    {
        lock (_lock)
        {
            NoteLeaves(new Outbox());
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
        var outbox = new Outbox();
        lock (_lock)
        {
            if (_stopped)
            {
                return;
            }

            _leafSetChanged = true;
            NoteLeaves(outbox);
        }

        outbox.Run();
    }

    /// <summary>Asks the nodes that came into the leaf set, or are in it at another address, since it was last looked
    /// at, which incarnation they run (their answer fills <c>_incarnations</c>). Called at each change (a node declared
    /// dead and back) and at each tick (the leaf set takes a known key's new address in place, which is no change of its
    /// members).</summary>
    private void NoteLeaves(Outbox outbox)
    {
        var (ccw, cw) = _pastry.GetLeafSet();
        var now = cw.Concat(ccw).DistinctBy(h => h.Key).ToList();
        foreach (var node in now)
        {
            if (!_leaves.TryGetValue(node.Key, out var before) || before != node.Address)
            {
                AskIncarnation(node, outbox);
                _leafSetChanged = true;
            }
        }

        _leaves.Clear();
        var nowMs = _timers.NowMs;
        foreach (var node in now)
        {
            _leaves[node.Key] = node.Address;
            if (_heardAtMs.ContainsKey(node.Key))
            {
                _heardAtMs[node.Key] = nowMs;
            }
        }
    }

    /// <summary>
    /// Forgets the nodes that neither answered nor were in the leaf set for <see cref="ForgetNodesAfter"/>: their
    /// incarnation, address and leaving mark. Silos restart as new nodes (a new random key each run unless
    /// <c>Iris:Overlay:NodeKeyFile</c> fixes it), and these maps would otherwise hold every run ever heard of. What
    /// they say matters only for nodes in the leaf set: a member outside it counts as gone whatever is known of it, and
    /// a node that comes into the leaf set is asked its incarnation (and whether it leaves) before it is taken into a
    /// configuration, so a node forgotten and back is learnt again first.
    /// </summary>
    private void ForgetGoneNodes()
    {
        var horizon = _timers.NowMs - (long)ForgetNodesAfter.TotalMilliseconds;
        List<NodeKey>? gone = null;
        foreach (var (key, heard) in _heardAtMs)
        {
            if (heard < horizon && !_leaves.ContainsKey(key))
            {
                (gone ??= []).Add(key);
            }
        }

        foreach (var key in gone ?? [])
        {
            _heardAtMs.Remove(key);
            _incarnations.Remove(key);
            _incarnationAddresses.Remove(key);
            _leavingNodes.Remove(key);
        }
    }

    /// <summary>A query that names no record of interest: the answer only tells the node's incarnation.</summary>
    private void AskIncarnation(NodeHandle node, Outbox outbox) =>
        Send(node, new RecordMessage(RecordMessageType.Query, node.Key, Self.Key, 0), outbox);

    /// <summary>
    /// Asks the members of the next configuration of records whose value was stopped here, for a configuration that
    /// does not count this node (or of a later one they moved to), which configuration they hold (a <c>Query</c>): once
    /// a majority of one holds it, this acceptor drops the value (<see cref="NoteSuccessor"/>). Without this, a node kept a full copy of every
    /// record that ever moved off it, the last 64 write ids included.
    /// </summary>
    private void AskSuccessors(Outbox outbox)
    {
        var waiting = _acceptors.Where(a => a.Value.Forward is null && a.Value.Value.Next is { } next && !next.Contains(Self.Key, _incarnation)).ToList();
        if (waiting.Count == 0)
        {
            return;
        }

        // Round robin over the records waiting, so records whose successors never answer do not hold up the others.
        var first = (int)(_successorTurn % (ulong)waiting.Count);
        var asking = Math.Min(waiting.Count, SuccessorQueriesPerInterval);
        _successorTurn += (ulong)asking;
        for (var i = 0; i < asking; i++)
        {
            var (key, acceptor) = waiting[(first + i) % waiting.Count];
            var target = acceptor.SeededSuccessors is { } count && count.Named.Epoch == acceptor.Value.Next!.Epoch && count.Named.SameMembers(acceptor.Value.Next)
                ? count.Target
                : acceptor.Value.Next!;
            foreach (var member in target.Members.Where(m => m.Key != Self.Key))
            {
                Send(member.Handle, new RecordMessage(RecordMessageType.Query, key, Self.Key, SuccessorQuery), outbox);
            }
        }
    }

    /// <summary>Acceptor states of records stopped here for a configuration without this node: those still holding the
    /// value, and those retired (holding only where the record went); for tests and diagnostics.</summary>
    internal (int HoldingValue, int Retired) MovedOffAcceptors()
    {
        lock (_lock)
        {
            var moved = _acceptors.Values.Where(a => a.Value.Next is { } next && !next.Contains(Self.Key, _incarnation)).ToList();
            return (moved.Count(a => a.Forward is null), moved.Count(a => a.Forward is not null));
        }
    }

    /// <summary>While this node's acceptor of <paramref name="key"/> has not retired: the epoch of the configuration
    /// whose holders it counts, and how many said they hold it; for tests and diagnostics.</summary>
    internal (long Epoch, int Holders)? SuccessorsCounted(NodeKey key)
    {
        lock (_lock)
        {
            return _acceptors.TryGetValue(key, out var acceptor) && acceptor.SeededSuccessors is { } count
                ? (count.Target.Epoch, count.Members.Count)
                : null;
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

    /// <summary>Other nodes this store remembers (their incarnation, address, or that they said they leave), for tests
    /// and diagnostics.</summary>
    internal int NodesRemembered()
    {
        lock (_lock)
        {
            return _incarnations.Keys.Concat(_incarnationAddresses.Keys).Concat(_leavingNodes.Keys).Distinct().Count();
        }
    }

    private void OnUpkeep()
    {
        var reads = new List<NodeKey>();
        var outbox = new Outbox();
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

            NoteLeaves(outbox);
            ForgetGoneNodes();
            var view = Candidates();
            var wanted = Math.Min(ReplicationFactor, view.Count);
            if (wanted % 2 == 0)
            {
                wanted--;
            }

            var full = _leafSetChanged || ++_upkeepTicks % FullUpkeepIntervals == 0;
            if (!_leafSetChanged && full)
            {
                // Now and then every neighbour is asked again (those that said they leave too): one that restarted at
                // its address faster than the ring noticed it gone shows itself only so.
                foreach (var node in Neighbourhood().Where(h => h.Key != Self.Key))
                {
                    AskIncarnation(node, outbox);
                }
            }

            if (full)
            {
                AskSuccessors(outbox);
            }

            _leafSetChanged = false;
            var looked = full ? _acceptors.Keys.ToList() : _misplaced.Keys.Concat(_seeded).Distinct().ToList();
            _seeded.Clear();
            foreach (var key in looked)
            {
                if (!NeedsRead(key, view, wanted, out var rank))
                {
                    _misplaced.Remove(key);
                }
                else if (!_misplaced.ContainsKey(key))
                {
                    // The live member closest to the key reads first; the others only if it is still out of place.
                    _misplaced[key] = new Misplaced { DueMs = now + (rank * interval) };
                }
            }

            foreach (var (key, misplaced) in _misplaced)
            {
                if (reads.Count == UpkeepReadsPerInterval)
                {
                    break;
                }

                if (misplaced.DueMs <= now)
                {
                    misplaced.DueMs = now + (interval << Math.Min(misplaced.Reads++, 3));
                    reads.Add(key);
                }
            }
        }

        outbox.Run();
        foreach (var key in reads)
        {
            _ = UpkeepReadAsync(key);
        }
    }

    /// <summary>
    /// Whether this node should read the record: its configuration (the latest this node knows) counts this node's
    /// acceptor, and its members are not the <paramref name="wanted"/> nodes closest to the key among this node and its
    /// leaf set, or one of them is gone: not in the leaf set at its address, or running another incarnation there than
    /// the member's (restarted under its key). <paramref name="rank"/> is where this node stands, by distance to the
    /// key, among the members alive.
    /// </summary>
    private bool NeedsRead(NodeKey key, List<NodeHandle> view, int wanted, out int rank)
    {
        rank = 0;
        if (!_acceptors.TryGetValue(key, out var acceptor)
            || RecordConfiguration.Latest([KnownConfigurationLocked(key), acceptor.Value.Next]) is not { } configuration
            || !configuration.Contains(Self.Key, _incarnation))
        {
            return false;
        }

        // In place: as many members as wanted, each alive, and no other node in view closer to the key than the
        // farthest of them. Checked without sorting the view for each record: a node holds many.
        var members = configuration.Members;
        var inPlace = members.Length == wanted;
        var farthest = Self.Key;
        foreach (var member in members)
        {
            if (member.Key != Self.Key && !Alive(member, view))
            {
                inPlace = false;
                continue;
            }

            if (key.IsCloser(farthest, member.Key))
            {
                farthest = member.Key;
            }

            if (key.IsCloser(member.Key, Self.Key))
            {
                rank++;
            }
        }

        return !inPlace || view.Exists(h => key.IsCloser(h.Key, farthest) && !Array.Exists(members, m => m.Key == h.Key));
    }

    /// <summary>Whether another node's member of a configuration is alive by what this node knows: in the leaf set at
    /// the member's address, and not known to run another incarnation there.</summary>
    private bool Alive(RecordMember member, List<NodeHandle> view) =>
        view.Exists(h => h.Key == member.Key && h.Address == member.Address)
        && !(_incarnations.TryGetValue(member.Key, out var incarnation) && incarnation != member.Incarnation
            && _incarnationAddresses.GetValueOrDefault(member.Key) == member.Address);

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
    }
}
