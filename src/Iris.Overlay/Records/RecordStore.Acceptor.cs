using Iris.Overlay.Transport;

namespace Iris.Overlay.Records;

/// <summary>The acceptor side: what this node promised and accepted for each record it is a replica of.</summary>
internal sealed partial class RecordStore
{
    private readonly Dictionary<NodeKey, Acceptor> _acceptors = [];

    /// <summary>Answers a prepare, accept, seed or query. Called under the lock.</summary>
    private RecordMessage Answer(RecordMessage request)
    {
        _acceptors.TryGetValue(request.Key, out var state);
        switch (request.Type)
        {
            case RecordMessageType.Query:
                // An acceptor says which configuration it is in; any other node passes on the latest it knows (as a
                // root, or from a root's answer), so a new root finds the record even when no acceptor is among its
                // neighbours. A retired acceptor is no longer in one: it passes on where the record went.
                // To an acceptor asking after its successors (AskSuccessors), a retired one answers "stale" with where
                // the record went, a configuration a majority held: proof enough for the asker to retire too.
                if (state is { Forward: { } forward })
                {
                    return request.RequestId == SuccessorQuery
                        ? Reply(request, AcceptorStatus.Stale, state, withValue: false) with { Configuration = forward }
                        : Reply(request, AcceptorStatus.NotSeeded, null, withValue: false)
                            with { Configuration = RecordConfiguration.Latest([KnownConfigurationLocked(request.Key), forward]) };
                }

                return state is not null
                    ? Reply(request, AcceptorStatus.Ok, state, withValue: false)
                    : Reply(request, AcceptorStatus.NotSeeded, null, withValue: false) with { Configuration = KnownConfigurationLocked(request.Key) };

            case RecordMessageType.Seed:
                var next = request.Configuration!;
                if (request.Incarnation != _incarnation || !next.Contains(Self.Key, _incarnation))
                {
                    // Addressed to an earlier run of this node: it must not take that acceptor's place.
                    return Reply(request, AcceptorStatus.NotSeeded, state, withValue: false);
                }

                if (state is null || state.Configuration.Epoch < next.Epoch)
                {
                    // A seed of a later epoch exists only once this one's stop was chosen: nothing more can be chosen
                    // in the epoch this acceptor leaves.
                    _acceptors[request.Key] = new Acceptor(next, request.Register!);
                    _seeded.Add(request.Key);
                    return Reply(request, AcceptorStatus.Ok, null, withValue: false);
                }

                return state.Configuration.Epoch == next.Epoch && state.Configuration.SameMembers(next)
                    ? Reply(request, AcceptorStatus.Ok, null, withValue: false)
                    : Reply(request, AcceptorStatus.Stale, state, withValue: false);

            default:
                if (request.Incarnation != _incarnation || state is null || state.Configuration.Epoch < request.Epoch)
                {
                    return Reply(request, AcceptorStatus.NotSeeded, state, withValue: false);
                }

                if (state.Configuration.Epoch > request.Epoch)
                {
                    return Reply(request, AcceptorStatus.Stale, state, withValue: false);
                }

                if (state.Forward is { } later)
                {
                    // A stop was chosen in this epoch and a later configuration holds the value: a proposer goes there,
                    // rather than re-proposing a stop whose value this acceptor no longer keeps.
                    return Reply(request, AcceptorStatus.Stale, state, withValue: false) with { Configuration = later };
                }

                if (request.Type == RecordMessageType.Prepare)
                {
                    if (request.Ballot < state.Promised)
                    {
                        return Reply(request, AcceptorStatus.Rejected, state, withValue: false);
                    }

                    state.Promised = request.Ballot;
                    return Reply(request, AcceptorStatus.Ok, state, withValue: true);
                }

                if (request.Ballot < state.Promised)
                {
                    return Reply(request, AcceptorStatus.Rejected, state, withValue: false);
                }

                state.Promised = request.Ballot;
                state.AcceptedBallot = request.Ballot;
                state.Value = request.Register!;
                return Reply(request, AcceptorStatus.Ok, null, withValue: false);
        }
    }

    private RecordMessage Reply(RecordMessage request, AcceptorStatus status, Acceptor? state, bool withValue) =>
        new(RecordMessageType.AcceptorReply, request.Key, request.RequestNode, request.RequestId)
        {
            Phase = request.Type,
            Status = status,
            Incarnation = _incarnation,
            Promised = state?.Promised ?? Ballot.Zero,
            Accepted = state?.AcceptedBallot ?? Ballot.Zero,
            Configuration = state?.Configuration,
            Register = withValue ? state?.Value : null,
            Leaving = _leaving,
        };

    /// <summary>
    /// Notes a successor's answer to <see cref="AskSuccessors"/>. The acceptor retires, keeping only where the record
    /// went (<see cref="Acceptor.Forward"/>), once that is a configuration a majority of whose members (at the
    /// incarnations it lists) hold it: every such configuration was seeded after the stop naming it was chosen, and a
    /// majority holds the value, as after a root's own seeding. It starts with the configuration its stopped value names
    /// (one stop at most is chosen in an epoch, so a majority holding it proves that stop chosen). A member that holds a
    /// later one moves the count there: the record has gone on, and that configuration may still be seeded on one member
    /// only, so it is not taken on that member's word. A retired member answers with its own forward configuration,
    /// which a majority held: that settles it. Called under the lock.
    /// </summary>
    private void NoteSuccessor(NodeHandle from, RecordMessage reply)
    {
        if (!_acceptors.TryGetValue(reply.Key, out var acceptor) || acceptor.Forward is not null || acceptor.Value.Next is not { } next
            || next.Contains(Self.Key, _incarnation) || reply.Configuration is not { } theirs)
        {
            return;
        }

        // A later accept in this epoch may have replaced the stopped value with another that names other members:
        // answers about the one named before do not count.
        if (acceptor.SeededSuccessors is not { } count || count.Named.Epoch != next.Epoch || !count.Named.SameMembers(next))
        {
            count = (next, next, []);
        }

        var target = count.Target;
        if (!target.Contains(from.Key, reply.Incarnation) || !(theirs.Epoch > target.Epoch || (theirs.Epoch == target.Epoch && theirs.SameMembers(target))))
        {
            // Not a member of the configuration counted; or an earlier configuration (one with the same members may
            // come before it), or one of another ring's lineage at that epoch.
            acceptor.SeededSuccessors = count;
            return;
        }

        if (reply.Status == AcceptorStatus.Stale)
        {
            Retire(acceptor, theirs);
            return;
        }

        if (reply.Status != AcceptorStatus.Ok)
        {
            acceptor.SeededSuccessors = count;
            return;
        }

        if (theirs.Epoch > target.Epoch)
        {
            count = (next, theirs, []);
        }

        count.Members.Add(from.Key);
        acceptor.SeededSuccessors = count;
        if (count.Members.Count >= count.Target.Majority)
        {
            Retire(acceptor, count.Target);
        }
    }

    private static void Retire(Acceptor acceptor, RecordConfiguration forward)
    {
        acceptor.Value = acceptor.Value with { Data = [], Recent = [] };
        acceptor.Forward = forward;
        acceptor.SeededSuccessors = null;
    }

    /// <summary>One record's acceptor: its configuration, the highest ballot it promised, and the value it accepted
    /// last with that value's ballot. A seed starts it at ballot zero with the value the previous configuration
    /// stopped at.</summary>
    private sealed class Acceptor(RecordConfiguration configuration, Register value)
    {
        public RecordConfiguration Configuration { get; } = configuration;

        public Ballot Promised { get; set; }

        public Ballot AcceptedBallot { get; set; }

        public Register Value { get; set; } = value;

        /// <summary>
        /// Where the record went, once this acceptor retired (<see cref="NoteSuccessor"/>); its value was dropped then,
        /// but for the stop. Nothing is chosen in this epoch after its stop, and the seeds of the next configuration
        /// need the value only until a majority holds it (a member seeded late is seeded from the members that have
        /// it), so a retired acceptor answers prepares and accepts of its epoch "stale" with this configuration, and
        /// queries with it: no proposer re-proposes a stop without its value, and no root takes the record for new.
        /// </summary>
        public RecordConfiguration? Forward { get; set; }

        /// <summary>While not retired: the configuration the stopped value names, the one whose holders are counted
        /// (that one or a later one), and the members of it that said they hold it.</summary>
        public (RecordConfiguration Named, RecordConfiguration Target, HashSet<NodeKey> Members)? SeededSuccessors { get; set; }
    }
}
