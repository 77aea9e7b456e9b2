using Iris.Overlay.Kernel;
using Iris.Overlay.Timing;
using Iris.Overlay.Transport;

namespace Iris.Overlay.Records;

/// <summary>
/// The acceptor side's upkeep. A root moves a record only when an operation reaches it, so a record nobody used kept
/// the acceptors it had at its last operation: written in a ring of two, it stayed on one node after the ring grew,
/// and an idle record whose acceptors crashed one by one lost its majority though the ring had live nodes to spare.
/// So each acceptor compares the configuration of every record it holds with the nodes it sees closest to the key,
/// and reads a record that is out of place: the read goes to the root, which moves the record as before any
/// operation (one member per <see cref="ReconfigureInterval"/>).
/// </summary>
internal sealed partial class RecordStore
{
    /// <summary>How often an acceptor looks at its records; a record found out of place is read at once by the
    /// acceptor closest to its key, by the next one an interval later, and so on, and again (further apart each time)
    /// while it stays out of place.</summary>
    public static readonly TimeSpan UpkeepInterval = ReconfigureInterval;

    /// <summary>Upkeep reads one store has in flight at most: a silo that sees many records out of place at once (a
    /// neighbour crashed) spreads their moves over the next intervals instead of sending them all together.</summary>
    private const int MaxUpkeepReads = 16;

    /// <summary>Ticks between two looks at every record held when the leaf set did not change meanwhile (a record
    /// seeded here in a configuration this node's view does not share is found out of place by them).</summary>
    private const int FullUpkeepTicks = 10;

    private readonly Dictionary<NodeKey, Misplaced> _misplaced = [];
    private TimerQueue.Entry? _upkeep;
    private bool _leafSetChanged = true;
    private int _upkeepTicks;
    private int _upkeepReads;

    private void StartUpkeep()
    {
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
        lock (_lock)
        {
            _leafSetChanged = true;
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

            var view = Neighbourhood();
            var full = _leafSetChanged || ++_upkeepTicks % FullUpkeepTicks == 0;
            _leafSetChanged = false;
            foreach (var key in full ? _acceptors.Keys.ToList() : _misplaced.Keys.ToList())
            {
                if (Rank(key, view) is not { } rank)
                {
                    _misplaced.Remove(key);
                }
                else if (!_misplaced.ContainsKey(key))
                {
                    _misplaced[key] = new Misplaced { DueMs = now + (rank * interval) };
                }
            }

            foreach (var (key, misplaced) in _misplaced)
            {
                if (_upkeepReads >= MaxUpkeepReads)
                {
                    break;
                }

                if (misplaced.Reading || misplaced.DueMs > now)
                {
                    continue;
                }

                misplaced.Reading = true;
                misplaced.DueMs = now + (interval << Math.Min(misplaced.Reads++, 3));
                _upkeepReads++;
                reads.Add(key);
            }
        }

        foreach (var key in reads)
        {
            _ = UpkeepReadAsync(key);
        }
    }

    /// <summary>
    /// Where this node stands, by distance to the key, among the record's members it sees alive, when the record is
    /// out of place: its configuration (the latest this node knows) counts this node's acceptor, and its members are
    /// not the nodes closest to the key among this node and its leaf set. Null when the record is in place, or not
    /// this node's to look after (it was moved off this node).
    /// </summary>
    private int? Rank(NodeKey key, List<NodeHandle> view)
    {
        if (!_acceptors.TryGetValue(key, out var acceptor)
            || RecordConfiguration.Latest([KnownConfigurationLocked(key), acceptor.Value.Next]) is not { } configuration
            || !configuration.Contains(Self.Key, _incarnation))
        {
            return null;
        }

        var wanted = Closest(key, [.. view], h => h.Key);
        if (wanted.Count == configuration.Members.Length && configuration.Members.All(m => wanted.Any(h => h.Key == m.Key)))
        {
            return null;
        }

        return configuration.Members.Where(m => view.Any(h => h.Key == m.Key))
            .Count(m => m.Key != Self.Key && key.IsCloser(m.Key, Self.Key));
    }

    private async Task UpkeepReadAsync(NodeKey key)
    {
        try
        {
            await ReadAsync(key).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RecordTimeoutException or RecordUnavailableException or OverlayNodeStoppedException or ObjectDisposedException)
        {
            // Read again at the next due time while the record stays out of place.
        }
        finally
        {
            lock (_lock)
            {
                _upkeepReads--;
                if (_misplaced.TryGetValue(key, out var misplaced))
                {
                    misplaced.Reading = false;
                }
            }
        }
    }

    /// <summary>A record found out of place: when to read it next, and how often it was read meanwhile.</summary>
    private sealed class Misplaced
    {
        public long DueMs { get; set; }

        public int Reads { get; set; }

        public bool Reading { get; set; }
    }
}
