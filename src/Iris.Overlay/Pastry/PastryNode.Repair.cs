using Iris.Overlay.Diagnostics;
using Iris.Overlay.Transport;

namespace Iris.Overlay.Pastry;

// Repair: taking dead or departed nodes out of the tables, refilling the leaf set and routing-table rows, the
// periodic routing-table check and the graveyard of dead nodes.
internal sealed partial class PastryNode
{
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

    private readonly record struct Grave(NodeHandle Node, long ExpiresMs);
}
