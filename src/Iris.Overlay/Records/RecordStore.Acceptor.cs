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
                // neighbours.
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

    /// <summary>One record's acceptor: its configuration, the highest ballot it promised, and the value it accepted
    /// last with that value's ballot. A seed starts it at ballot zero with the value the previous configuration
    /// stopped at.</summary>
    private sealed class Acceptor(RecordConfiguration configuration, Register value)
    {
        public RecordConfiguration Configuration { get; } = configuration;

        public Ballot Promised { get; set; }

        public Ballot AcceptedBallot { get; set; }

        public Register Value { get; set; } = value;
    }
}
