using System.Security.Cryptography;
using Iris.Overlay.Kernel;
using Iris.Overlay.Pastry;
using Iris.Overlay.Timing;
using Iris.Overlay.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Iris.Overlay.Records;

/// <summary>Outcome of a compare-and-swap: whether it was applied, and the record's value now.</summary>
public sealed record RecordWriteResult(bool Success, RecordValue? Current);

/// <summary>A record's root did not answer in time, or kept being pre-empted by another proposer until the deadline:
/// the ring is repairing or the network is cut.</summary>
public sealed class RecordTimeoutException : TimeoutException
{
    /// <summary>Creates the exception.</summary>
    public RecordTimeoutException(NodeKey key, TimeSpan timeout)
        : base($"The root of record {key} did not answer within {timeout}; the ring may be repairing. Try again.")
    {
    }
}

/// <summary>A majority of a record's replicas did not answer: this node is on the minority side of a network cut, or
/// most of the record's replicas died at once. The operation was not acknowledged; like after a timeout, a write may
/// still take effect if some replicas accepted it before the cut, so read (or compare-and-swap) again once the network
/// heals.</summary>
public sealed class RecordUnavailableException : Exception
{
    /// <summary>Creates the exception.</summary>
    public RecordUnavailableException(NodeKey key)
        : base($"A majority of the replicas of record {key} is unreachable, so it can be neither read nor written safely; this node may be on the minority side of a network partition. Try again once the network heals.")
    {
    }
}

/// <summary>Settings of replicated records.</summary>
public sealed class RecordOptions
{
    /// <summary>How long a request waits for its root's answer before it is sent again. Default 1 second.</summary>
    public TimeSpan RetryInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long an operation may take in all before it fails. Default 10 seconds.</summary>
    public TimeSpan OperationTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a root waits for a majority of a record's replicas to answer one phase of a round (or for its
    /// neighbours to say what they know of a record) before it tries again with a higher ballot; the wait grows with
    /// each attempt, up to four times this. Default 500 ms.</summary>
    public TimeSpan ReplicaTimeout { get; set; } = TimeSpan.FromMilliseconds(500);
}


/// <summary>
/// A small replicated key/value store on the ring: each record is a CASPaxos register (Rystsov 2018) whose acceptors
/// are the nodes closest to its key. An operation is routed to the key's root, which proposes it: a prepare to the
/// record's acceptors, a majority of promises, the operation applied to the newest accepted value (a read applies
/// nothing, but still goes through the accept phase, so it is linearizable), an accept, and a majority of accepts
/// before the answer. Nothing is acknowledged without a majority, so a node cut off with a minority of the acceptors
/// can neither read nor write (<see cref="RecordUnavailableException"/>), and an acknowledged write survives as long
/// as a majority of the acceptors that hold it lives. When the nodes closest to the key change, the root replaces the
/// acceptors by stop and seed: it writes, in the old configuration, the value marked stopped with the next
/// configuration, then seeds the new acceptors with that value. Writes carry an id; the last 64 are kept in the value,
/// so a retried write is reported as done, not applied twice. See docs/records.md.
/// </summary>
/// <remarks>
/// One lock guards all state; every handler decides under it and sends after it (<see cref="Outbox"/>), and nothing
/// waits, so a simulated ring drives it deterministically. Acceptor state is in memory: a restarted node is a new
/// acceptor (a new random incarnation), never one that forgot its promises.
/// </remarks>
internal sealed partial class RecordStore : IRouteHandler, IDisposable
{
    public const ushort Channel = 3;

    /// <summary>Acceptors per record when the ring has that many nodes.</summary>
    public const int ReplicationFactor = 5;

    /// <summary>Least time between two reconfigurations of one record by one root.</summary>
    public static readonly TimeSpan ReconfigureInterval = TimeSpan.FromSeconds(3);

    private readonly Lock _lock = new();
    private readonly PastryNode _pastry;
    private readonly TimerQueue _timers;
    private readonly RecordOptions _options;
    private readonly Random _random;
    private readonly ILogger _logger;
    private readonly ulong _incarnation;
    private readonly PendingRequests<Outcome> _requests;
    private readonly TimerQueue.Entry _tick;
    private readonly Dictionary<NodeKey, RecordConfiguration> _known = [];
    private long _tickDueMs = long.MaxValue;
    private bool _stopped;
    private bool _leaving;

    /// <param name="pastry">The node the store runs on.</param>
    /// <param name="timers">The node's timer queue.</param>
    /// <param name="options">Settings; defaults when null.</param>
    /// <param name="random">Backoff jitter; seeded from the node's key when null, so a simulation is repeatable.</param>
    /// <param name="logger">Where records' moves (debug) and operations failed for want of a majority (warning) are
    /// logged; nowhere when null.</param>
    public RecordStore(PastryNode pastry, TimerQueue timers, RecordOptions? options = null, Random? random = null, ILogger? logger = null)
    {
        _logger = logger ?? NullLogger.Instance;
        _pastry = pastry;
        _timers = timers;
        _options = options ?? new RecordOptions();
        _random = random ?? new Random(pastry.Self.Key.GetHashCode());
        _incarnation = NewIncarnation();
        _requests = new PendingRequests<Outcome>(timers, _options.RetryInterval, nameof(RecordStore));
        _tick = timers.Create(OnTick);
        pastry.RegisterHandler(Channel, this);
        StartUpkeep();
    }

    /// <summary>This run of the store: a restarted node draws a new one, and so is a new acceptor.</summary>
    internal ulong Incarnation => _incarnation;

    private NodeHandle Self => _pastry.Self;

    /// <summary>Reads a record; null when it was never written. Fails with <see cref="RecordUnavailableException"/>
    /// when a majority of the record's replicas is unreachable, and <see cref="RecordTimeoutException"/> when no
    /// answer came in time.</summary>
    public async Task<RecordValue?> ReadAsync(NodeKey key, CancellationToken cancellationToken = default) =>
        (await SendAsync(key, write: false, 0, [], default, cancellationToken).ConfigureAwait(false)).Current;

    /// <summary>Writes <paramref name="data"/> if the record's version is still <paramref name="expectedVersion"/>
    /// (0: never written). Fails like <see cref="ReadAsync"/>; after such a failure the write may still have taken
    /// effect.</summary>
    public Task<RecordWriteResult> CompareAndSwapAsync(NodeKey key, long expectedVersion, byte[] data, CancellationToken cancellationToken = default) =>
        SendAsync(key, write: true, expectedVersion, data, default, cancellationToken);

    /// <summary>A compare-and-swap with a given write id: the same id again is recognised as the same write.</summary>
    internal Task<RecordWriteResult> CompareAndSwapAsync(NodeKey key, long expectedVersion, byte[] data, WriteId writeId, CancellationToken cancellationToken = default) =>
        SendAsync(key, write: true, expectedVersion, data, writeId, cancellationToken);

    /// <summary>
    /// Before this node leaves the ring gracefully: moves every record that counts this node among its acceptors to
    /// a configuration without it, so nodes that leave one after another (a rolling restart, a cluster scaled down,
    /// a whole cluster stopped silo by silo) never take a record's majority with them. This node proposes each move
    /// itself (the stop is chosen in the configuration it leaves, like any reconfiguration), then reads the record
    /// in its new configuration. Returns once no record counts on this node, once no other node is left to hand
    /// over to, or at <paramref name="timeout"/>; it never throws for a record it could not move, which stays as
    /// after a crash of this node: safe while a majority of its other acceptors lives.
    /// </summary>
    public async Task HandOffAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var deadline = _timers.NowMs + (long)timeout.TotalMilliseconds;
        var outbox = new Outbox();
        lock (_lock)
        {
            _leaving = true;
            AnnounceLeaving(outbox);
        }

        LogHandingOver(_logger, Self.Key, RecordsCountingOnSelf().Count);

        outbox.Run();

        while (!cancellationToken.IsCancellationRequested)
        {
            var left = deadline - _timers.NowMs;
            var keys = RecordsCountingOnSelf();
            if (keys.Count == 0 || left <= 0 || Neighbourhood().Count < 2)
            {
                return;
            }

            var moves = keys.Select(key => _requests.SendAsync(
                id => ProposeLocally(key, id),
                TimeSpan.FromMilliseconds(Math.Min(left, (long)_options.OperationTimeout.TotalMilliseconds)),
                () => new RecordTimeoutException(key, _options.OperationTimeout),
                cancellationToken));
            try
            {
                await Task.WhenAll(moves).ConfigureAwait(false);
            }
            catch (Exception e) when (e is RecordTimeoutException or OverlayNodeStoppedException or ObjectDisposedException)
            {
                // Some record could not move (yet): look again while time is left.
            }

            // A round can end without a move (the node to move to has not told its incarnation yet): give the answers
            // time to arrive before the next pass.
            await PauseAsync(_options.ReplicaTimeout / 5).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Tells the leaf set, and every member of a configuration this node is an acceptor in, that this node is leaving:
    /// an acceptor's answer to no query, which the roots read as any answer (every answer of this node says so from now
    /// on). Roots then neither take this node into a configuration again nor count on it, so two nodes that leave
    /// together never hand a record to each other, and a root never puts a record back on a node about to go.
    /// </summary>
    private void AnnounceLeaving(Outbox outbox)
    {
        var told = Neighbourhood().Where(h => h.Key != Self.Key)
            .Concat(_acceptors.Values.SelectMany(a => (a.Value.Next ?? a.Configuration).Members).Where(m => m.Key != Self.Key).Select(m => m.Handle))
            .DistinctBy(h => h.Key);
        foreach (var node in told)
        {
            Send(node, new RecordMessage(RecordMessageType.AcceptorReply, Self.Key, node.Key, 0)
            {
                Phase = RecordMessageType.Query, Status = AcceptorStatus.NotSeeded, Incarnation = _incarnation, Leaving = true,
            }, outbox);
        }
    }

    /// <summary>Waits on the node's timers (so a simulated ring's clock drives it too).</summary>
    private Task PauseAsync(TimeSpan pause)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entry = _timers.Create(() => done.TrySetResult());
        entry.ScheduleAt(_timers.NowMs + Math.Max(1, (long)pause.TotalMilliseconds));
        return done.Task;
    }

    /// <summary>Records whose latest configuration this node knows (as acceptor, root or requester) counts this node's
    /// acceptor among its members.</summary>
    private List<NodeKey> RecordsCountingOnSelf()
    {
        lock (_lock)
        {
            return _acceptors.Where(a => RecordConfiguration.Latest([KnownConfigurationLocked(a.Key), a.Value.Value.Next ?? a.Value.Configuration]) is { } latest
                && latest.Contains(Self.Key, _incarnation)).Select(a => a.Key).ToList();
        }
    }

    /// <summary>Proposes, here, a read of <paramref name="key"/> on this node's own behalf: while this node is leaving,
    /// a round first moves the record off it.</summary>
    private void ProposeLocally(NodeKey key, ulong requestId)
    {
        var outbox = new Outbox();
        lock (_lock)
        {
            if (_stopped)
            {
                throw new OverlayNodeStoppedException(Self.ToString(), "hand records over");
            }

            Propose(new RecordMessage(RecordMessageType.Request, key, Self.Key, requestId) { OriginAddress = Self.Address }, outbox);
            Rearm();
        }

        outbox.Run();
    }

    /// <summary>Records this node has been root of, and of them those with an operation queued or in progress (the
    /// only ones its timer looks at), for tests and diagnostics.</summary>
    internal (int Records, int Busy) ProposerLoad()
    {
        lock (_lock)
        {
            return (_slots.Count, _busy.Count);
        }
    }

    /// <summary>This node's acceptor state of a record, for tests and diagnostics: its configuration, the ballot it
    /// accepted at and its value; null when it holds none.</summary>
    internal (RecordConfiguration Configuration, Ballot Accepted, Register Value)? AcceptorState(NodeKey key)
    {
        lock (_lock)
        {
            return _acceptors.TryGetValue(key, out var state) ? (state.Configuration, state.AcceptedBallot, state.Value) : null;
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _stopped = true;
            _tick.Cancel();
        }

        StopUpkeep();
        _requests.Dispose();
    }

    public void Deliver(RouteDelivery delivery)
    {
        if (TryDecode(delivery.Payload) is not { Type: RecordMessageType.Request } message)
        {
            return;
        }

        var outbox = new Outbox();
        lock (_lock)
        {
            if (_stopped)
            {
                return;
            }

            Propose(message, outbox);
            Rearm();
        }

        outbox.Run();
    }

    public void ReceiveDirect(DirectDelivery delivery)
    {
        if (TryDecode(delivery.Payload) is not { } message)
        {
            return;
        }

        switch (message.Type)
        {
            case RecordMessageType.Reply when message.RequestNode == Self.Key:
                Learn(message.Key, message.Configuration);
                _requests.TryComplete(message.RequestId, new Outcome(new RecordWriteResult(message.Success, message.Value), null));
                return;
            case RecordMessageType.Failure when message.RequestNode == Self.Key:
                Learn(message.Key, message.Configuration);
                _requests.TryComplete(message.RequestId, new Outcome(null, message.Reason));
                return;
        }

        var outbox = new Outbox();
        lock (_lock)
        {
            if (_stopped)
            {
                return;
            }

            switch (message.Type)
            {
                case RecordMessageType.Prepare or RecordMessageType.Accept or RecordMessageType.Seed or RecordMessageType.Query:
                    Send(delivery.From, Answer(message), outbox);
                    break;
                case RecordMessageType.AcceptorReply:
                    OnAcceptorReply(delivery.From, message, outbox);
                    break;
            }

            Rearm();
        }

        outbox.Run();
    }

    public void DirectFailed(NodeHandle to, ushort channel, ReadOnlyMemory<byte> payload)
    {
        if (TryDecode(payload) is not { Type: RecordMessageType.Prepare or RecordMessageType.Accept or RecordMessageType.Seed or RecordMessageType.Query } message)
        {
            return;
        }

        var outbox = new Outbox();
        lock (_lock)
        {
            if (_stopped)
            {
                return;
            }

            OnUnreachable(to, message, outbox);
            Rearm();
        }

        outbox.Run();
    }

    private async Task<RecordWriteResult> SendAsync(NodeKey key, bool write, long expectedVersion, byte[] data, WriteId writeId, CancellationToken cancellationToken)
    {
        var outcome = await _requests.SendAsync(
            id => _pastry.Route(key, Channel, new RecordMessage(RecordMessageType.Request, key, Self.Key, id)
            {
                // What this node knows of the record goes with the request: a root that finds no neighbour knowing
                // it (the record's replicas are all across a network cut) must not take it for a new record.
                Configuration = KnownConfiguration(key),
                IsWrite = write,
                ExpectedVersion = expectedVersion,
                OriginAddress = Self.Address,
                Data = data,

                // The incarnation offsets the request number, so a restarted node's writes are never taken for its
                // previous run's.
                WriteId = writeId == default ? new WriteId(Self.Key, unchecked(id + _incarnation)) : writeId,
            }.Encode()),
            _options.OperationTimeout,
            () => new RecordTimeoutException(key, _options.OperationTimeout),
            cancellationToken).ConfigureAwait(false);
        return outcome switch
        {
            { Result: { } result } => result,
            { Failure: RecordFailure.NoMajority } => throw new RecordUnavailableException(key),
            _ => throw new RecordTimeoutException(key, _options.OperationTimeout),
        };
    }

    /// <summary>The latest configuration of a record this node knows: as a requester told by roots, as a root, or as
    /// an acceptor. Null when it never had to do with the record.</summary>
    private RecordConfiguration? KnownConfiguration(NodeKey key)
    {
        lock (_lock)
        {
            return KnownConfigurationLocked(key);
        }
    }

    private RecordConfiguration? KnownConfigurationLocked(NodeKey key) =>
        RecordConfiguration.Latest([_known.GetValueOrDefault(key), _slots.GetValueOrDefault(key)?.Configuration, _acceptors.GetValueOrDefault(key)?.Configuration]);

    /// <summary>Remembers the configuration a root answered with, when it is later than any known.</summary>
    private void Learn(NodeKey key, RecordConfiguration? configuration)
    {
        if (configuration is null)
        {
            return;
        }

        lock (_lock)
        {
            if (!_known.TryGetValue(key, out var known) || configuration.Supersedes(known))
            {
                _known[key] = configuration;
            }
        }
    }

    private void Send(NodeHandle to, RecordMessage message, Outbox outbox)
    {
        var bytes = message.Encode();
        outbox.Add(() => _pastry.SendDirect(to, Channel, bytes));
    }

    private void OnTick()
    {
        var outbox = new Outbox();
        lock (_lock)
        {
            _tickDueMs = long.MaxValue;
            if (_stopped)
            {
                return;
            }

            // By index: an expiry may make another record busy (appended, looked at by the next tick).
            for (int i = 0, count = _busy.Count; i < count; i++)
            {
                Expire(_busy[i], outbox);
            }

            Rearm();
        }

        outbox.Run();
    }

    /// <summary>Schedules the timer at the earliest deadline, retry or operation timeout of any busy record, and lets
    /// go of the records that have become idle.</summary>
    private void Rearm()
    {
        var due = long.MaxValue;
        var kept = 0;
        for (var i = 0; i < _busy.Count; i++)
        {
            var slot = _busy[i];
            if (slot.Idle)
            {
                slot.Busy = false;
                continue;
            }

            due = Math.Min(due, slot.DueMs);
            _busy[kept++] = slot;
        }

        _busy.RemoveRange(kept, _busy.Count - kept);

        if (due < _tickDueMs)
        {
            _tickDueMs = due;
            _tick.ScheduleAt(due);
        }
    }

    private static ulong NewIncarnation()
    {
        Span<byte> bytes = stackalloc byte[8];
        RandomNumberGenerator.Fill(bytes);
        return BitConverter.ToUInt64(bytes) | 1;
    }

    /// <summary>Decodes a record message; a malformed one (from a node of another version) is ignored.</summary>
    private static RecordMessage? TryDecode(ReadOnlyMemory<byte> payload)
    {
        try
        {
            return RecordMessage.Decode(payload);
        }
        catch (OverlayProtocolException)
        {
            return null;
        }
    }

    /// <summary>What a requester hears: a result, or why the root gave up.</summary>
    private readonly record struct Outcome(RecordWriteResult? Result, RecordFailure? Failure);

    [LoggerMessage(EventId = 2100, Level = LogLevel.Debug, Message = "Record {Key}: root {Node} stopped {Configuration} and moves the record to {Next}")]
    private static partial void LogMoving(ILogger logger, NodeKey key, NodeKey node, RecordConfiguration configuration, RecordConfiguration next);

    [LoggerMessage(EventId = 2101, Level = LogLevel.Warning, Message = "Record {Key}: root {Node} gave up an operation, no majority of {Configuration} answered in time (those that did: {Answered}); the requester gets RecordUnavailableException")]
    private static partial void LogNoMajority(ILogger logger, NodeKey key, NodeKey node, RecordConfiguration? configuration, string answered);

    [LoggerMessage(EventId = 2102, Level = LogLevel.Information, Message = "Record store of node {Node} is leaving: it hands over the {Count} records it is an acceptor of")]
    private static partial void LogHandingOver(ILogger logger, NodeKey node, int count);
}
