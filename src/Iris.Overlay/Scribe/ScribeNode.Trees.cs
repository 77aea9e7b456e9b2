using Iris.Overlay.Transport;

namespace Iris.Overlay.Scribe;

// Trees: joining a group's tree, adopting children, parents' and children's heartbeats with the capacity they
// carry, becoming or ceasing to be the root, orphans re-joining, and pruning what is empty.
internal sealed partial class ScribeNode
{
    /// <summary>Adopts <paramref name="joiner"/> as a child. Returns false (pass the join on) when the joiner is
    /// this node's ancestor, which would close a loop.</summary>
    private bool HandleJoin(NodeKey group, NodeHandle joiner, bool atRoot, Outbox outbox)
    {
        if (joiner.Key == Self.Key)
        {
            return true;
        }

        var state = _groups.GetValueOrDefault(group);
        if (state is not null && !atRoot && Array.IndexOf(state.Path, joiner.Key) >= 0)
        {
            return false;
        }

        var created = state is null;
        state ??= GetOrAdd(group);
        if (atRoot && !state.IsRoot)
        {
            BecomeRoot(state, outbox);
        }

        var now = _timers.NowMs;
        if (state.Children.TryGetValue(joiner.Key, out var child))
        {
            child.Node = joiner;
            child.HeardMs = now;
        }
        else
        {
            state.Children[joiner.Key] = new GroupState.Child(joiner, now);
        }

        Send(joiner, new ScribeMessage(ScribeMessageType.JoinAck, group) { Path = state.Path }, reliable: true, outbox);
        if (created && !state.Attached)
        {
            StartJoin(state, outbox);
        }

        outbox.Changed(group);
        return true;
    }

    private void OnJoinAck(GroupState? state, NodeHandle from, ScribeMessage ack, Outbox outbox)
    {
        if (state is null || state.IsRoot || Array.IndexOf(ack.Path, Self.Key) >= 0)
        {
            // Not ours to take (we left, became root, or it would close a loop): tell the would-be parent.
            Send(from, new ScribeMessage(ScribeMessageType.Leave, ack.Group), reliable: true, outbox);
            if (state is not null && !state.IsRoot)
            {
                state.Joining = false;
            }

            return;
        }

        if (state.Parent is { } old && old.Key != from.Key)
        {
            Send(old, new ScribeMessage(ScribeMessageType.Leave, state.Key), reliable: true, outbox);
        }

        state.Parent = from;
        state.Joining = false;
        state.ParentHeardMs = _timers.NowMs;
        state.Path = [.. ack.Path, Self.Key];
        outbox.Changed(state.Key);
    }

    private void OnParentBeat(GroupState? state, NodeHandle from, ScribeMessage beat, Outbox outbox)
    {
        if (state?.Parent is not { } parent || parent.Key != from.Key)
        {
            Send(from, new ScribeMessage(ScribeMessageType.Leave, beat.Group), reliable: true, outbox);
            return;
        }

        if (Array.IndexOf(beat.Path, Self.Key) >= 0)
        {
            Send(from, new ScribeMessage(ScribeMessageType.Leave, beat.Group), reliable: true, outbox);
            Orphan(state, "the tree looped through this node", outbox);
            return;
        }

        state.ParentHeardMs = _timers.NowMs;
        state.Path = [.. beat.Path, Self.Key];
        state.AboveCapacity = beat.Capacity;
    }

    private void OnChildReport(GroupState? state, NodeHandle from, ScribeMessage report, Outbox outbox)
    {
        if (state is null || Array.IndexOf(state.Path, from.Key) >= 0 || (state.Parent is { } parent && parent.Key == from.Key))
        {
            Send(from, new ScribeMessage(ScribeMessageType.Reject, report.Group), reliable: true, outbox);
            return;
        }

        if (!state.Children.TryGetValue(from.Key, out var child))
        {
            // It still takes us for its parent (we lost track, say after it went silent for a while): take it back.
            child = new GroupState.Child(from, _timers.NowMs);
            state.Children[from.Key] = child;
            outbox.Changed(state.Key);
        }

        if (child.Capacity != report.Capacity)
        {
            child.Capacity = report.Capacity;
            outbox.Changed(state.Key);
        }

        child.Node = from;
        child.HeardMs = _timers.NowMs;
    }

    private void StartJoin(GroupState state, Outbox outbox)
    {
        if (_pastry.IsRootFor(state.Key))
        {
            BecomeRoot(state, outbox);
            return;
        }

        state.Joining = true;
        state.JoinSentMs = _timers.NowMs;
        var join = new ScribeMessage(ScribeMessageType.Join, state.Key).Encode();
        var key = state.Key;
        outbox.Add(() => _pastry.Route(key, Channel, join));
    }

    private void BecomeRoot(GroupState state, Outbox outbox)
    {
        if (state.Parent is { } old)
        {
            Send(old, new ScribeMessage(ScribeMessageType.Leave, state.Key), reliable: true, outbox);
        }

        state.Parent = null;
        state.IsRoot = true;
        state.Joining = false;
        state.Path = [Self.Key];
        state.AboveCapacity = 0;
        Log.BecameRoot(_logger, Self, state.Key);
        outbox.Changed(state.Key);
    }

    private void Orphan(GroupState state, string reason, Outbox outbox)
    {
        if (state.Parent is { } parent)
        {
            Log.Orphaned(_logger, Self, parent, state.Key, reason);
        }

        state.Parent = null;
        state.Joining = false;
        state.Path = [];
        state.AboveCapacity = 0;
        outbox.Changed(state.Key);
    }

    private void Prune(GroupState state, Outbox outbox)
    {
        if (state.Parent is { } parent)
        {
            Send(parent, new ScribeMessage(ScribeMessageType.Leave, state.Key), reliable: true, outbox);
        }

        _groups.Remove(state.Key);
        outbox.Changed(state.Key);
    }

    private GroupState GetOrAdd(NodeKey group)
    {
        if (!_groups.TryGetValue(group, out var state))
        {
            state = new GroupState(group);
            _groups[group] = state;
        }

        return state;
    }

    private void OnTick()
    {
        var outbox = new Outbox();
        lock (_lock)
        {
            if (_stopped)
            {
                return;
            }

            var now = _timers.NowMs;
            foreach (var state in _groups.Values.ToList())
            {
                Maintain(state, now, outbox);
            }

            List<ScribeMessageId>? stale = null;
            foreach (var (id, pending) in _anycasts)
            {
                if (now - pending.SentMs > _silenceMs * 4)
                {
                    (stale ??= []).Add(id);
                }
            }

            stale?.ForEach(id => _anycasts.Remove(id));
            _tick.ScheduleAt(now + _heartbeatMs);
        }

        Flush(outbox);
    }

    private void Maintain(GroupState state, long now, Outbox outbox)
    {
        List<NodeKey>? silent = null;
        foreach (var child in state.Children.Values)
        {
            if (now - child.HeardMs > _silenceMs)
            {
                (silent ??= []).Add(child.Node.Key);
            }
        }

        if (silent is not null)
        {
            silent.ForEach(key => state.Children.Remove(key));
            outbox.Changed(state.Key);
        }

        if (state.IsEmpty)
        {
            Prune(state, outbox);
            return;
        }

        // The tree's root must be the key's root: a closer node may have joined the ring, or the root died.
        var isKeyRoot = _pastry.IsRootFor(state.Key);
        if (state.IsRoot && !isKeyRoot)
        {
            Log.LostRoot(_logger, Self, state.Key);
            state.IsRoot = false;
            state.Path = [];
            StartJoin(state, outbox);
        }
        else if (!state.IsRoot && isKeyRoot)
        {
            BecomeRoot(state, outbox);
        }

        if (state.Parent is { } parent && now - state.ParentHeardMs > _silenceMs)
        {
            Orphan(state, $"silent for {_silenceMs} ms", outbox);
        }

        if (!state.Attached && (!state.Joining || now - state.JoinSentMs > _joinTimeoutMs))
        {
            StartJoin(state, outbox);
        }

        if (state.Parent is { } up)
        {
            Send(up, new ScribeMessage(ScribeMessageType.ChildReport, state.Key) { Capacity = state.LocalCapacity + state.ChildrenCapacity }, reliable: false, outbox);
        }

        if (state.Children.Count > 0)
        {
            var everything = state.LocalCapacity + state.ChildrenCapacity + (state.IsRoot ? 0 : state.AboveCapacity);
            foreach (var child in state.Children.Values)
            {
                Send(child.Node, new ScribeMessage(ScribeMessageType.ParentBeat, state.Key)
                {
                    Path = state.Path,
                    Capacity = Math.Max(0, everything - child.Capacity),
                }, reliable: false, outbox);
            }
        }
    }
}
