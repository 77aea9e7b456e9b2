using Iris.Overlay.Transport;

namespace Iris.Overlay.Pastry;

// Joining: the join routed toward the node's own key, the state the nodes on its route send back, and retries.
internal sealed partial class PastryNode
{
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
}
