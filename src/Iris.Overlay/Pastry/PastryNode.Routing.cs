using Iris.Overlay.Diagnostics;
using Iris.Overlay.Kernel;
using Iris.Overlay.Transport;

namespace Iris.Overlay.Pastry;

// Routing: Pastry's next-hop rule, hops sent and acknowledged, retransmission and rerouting when a hop is not
// acknowledged, and delivery to the channel's handler.
internal sealed partial class PastryNode
{
    /// <summary>Acknowledges a routed message and decides whether this node takes it further. False for a
    /// retransmitted duplicate or our own join coming back.</summary>
    private bool AcceptRoute(RouteMessage message)
    {
        _transport.Send(message.Sender.Address, new RouteAckMessage { Sender = Self, HopId = message.HopId });
        if (message.HopId != 0 && !_recentHops.Add((message.Sender.Key, message.HopId)))
        {
            // A retransmission of a hop we already took (its acknowledgement was lost): acknowledged again, not
            // routed again.
            return false;
        }

        var isJoin = message.Kind == RouteKind.Join;
        if (isJoin && message.Origin.Key == Self.Key)
        {
            return false;
        }

        // A joining node is not part of the ring until the root has answered it: do not route to it yet.
        if (!(isJoin && message.Sender.Key == message.Origin.Key))
        {
            ConsiderDirect(message.Sender);
        }

        return true;
    }

    private static RouteDelivery Delivery(RouteMessage message) =>
        new(message.Key, message.Origin, message.Channel, message.Payload, message.Hops);

    private void OnDirect(DirectMessage message, Outbox callbacks)
    {
        if (message.HopId != 0)
        {
            _transport.Send(message.Sender.Address, new RouteAckMessage { Sender = Self, HopId = message.HopId });
            if (!_recentHops.Add((message.Sender.Key, message.HopId)))
            {
                return;
            }
        }

        ConsiderDirect(message.Sender);
        if (_handlers.GetValueOrDefault(message.Channel) is { } handler)
        {
            var delivery = new DirectDelivery(message.Sender, message.Channel, message.Payload);
            callbacks.Add(() => handler.ReceiveDirect(delivery));
        }
    }

    private void RouteOnward(RouteMessage message, int attempts, Outbox callbacks)
    {
        var isJoin = message.Kind == RouteKind.Join;
        var next = NextHop(message.Key, isJoin ? message.Origin.Key : Self.Key);
        if (isJoin && (next is null || attempts == 0))
        {
            SendJoinState(message.Origin, isRoot: next is null);
        }

        if (next is null)
        {
            if (!isJoin)
            {
                OverlayMetrics.Hops.Record(message.Hops);
                DeliverLater(Delivery(message), callbacks);
            }

            return;
        }

        if (message.Hops >= _options.MaxHops)
        {
            OverlayMetrics.RoutesDropped.Add(1);
            Log.RouteDropped(_logger, Self, message.Key, message.Channel, $"it already took {message.Hops} hops (limit {_options.MaxHops})");
            return;
        }

        OverlayMetrics.MessagesRouted.Add(1);
        SendHop(message, next.Value, ++_hopSequence, attempts, retransmits: 0);
    }

    private void SendHop(OverlayMessage message, NodeHandle to, ulong hopId, int attempts, int retransmits)
    {
        var now = NowMs();
        _pending[hopId] = new PendingHop(message, to, now + _ackTimeoutMs, attempts, retransmits);
        if (_nextAckCheckMs == long.MaxValue)
        {
            _nextAckCheckMs = now + _ackCheckMs;
        }

        _transport.Send(to.Address, message switch
        {
            RouteMessage route => route.NextHop(Self, hopId),
            DirectMessage direct => direct.WithHopId(hopId),
            _ => throw new InvalidOperationException($"{message.Type} is not sent hop by hop."),
        });
    }

    /// <summary>
    /// Pastry's routing rule: inside the leaf set's range, the member closest to the key; else the routing-table
    /// entry sharing one more digit with the key; else (a hole in the table) any known node closer to the key.
    /// Returns null when this node is the root as far as it knows.
    /// </summary>
    private NodeHandle? NextHop(NodeKey key, NodeKey exclude)
    {
        if (_leafSet.IsInRange(key))
        {
            return _leafSet.CloserThanSelf(key, exclude);
        }

        if (!_table.TryGetSlot(key, out var row, out var column))
        {
            return null;
        }

        if (_table.Get(row, column) is { } entry && entry.Key != exclude)
        {
            return entry;
        }

        // The rare case. Prefer nodes that share at least as many digits with the key as we do: every hop then
        // either lengthens the shared prefix or, at equal prefix, gets numerically closer, so routes cannot loop.
        // Only when no such node is closer does any closer node do.
        NodeHandle? best = null;
        NodeHandle? fallback = null;
        foreach (var candidate in _leafSet.Clockwise.Concat(_leafSet.CounterClockwise).Concat(_table.All()))
        {
            if (candidate.Key == exclude || !key.IsCloser(candidate.Key, Self.Key))
            {
                continue;
            }

            if (candidate.Key.SharedPrefixLength(key) >= row)
            {
                if (best is null || key.IsCloser(candidate.Key, best.Value.Key))
                {
                    best = candidate;
                }
            }
            else if (fallback is null || key.IsCloser(candidate.Key, fallback.Value.Key))
            {
                fallback = candidate;
            }
        }

        return best ?? fallback;
    }

    private void CheckAcks(long now, Outbox callbacks)
    {
        List<(ulong, PendingHop)>? expired = null;
        foreach (var (hopId, hop) in _pending)
        {
            if (hop.DeadlineMs <= now)
            {
                (expired ??= []).Add((hopId, hop));
                _pending.Remove(hopId);
            }
        }

        if (expired is null)
        {
            _nextAckCheckMs = _pending.Count > 0 ? now + _ackCheckMs : long.MaxValue;
            return;
        }

        _nextAckCheckMs = now + _ackCheckMs;

        foreach (var (hopId, hop) in expired)
        {
            if (hop.Retransmits < _options.HopRetransmits)
            {
                // Same node, same hop id: the receiver recognises a duplicate if only the acknowledgement was lost.
                SendHop(hop.Message, hop.To, hopId, hop.Attempts, hop.Retransmits + 1);
                continue;
            }

            if (_leafSet.Contains(hop.To.Key) || _table.Contains(hop.To.Key))
            {
                DeclareDead(hop.To, $"hop not acknowledged within {_options.HopAckTimeout}");
            }

            if (hop.Message is DirectMessage direct)
            {
                if (_handlers.GetValueOrDefault(direct.Channel) is { } handler)
                {
                    var to = hop.To;
                    callbacks.Add(() => handler.DirectFailed(to, direct.Channel, direct.Payload));
                }

                continue;
            }

            var route = (RouteMessage)hop.Message;
            if (hop.Attempts + 1 >= _options.MaxRouteAttempts)
            {
                OverlayMetrics.RoutesDropped.Add(1);
                Log.RouteDropped(_logger, Self, route.Key, route.Channel, $"{hop.Attempts + 1} next hops failed to acknowledge");
                continue;
            }

            OverlayMetrics.Reroutes.Add(1);
            RouteOnward(route, hop.Attempts + 1, callbacks);
        }
    }

    private void DeliverLater(RouteDelivery delivery, Outbox callbacks)
    {
        if (_handlers.GetValueOrDefault(delivery.Channel) is not { } handler)
        {
            Log.RouteDropped(_logger, Self, delivery.Key, delivery.Channel, "no handler is registered for the channel");
            return;
        }

        callbacks.Add(() => handler.Deliver(delivery));
    }

    /// <summary>A hop or direct message awaiting its acknowledgement. For a route, the message as this node received
    /// it (the next hop's copy is made when sending).</summary>
    private readonly record struct PendingHop(OverlayMessage Message, NodeHandle To, long DeadlineMs, int Attempts, int Retransmits);
}
