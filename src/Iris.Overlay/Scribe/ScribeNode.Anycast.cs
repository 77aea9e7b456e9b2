using Iris.Overlay.Transport;

namespace Iris.Overlay.Scribe;

// Anycast: choosing a member, a child's subtree or the tree above in proportion to capacity, trying another
// direction when one fails, and telling the sender when there is no member.
internal sealed partial class ScribeNode
{
    /// <summary>
    /// Chooses where an anycast goes from this tree node: a local member, a child's subtree or the rest of the tree
    /// above, at random in proportion to capacity, never back to <paramref name="cameFrom"/> nor to a direction that
    /// already failed. With nothing left, it goes back where it came from, or the sender hears there are no members.
    /// </summary>
    private void HandleAnycast(GroupState state, ScribeMessage message, NodeKey? cameFrom, HashSet<NodeKey> tried, Outbox outbox)
    {
        if (message.Hops >= MaxAnycastHops)
        {
            SendNoMembers(message, outbox);
            return;
        }

        var local = state.LocalCapacity;
        var total = local;
        foreach (var child in state.Children.Values)
        {
            if (Eligible(child.Node.Key) && child.Capacity > 0)
            {
                total += child.Capacity;
            }
        }

        var parent = state.Parent is { } p && Eligible(p.Key) && state.AboveCapacity > 0 ? p : (NodeHandle?)null;
        if (parent is not null)
        {
            total += state.AboveCapacity;
        }

        if (total <= 0)
        {
            if (cameFrom is { } back && !tried.Contains(back) && FindNeighbour(state, back) is { } neighbour)
            {
                // Capacities were stale: hand it back, and that node chooses again without this branch.
                SendAnycast(neighbour, message, cameFrom: null, tried, outbox);
            }
            else
            {
                SendNoMembers(message, outbox);
            }

            return;
        }

        var pick = _random.NextDouble() * total;
        if (pick < local)
        {
            foreach (var (member, capacity) in state.Members)
            {
                pick -= capacity;
                if (pick < 0)
                {
                    var name = member;
                    outbox.Add(() => _handler.OnAnycast(message.Group, name, message.Id, message.Payload, message.Origin));
                    return;
                }
            }

            var last = state.Members.Keys.Last();
            outbox.Add(() => _handler.OnAnycast(message.Group, last, message.Id, message.Payload, message.Origin));
            return;
        }

        pick -= local;
        foreach (var child in state.Children.Values)
        {
            if (Eligible(child.Node.Key) && child.Capacity > 0)
            {
                pick -= child.Capacity;
                if (pick < 0)
                {
                    SendAnycast(child.Node, message, cameFrom, tried, outbox);
                    return;
                }
            }
        }

        if (parent is { } up)
        {
            SendAnycast(up, message, cameFrom, tried, outbox);
        }
        else
        {
            SendNoMembers(message, outbox);
        }

        bool Eligible(NodeKey key) => key != cameFrom && !tried.Contains(key);
    }

    private static NodeHandle? FindNeighbour(GroupState state, NodeKey key) =>
        state.Parent is { } parent && parent.Key == key ? parent
        : state.Children.TryGetValue(key, out var child) ? child.Node
        : null;

    private void SendAnycast(NodeHandle to, ScribeMessage message, NodeKey? cameFrom, HashSet<NodeKey> tried, Outbox outbox)
    {
        _anycasts[message.Id] = new PendingAnycast(cameFrom, tried, _timers.NowMs);
        Send(to, message with { Hops = message.Hops + 1 }, reliable: true, outbox);
    }

    private void SendNoMembers(ScribeMessage message, Outbox outbox)
    {
        var notice = new ScribeMessage(ScribeMessageType.NoMembers, message.Group) { Id = message.Id };
        if (message.Origin.Key == Self.Key)
        {
            outbox.Add(() => _handler.OnNoMembers(message.Group, message.Id));
        }
        else
        {
            Send(message.Origin, notice, reliable: true, outbox);
        }
    }

    private sealed record PendingAnycast(NodeKey? CameFrom, HashSet<NodeKey> Tried, long SentMs);
}
