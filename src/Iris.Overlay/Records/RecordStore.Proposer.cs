using Iris.Overlay.Kernel;
using Iris.Overlay.Transport;

namespace Iris.Overlay.Records;

/// <summary>
/// The proposer side, run by a record's root: operations queue per record and are proposed one at a time. A round
/// is a prepare and an accept in the record's configuration, each needing a majority of its acceptors; before it,
/// a root that does not know the configuration asks its neighbours, and a root whose view of the nodes closest to the
/// key differs from the configuration first stops the old configuration and seeds a new one.
/// </summary>
internal sealed partial class RecordStore
{
    private readonly Dictionary<NodeKey, Slot> _slots = [];

    // The slots with an operation queued or in progress, in the order they became so: the only ones the timer has to
    // look at. A node keeps a slot for every record it was ever root of, and scanning them all under the lock at each
    // record message made registering N names cost O(N²).
    private readonly List<Slot> _busy = [];
    private readonly Dictionary<NodeKey, ulong> _incarnations = [];

    // Nodes that said they are leaving (handing their records over), with the incarnation that said so: never taken
    // into a configuration again, and moved off like dead members. A node back under its key is another incarnation.
    private readonly Dictionary<NodeKey, ulong> _leavingNodes = [];

    // Where each incarnation in _incarnations answered from: a node back under its key at another address (restarted
    // elsewhere) is another acceptor, whatever this node last heard from that key.
    private readonly Dictionary<NodeKey, NodeAddress> _incarnationAddresses = [];

    // When each node in the three maps above last answered, or was last seen in the leaf set: a node gone from both for
    // ForgetNodesAfter is forgotten (RecordStore.Upkeep.cs), so they hold the nodes around, not every run ever heard.
    private readonly Dictionary<NodeKey, long> _heardAtMs = [];
    private ulong _rounds;

    /// <summary>A request reached this node as the key's root: queue it, unless it is a retry of one queued.</summary>
    private void Propose(RecordMessage request, Outbox outbox)
    {
        if (!_slots.TryGetValue(request.Key, out var slot))
        {
            slot = new Slot(request.Key);
            _slots[request.Key] = slot;
        }

        // A requester that knows a later configuration than this root (a new root, or one across a network cut from
        // every node that knows the record) tells it where the record is, so it is never created afresh.
        if (request.Configuration is { } theirs && theirs.Supersedes(slot.Configuration))
        {
            slot.Configuration = theirs;
        }

        var origin = new NodeHandle(request.RequestNode, request.OriginAddress);
        if (slot.Current?.Is(origin, request.RequestId) == true || slot.Queue.Any(op => op.Is(origin, request.RequestId)))
        {
            return;
        }

        // The root gives up a little before the requester does, so the requester hears why rather than a timeout.
        var deadline = _timers.NowMs + ((long)_options.OperationTimeout.TotalMilliseconds * 3 / 4);
        slot.Queue.Enqueue(new Operation(origin, request, deadline));
        if (!slot.Busy)
        {
            slot.Busy = true;
            _busy.Add(slot);
        }

        Pump(slot, outbox);
    }

    /// <summary>Starts the next step for <paramref name="slot"/> when none is in progress.</summary>
    private void Pump(Slot slot, Outbox outbox)
    {
        while (slot.Round is null)
        {
            var now = _timers.NowMs;
            if (slot.Current is null)
            {
                if (!slot.Queue.TryDequeue(out var next))
                {
                    return;
                }

                slot.Current = next;
                slot.Attempts = 0;
            }

            if (now >= slot.Current.DeadlineMs)
            {
                GiveUp(slot, outbox);
                continue;
            }

            if (now < slot.RetryAtMs)
            {
                return;
            }

            if (slot.Configuration is null || slot.Rediscover)
            {
                StartQuery(slot, outbox);
            }
            else if ((now >= slot.ReconfiguredMs + (long)ReconfigureInterval.TotalMilliseconds || (_leaving && slot.Configuration.Contains(Self.Key, _incarnation)))
                && NextConfiguration(slot, outbox) is { } next)
            {
                StartPrepare(slot, next, outbox);
            }
            else
            {
                StartPrepare(slot, null, outbox);
            }
        }
    }

    /// <summary>The operation's deadline passed: tell the requester why.</summary>
    private void GiveUp(Slot slot, Outbox outbox)
    {
        var op = slot.Current!;
        if (op.NoMajority)
        {
            LogNoMajority(_logger, slot.Key, Self.Key, slot.Configuration, slot.Round is { } round ? string.Join(", ", round.Answers.Keys.Select(k => k.ToShortString())) : "no round in progress");
        }

        slot.Current = null;
        slot.Round = null;
        Send(op.Origin, new RecordMessage(RecordMessageType.Failure, slot.Key, op.Origin.Key, op.RequestId)
        {
            Reason = op.NoMajority ? RecordFailure.NoMajority : RecordFailure.Contended, Configuration = slot.Configuration,
        }, outbox);
    }

    private void StartQuery(Slot slot, Outbox outbox)
    {
        var round = NewRound(slot, Phase.Query, slot.Configuration ?? new RecordConfiguration(1, []), Ballot.Zero);
        foreach (var node in Neighbourhood())
        {
            round.Waiting.Add(node.Key);
            Send(node, new RecordMessage(RecordMessageType.Query, slot.Key, Self.Key, round.Id), outbox);
        }
    }

    private void StartPrepare(Slot slot, RecordConfiguration? stopFor, Outbox outbox)
    {
        var config = slot.Configuration!;
        var round = NewRound(slot, Phase.Prepare, config, new Ballot(++slot.MaxCounter, Self.Key));
        round.StopFor = stopFor;
        foreach (var member in config.Members)
        {
            Send(member.Handle, new RecordMessage(RecordMessageType.Prepare, slot.Key, Self.Key, round.Id)
            {
                Epoch = config.Epoch, Ballot = round.Ballot, Incarnation = member.Incarnation,
            }, outbox);
        }
    }

    private void StartAccept(Slot slot, Round prepared, Register proposed, RecordWriteResult? result, Outbox outbox)
    {
        var config = prepared.Configuration;
        var round = NewRound(slot, Phase.Accept, config, prepared.Ballot);
        round.Proposed = proposed;
        round.Result = result;
        foreach (var member in config.Members)
        {
            Send(member.Handle, new RecordMessage(RecordMessageType.Accept, slot.Key, Self.Key, round.Id)
            {
                Epoch = config.Epoch, Ballot = round.Ballot, Incarnation = member.Incarnation, Register = proposed,
            }, outbox);
        }
    }

    private void StartSeed(Slot slot, RecordConfiguration next, Register value, Outbox outbox)
    {
        var round = NewRound(slot, Phase.Seed, next, Ballot.Zero);
        round.Proposed = value;
        foreach (var member in next.Members)
        {
            Send(member.Handle, new RecordMessage(RecordMessageType.Seed, slot.Key, Self.Key, round.Id)
            {
                Incarnation = member.Incarnation, Configuration = next, Register = value,
            }, outbox);
        }
    }

    private Round NewRound(Slot slot, Phase phase, RecordConfiguration config, Ballot ballot)
    {
        var wait = (long)_options.ReplicaTimeout.TotalMilliseconds * Math.Min(1 + slot.Attempts, 4);
        var round = new Round(++_rounds, phase, config, ballot, _timers.NowMs + wait);
        slot.Round = round;
        return round;
    }

    private void OnAcceptorReply(NodeHandle from, RecordMessage reply, Outbox outbox)
    {
        _incarnations[from.Key] = reply.Incarnation;
        _incarnationAddresses[from.Key] = from.Address;
        _heardAtMs[from.Key] = _timers.NowMs;
        if (reply.Leaving)
        {
            _leavingNodes[from.Key] = reply.Incarnation;
        }
        else if (_leavingNodes.TryGetValue(from.Key, out var leaving) && leaving != reply.Incarnation)
        {
            // Back under its key as another run. A run that said it leaves never stops leaving: an answer it sent
            // before it said so may arrive after.
            _leavingNodes.Remove(from.Key);
        }

        if (reply.Phase == RecordMessageType.Query && reply.RequestId == SuccessorQuery)
        {
            NoteSuccessor(from, reply);
            return;
        }

        if (!_slots.TryGetValue(reply.Key, out var slot) || slot.Round is not { } round || round.Id != reply.RequestId)
        {
            return;
        }

        slot.MaxCounter = Math.Max(slot.MaxCounter, Math.Max(reply.Promised.Counter, reply.Accepted.Counter));
        if (round.Phase == Phase.Query)
        {
            round.Answers[from.Key] = reply;
            round.Incarnations[from.Key] = (reply.Incarnation, from.Address);
            if (round.Waiting.Remove(from.Key) && round.Waiting.Count == 0)
            {
                FinishQuery(slot, round, outbox);
            }

            return;
        }

        // Any reply may show that the record has moved on to a later configuration (or, for a first seed, that
        // another root created it first): follow it.
        if (reply.Configuration is { } theirs && (theirs.Supersedes(round.Configuration)
            || (round.Phase == Phase.Seed && theirs.Epoch == round.Configuration.Epoch && !theirs.SameMembers(round.Configuration))))
        {
            slot.Configuration = theirs;
            slot.Rediscover = false;
            slot.Round = null;
            Pump(slot, outbox);
            return;
        }

        var member = round.Configuration.Members.FirstOrDefault(m => m.Key == from.Key);
        if (member.Key != from.Key || !round.Answered.Add(from.Key))
        {
            return;
        }

        // A member of this configuration that holds nothing of it (its seed was lost, or it was cut off while the
        // configuration was seeded) is seeded from the members that have it once one answered; otherwise a
        // configuration seeded on fewer than a majority would never gather one again, though all its members live.
        if (reply.Status == AcceptorStatus.NotSeeded && round.Phase == Phase.Prepare && member.Incarnation == reply.Incarnation)
        {
            round.Unseeded.Add(member);
            SeedLagging(slot, round, outbox);
        }

        if (reply.Status == AcceptorStatus.Ok && member.Incarnation == reply.Incarnation)
        {
            round.Answers[from.Key] = reply;
            if (round.Phase == Phase.Prepare)
            {
                SeedLagging(slot, round, outbox);
            }

            if (round.Answers.Count >= round.Configuration.Majority)
            {
                switch (round.Phase)
                {
                    case Phase.Prepare:
                        FinishPrepare(slot, round, outbox);
                        break;
                    case Phase.Accept:
                        FinishAccept(slot, round, outbox);
                        break;
                    case Phase.Seed:
                        FinishSeed(slot, round, outbox);
                        break;
                }
            }

            return;
        }

        if (reply.Status == AcceptorStatus.Rejected)
        {
            round.Rejected++;
        }

        CountFailure(slot, round, outbox);
    }

    /// <summary>
    /// Seeds the members of <paramref name="round"/>'s configuration that answered its prepare "not seeded", with the
    /// register of the highest ballot among the members that answered it: at ballot zero, as a late seed, which never
    /// outranks a value accepted in this epoch (the catch-up of <see cref="FinishAccept"/>, for a round that cannot
    /// finish without it).
    /// </summary>
    private void SeedLagging(Slot slot, Round round, Outbox outbox)
    {
        if (round.Unseeded.Count == 0 || round.Answers.Count == 0)
        {
            return;
        }

        var register = round.Answers.Values.MaxBy(a => a.Accepted)!.Register!;
        foreach (var member in round.Unseeded)
        {
            Send(member.Handle, new RecordMessage(RecordMessageType.Seed, slot.Key, Self.Key, 0)
            {
                Incarnation = member.Incarnation, Configuration = round.Configuration, Register = register,
            }, outbox);
        }

        round.Unseeded.Clear();
    }

    /// <summary>A message to an acceptor was never acknowledged: that acceptor is unreachable.</summary>
    private void OnUnreachable(NodeHandle to, RecordMessage message, Outbox outbox)
    {
        if (!_slots.TryGetValue(message.Key, out var slot) || slot.Round is not { } round || round.Id != message.RequestId)
        {
            return;
        }

        if (round.Phase == Phase.Query)
        {
            if (round.Waiting.Remove(to.Key) && round.Waiting.Count == 0)
            {
                FinishQuery(slot, round, outbox);
            }
        }
        else if (round.Configuration.Members.Any(m => m.Key == to.Key) && round.Answered.Add(to.Key))
        {
            CountFailure(slot, round, outbox);
        }
    }

    /// <summary>An acceptor refused or cannot answer: when a majority can no longer be reached, try again later.</summary>
    private void CountFailure(Slot slot, Round round, Outbox outbox)
    {
        var members = round.Configuration.Members.Length;
        var failed = round.Answered.Count - round.Answers.Count;
        if (failed > members - round.Configuration.Majority)
        {
            Retry(slot, noMajority: round.Rejected == 0, outbox);
        }
    }

    /// <summary>Abandons the round and tries again after a short random backoff, with a higher ballot.</summary>
    private void Retry(Slot slot, bool noMajority, Outbox outbox)
    {
        if (slot.Current is { } op)
        {
            op.NoMajority |= noMajority;
        }

        // Without a majority the configuration may be one the record has left: ask the neighbours again first (the
        // configuration known is kept; a record is never created afresh over it).
        slot.Rediscover |= noMajority;
        slot.Round = null;
        slot.Attempts++;
        slot.RetryAtMs = _timers.NowMs + _random.Next(5, (20 * Math.Min(slot.Attempts, 10)) + 6);
        Pump(slot, outbox);
    }

    private void FinishQuery(Slot slot, Round round, Outbox outbox)
    {
        slot.Round = null;
        slot.Rediscover = false;
        var known = RecordConfiguration.Latest(round.Answers.Values.Select(a => a.Configuration).Append(slot.Configuration));
        if (known is not null)
        {
            slot.Configuration = known;
            Pump(slot, outbox);
            return;
        }

        // Nobody who answered knows the record. That makes it new only if the nodes that would be its acceptors (the
        // closest to its key among this node and its leaf set) all said so: an acceptor of a written record that was
        // slow, or whose answer was lost, is silent, and creating the record without it would seed nodes that hold
        // nothing, losing every acknowledged write. Ask again, waiting longer, until they have answered or the leaf
        // set no longer counts them (Pastry declared them dead).
        // The record is created on the closest nodes that are staying (all of them, should every one be leaving).
        var members = Closest(slot.Key, Neighbourhood(), h => h.Key);
        var staying = Closest(slot.Key, Candidates(), h => h.Key) is { Count: > 0 } nodes ? nodes : members;
        if (!members.Concat(staying).All(h => h.Key == Self.Key || round.Incarnations.ContainsKey(h.Key)))
        {
            Retry(slot, noMajority: true, outbox);
            return;
        }

        StartSeed(slot, new RecordConfiguration(1, [.. staying.Select(h => h.Key == Self.Key
            ? new RecordMember(Self.Key, _incarnation, Self.Address)
            : new RecordMember(h.Key, round.Incarnations[h.Key].Incarnation, h.Address))]), Register.Empty, outbox);
    }

    private void FinishPrepare(Slot slot, Round round, Outbox outbox)
    {
        var highest = round.Answers.Values.MaxBy(a => a.Accepted)!.Register!;
        if (highest.Stopped)
        {
            // Someone began replacing this configuration: finish that (the stop is re-proposed at this ballot, so it
            // is chosen), then follow it. Nothing else is ever written here.
            StartAccept(slot, round, highest, null, outbox);
            return;
        }

        if (round.StopFor is { } next)
        {
            StartAccept(slot, round, highest with { Next = next }, null, outbox);
            return;
        }

        var op = slot.Current!;
        if (!op.IsWrite)
        {
            StartAccept(slot, round, highest, new RecordWriteResult(true, highest.ToValue()), outbox);
        }
        else if (highest.VersionOf(op.WriteId) is not null)
        {
            // The same write again (its answer was lost, or the root changed): it is done, and not applied twice.
            StartAccept(slot, round, highest, new RecordWriteResult(true, highest.ToValue()), outbox);
        }
        else if (highest.Version == op.ExpectedVersion)
        {
            var written = highest.Write(op.Data, op.WriteId);
            StartAccept(slot, round, written, new RecordWriteResult(true, written.ToValue()), outbox);
        }
        else
        {
            StartAccept(slot, round, highest, new RecordWriteResult(false, highest.ToValue()), outbox);
        }
    }

    private void FinishAccept(Slot slot, Round round, Outbox outbox)
    {
        slot.Round = null;
        var chosen = round.Proposed!;
        if (chosen.Next is { } next)
        {
            LogMoving(_logger, slot.Key, Self.Key, round.Configuration, next);
            StartSeed(slot, next, chosen with { Next = null }, outbox);
            return;
        }

        // Members that were never seeded (a seed lost, a majority was enough) catch up with the value just chosen:
        // at ballot zero it never outranks anything accepted in this epoch.
        foreach (var member in round.Configuration.Members.Where(m => round.Answered.Contains(m.Key) && !round.Answers.ContainsKey(m.Key)))
        {
            if (_incarnations.GetValueOrDefault(member.Key) == member.Incarnation)
            {
                Send(member.Handle, new RecordMessage(RecordMessageType.Seed, slot.Key, Self.Key, 0)
                {
                    Incarnation = member.Incarnation, Configuration = round.Configuration, Register = chosen,
                }, outbox);
            }
        }

        var op = slot.Current!;
        slot.Current = null;
        slot.RetryAtMs = 0;
        Send(op.Origin, new RecordMessage(RecordMessageType.Reply, slot.Key, op.Origin.Key, op.RequestId)
        {
            Success = round.Result!.Success, Value = round.Result.Current, Configuration = round.Configuration,
        }, outbox);
        Pump(slot, outbox);
    }

    private void FinishSeed(Slot slot, Round round, Outbox outbox)
    {
        slot.Round = null;
        slot.Configuration = round.Configuration;
        slot.ReconfiguredMs = _timers.NowMs;
        slot.Attempts = 0;
        Pump(slot, outbox);
    }

    /// <summary>
    /// The configuration the record should move to, or null when it is where it should be: the nodes closest to the
    /// key among those this node knows alive and staying (itself and its leaf set, less the nodes that said they are
    /// leaving). One dead, leaving or displaced member is swapped for one new at a time (a node back under its key for
    /// its own old run); when the ring grew or shrank past an odd size, members are added or removed together. A node
    /// that is leaving only takes itself out (<see cref="WithoutSelf"/>).
    /// </summary>
    private RecordConfiguration? NextConfiguration(Slot slot, Outbox outbox)
    {
        var current = slot.Configuration!;
        var view = Candidates().ToDictionary(h => h.Key);
        if (_leaving)
        {
            return WithoutSelf(slot.Key, current, view, outbox);
        }

        var target = Closest(slot.Key, view.Values.ToList(), h => h.Key).Select(h => h.Key).ToHashSet();
        bool Alive(RecordMember m) =>
            view.TryGetValue(m.Key, out var seen)
            && (m.Key == Self.Key ? m.Incarnation == _incarnation : seen.Address == m.Address && _incarnations.GetValueOrDefault(m.Key, m.Incarnation) == m.Incarnation);

        var remove = current.Members.Where(m => !Alive(m) || !target.Contains(m.Key))
            .OrderBy(m => Alive(m)).ThenByDescending(m => slot.Key.RingDistance(m.Key)).ToList();
        var add = target.Where(k => !current.Members.Any(m => m.Key == k && Alive(m)))
            .OrderBy(k => slot.Key.RingDistance(k)).ToList();
        if (remove.Count == 0 && add.Count == 0)
        {
            return null;
        }

        var joining = new List<RecordMember>();
        foreach (var key in add)
        {
            if (Joining(key, view[key], outbox) is { } member)
            {
                joining.Add(member);
            }
        }

        var members = current.Members.ToList();
        if (remove.Count > 0 && joining.Count > 0)
        {
            // A node back under its key (a new run) takes its old run's place, whatever else is dead: swapped for
            // another member, the key would hold two places, one of which can never answer.
            var join = joining[0];
            var own = remove.FindIndex(m => m.Key == join.Key);
            members.Remove(remove[Math.Max(own, 0)]);
            members.Add(join);
        }
        else if (joining.Count > 0 && add.Count == joining.Count && remove.Count == 0)
        {
            members.AddRange(joining);
        }
        else if (remove.Count > 0 && add.Count == 0)
        {
            members.RemoveAll(remove.Contains);
        }
        else
        {
            return null;
        }

        return new RecordConfiguration(current.Epoch + 1, [.. members.OrderBy(m => m.Key)]);
    }

    /// <summary>
    /// While this node leaves: the configuration with this node's acceptor replaced by the staying node closest to the
    /// key that is not a member yet, or without a replacement when no such node's incarnation is known (those are asked
    /// it, for the next pass); null when this node is not a member, or nobody is left to take its place. Nothing else
    /// changes: a member this node does not see may well be alive (its view may lack nodes it declared dead a moment
    /// ago, as right after a partition heals), and the roots that stay replace members as their own views tell them.
    /// </summary>
    private RecordConfiguration? WithoutSelf(NodeKey key, RecordConfiguration current, Dictionary<NodeKey, NodeHandle> view, Outbox outbox)
    {
        if (!current.Contains(Self.Key, _incarnation))
        {
            return null;
        }

        var members = current.Members.Where(m => m.Key != Self.Key).ToList();
        foreach (var node in view.Values.Where(h => !members.Exists(m => m.Key == h.Key)).OrderBy(h => key.RingDistance(h.Key)))
        {
            if (Joining(node.Key, node, outbox) is { } member)
            {
                members.Add(member);
                break;
            }
        }

        // With nobody to take it (this node leaves a ring of one), the record goes with the ring.
        return members.Count == 0 ? null : new RecordConfiguration(current.Epoch + 1, [.. members.OrderBy(m => m.Key)]);
    }

    /// <summary>The acceptor <paramref name="node"/> would join a configuration as, or null when its incarnation at its
    /// address is not known yet: then it is asked, and a later pass takes it.</summary>
    private RecordMember? Joining(NodeKey key, NodeHandle node, Outbox outbox)
    {
        if (key == Self.Key)
        {
            return new RecordMember(key, _incarnation, Self.Address);
        }

        if (_incarnations.TryGetValue(key, out var incarnation) && _incarnationAddresses.GetValueOrDefault(key) == node.Address)
        {
            return new RecordMember(key, incarnation, node.Address);
        }

        AskIncarnation(node, outbox);
        return null;
    }

    /// <summary>The nodes a record may be given to: this node (unless it is leaving) and its leaf set, less the nodes
    /// that said they are leaving.</summary>
    private List<NodeHandle> Candidates() =>
        Neighbourhood().Where(h => h.Key == Self.Key ? !_leaving : !_leavingNodes.ContainsKey(h.Key)).ToList();

    /// <summary>This node and its leaf set: the nodes it knows alive near its keys.</summary>
    private List<NodeHandle> Neighbourhood()
    {
        var (ccw, cw) = _pastry.GetLeafSet();
        return [Self, .. cw.Concat(ccw).Where(h => h.Key != Self.Key).DistinctBy(h => h.Key)];
    }

    /// <summary>The <see cref="ReplicationFactor"/> candidates closest to <paramref name="key"/> (an odd number when
    /// there are fewer).</summary>
    private static List<T> Closest<T>(NodeKey key, List<T> candidates, Func<T, NodeKey> keyOf)
    {
        var count = Math.Min(ReplicationFactor, candidates.Count);
        if (count % 2 == 0)
        {
            count--;
        }

        candidates.Sort((a, b) => keyOf(a) == keyOf(b) ? 0 : key.IsCloser(keyOf(a), keyOf(b)) ? -1 : 1);
        return candidates.Take(count).ToList();
    }

    /// <summary>At the timer: phases whose wait is over, retries due, operations past their deadline.</summary>
    private void Expire(Slot slot, Outbox outbox)
    {
        var now = _timers.NowMs;
        if (slot.Current is { } op && now >= op.DeadlineMs)
        {
            GiveUp(slot, outbox);
        }
        else if (slot.Round is { } round && now >= round.DeadlineMs)
        {
            if (round.Phase == Phase.Query)
            {
                FinishQuery(slot, round, outbox);
                return;
            }

            Retry(slot, noMajority: true, outbox);
            return;
        }

        Pump(slot, outbox);
    }

    private enum Phase
    {
        Query,
        Prepare,
        Accept,
        Seed,
    }

    /// <summary>An operation a requester routed here.</summary>
    private sealed class Operation(NodeHandle origin, RecordMessage request, long deadlineMs)
    {
        public NodeHandle Origin { get; } = origin;

        public ulong RequestId { get; } = request.RequestId;

        public bool IsWrite { get; } = request.IsWrite;

        public long ExpectedVersion { get; } = request.ExpectedVersion;

        public byte[] Data { get; } = request.Data;

        public WriteId WriteId { get; } = request.WriteId;

        public long DeadlineMs { get; } = deadlineMs;

        /// <summary>Whether an attempt failed for want of a majority (rather than pre-empted by another ballot).</summary>
        public bool NoMajority { get; set; }

        public bool Is(NodeHandle origin, ulong requestId) => Origin.Key == origin.Key && RequestId == requestId;
    }

    /// <summary>One phase in progress: whom it waits for and what they answered.</summary>
    private sealed class Round(ulong id, Phase phase, RecordConfiguration configuration, Ballot ballot, long deadlineMs)
    {
        public ulong Id { get; } = id;

        public Phase Phase { get; } = phase;

        public RecordConfiguration Configuration { get; } = configuration;

        public Ballot Ballot { get; } = ballot;

        public long DeadlineMs { get; } = deadlineMs;

        /// <summary>Members that answered (or were found unreachable).</summary>
        public HashSet<NodeKey> Answered { get; } = [];

        /// <summary>Positive answers (for a query: every answer).</summary>
        public Dictionary<NodeKey, RecordMessage> Answers { get; } = [];

        public int Rejected { get; set; }

        /// <summary>A query's outstanding neighbours, and the incarnation and address of each that answered.</summary>
        public HashSet<NodeKey> Waiting { get; } = [];

        public Dictionary<NodeKey, (ulong Incarnation, NodeAddress Address)> Incarnations { get; } = [];

        /// <summary>For a prepare that replaces the configuration: the one to move to.</summary>
        public RecordConfiguration? StopFor { get; set; }

        /// <summary>Members that answered a prepare "not seeded", to seed once a member that has the configuration
        /// answered.</summary>
        public List<RecordMember> Unseeded { get; } = [];

        public Register? Proposed { get; set; }

        public RecordWriteResult? Result { get; set; }
    }

    /// <summary>What a root keeps for a record: the configuration it knows, the operations waiting, the step in
    /// progress.</summary>
    private sealed class Slot(NodeKey key)
    {
        public NodeKey Key { get; } = key;

        public RecordConfiguration? Configuration { get; set; }

        /// <summary>Whether to ask the neighbours for a later configuration before the next round.</summary>
        public bool Rediscover { get; set; }

        public long ReconfiguredMs { get; set; } = long.MinValue / 2;

        public long MaxCounter { get; set; }

        public Queue<Operation> Queue { get; } = new();

        public Operation? Current { get; set; }

        public Round? Round { get; set; }

        public int Attempts { get; set; }

        public long RetryAtMs { get; set; }

        /// <summary>Whether the slot is in <see cref="_busy"/>.</summary>
        public bool Busy { get; set; }

        /// <summary>Whether nothing is queued or in progress: the timer need not look at this record.</summary>
        public bool Idle => Current is null && Round is null && Queue.Count == 0;

        /// <summary>When the timer must next look at this record.</summary>
        public long DueMs =>
            Current is null ? long.MaxValue
            : Math.Min(Current.DeadlineMs, Round is { } round ? round.DeadlineMs : Math.Max(RetryAtMs, 0));
    }
}
