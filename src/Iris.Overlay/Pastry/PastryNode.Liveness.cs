using Iris.Overlay.Kernel;
using Iris.Overlay.Transport;

namespace Iris.Overlay.Pastry;

// Liveness: the node's one timer, heartbeats within the leaf set, probes of nodes heard of second hand, and
// first-hand knowledge taken into the tables.
internal sealed partial class PastryNode
{
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

    private sealed class Peer
    {
        public long LastHeardMs;
        public bool PingReceived;
        public uint SeenTheirs;
        public uint TheyHaveSeenMine;
    }
}
