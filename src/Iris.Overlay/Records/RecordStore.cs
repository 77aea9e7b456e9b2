using Iris.Overlay.Kernel;
using Iris.Overlay.Pastry;
using Iris.Overlay.Timing;
using Iris.Overlay.Transport;

namespace Iris.Overlay.Records;

/// <summary>Outcome of a compare-and-swap: whether it was applied, and the record's value now.</summary>
public sealed record RecordWriteResult(bool Success, RecordValue? Current);

/// <summary>A record's root did not answer in time: the ring is repairing or the network is cut.</summary>
public sealed class RecordTimeoutException : TimeoutException
{
    /// <summary>Creates the exception.</summary>
    public RecordTimeoutException(NodeKey key, TimeSpan timeout)
        : base($"The root of record {key} did not answer within {timeout}; the ring may be repairing. Try again.")
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

    /// <summary>How long a root waits for its leaf set's copies (taking over a record) or acknowledgements (of a
    /// write) before going on with the ones it has. Default 500 ms.</summary>
    public TimeSpan ReplicaTimeout { get; set; } = TimeSpan.FromMilliseconds(500);
}

/// <summary>
/// A small replicated key/value store on the ring. A record lives on its key's root, which serialises every read and
/// compare-and-swap on it and copies each write to its whole leaf set before acknowledging it. A node that finds
/// itself root of a record (it joined closer to the key, or the root died) first collects its leaf set's copies and
/// continues from the newest, so a committed write survives the loss of its root. A write remembers the request that
/// made it, so a write retried after a root change is recognised and reported as done.
/// </summary>
internal sealed class RecordStore : IRouteHandler, IDisposable
{
    public const ushort Channel = 3;

    private readonly Lock _lock = new();
    private readonly PastryNode _pastry;
    private readonly TimerQueue _timers;
    private readonly RecordOptions _options;
    private readonly Dictionary<NodeKey, RecordValue> _copies = [];
    private readonly PendingRequests<RecordWriteResult> _requests;
    private readonly Dictionary<NodeKey, Ownership> _owned = [];
    private readonly TimerQueue.Entry _replicaDeadline;
    private long _replicaDeadlineMs = long.MaxValue;
    private bool _stopped;

    public RecordStore(PastryNode pastry, TimerQueue timers, RecordOptions? options = null)
    {
        _pastry = pastry;
        _timers = timers;
        _options = options ?? new RecordOptions();
        _requests = new PendingRequests<RecordWriteResult>(timers, _options.RetryInterval, nameof(RecordStore));
        _replicaDeadline = timers.Create(OnReplicaDeadline);
        pastry.RegisterHandler(Channel, this);
        pastry.LeafSetChanged += OnLeafSetChanged;
    }

    private NodeHandle Self => _pastry.Self;

    /// <summary>Reads a record; null when it was never written.</summary>
    public async Task<RecordValue?> ReadAsync(NodeKey key, CancellationToken cancellationToken = default) =>
        (await SendAsync(key, write: false, 0, [], cancellationToken).ConfigureAwait(false)).Current;

    /// <summary>Writes <paramref name="data"/> if the record's version is still <paramref name="expectedVersion"/>
    /// (0: never written).</summary>
    public Task<RecordWriteResult> CompareAndSwapAsync(NodeKey key, long expectedVersion, byte[] data, CancellationToken cancellationToken = default) =>
        SendAsync(key, write: true, expectedVersion, data, cancellationToken);

    public void Dispose()
    {
        lock (_lock)
        {
            _stopped = true;
            _replicaDeadline.Cancel();
        }

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

            var own = Own(message.Key);
            own.Queue.Enqueue(message);
            Pump(own, outbox);
        }

        outbox.Run();
    }

    public void ReceiveDirect(DirectDelivery delivery)
    {
        if (TryDecode(delivery.Payload) is not { } message)
        {
            return;
        }

        if (message.Type == RecordMessageType.Reply)
        {
            if (message.RequestNode == Self.Key)
            {
                _requests.TryComplete(message.RequestId, new RecordWriteResult(message.Success, message.Value));
            }

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
                case RecordMessageType.SyncQuery:
                    Send(delivery.From, message with { Type = RecordMessageType.SyncReply, Value = _copies.GetValueOrDefault(message.Key) }, outbox);
                    break;
                case RecordMessageType.SyncReply when _owned.TryGetValue(message.Key, out var own) && own.SyncWaiting is { } waiting:
                    Adopt(message.Key, message.Value);
                    waiting.Remove(delivery.From.Key);
                    if (waiting.Count == 0)
                    {
                        FinishSync(own, outbox);
                    }

                    break;
                case RecordMessageType.Replicate:
                    Adopt(message.Key, message.Value);
                    Send(delivery.From, message with { Type = RecordMessageType.ReplicateAck, Value = null, Version = message.Value?.Version ?? 0 }, outbox);
                    break;
                case RecordMessageType.ReplicateAck when _owned.TryGetValue(message.Key, out var own) && own.ReplicateWaiting is { } waiting:
                    waiting.Remove(delivery.From.Key);
                    if (waiting.Count == 0)
                    {
                        FinishWrite(own, outbox);
                    }

                    break;
            }
        }

        outbox.Run();
    }

    public void DirectFailed(NodeHandle to, ushort channel, ReadOnlyMemory<byte> payload)
    {
        if (TryDecode(payload) is not { } message)
        {
            return;
        }

        var outbox = new Outbox();
        lock (_lock)
        {
            if (_stopped || !_owned.TryGetValue(message.Key, out var own))
            {
                return;
            }

            // A replica that died counts as answered: the write or take-over goes on with the live ones.
            if (message.Type == RecordMessageType.SyncQuery && own.SyncWaiting is { } syncing && syncing.Remove(to.Key) && syncing.Count == 0)
            {
                FinishSync(own, outbox);
            }
            else if (message.Type == RecordMessageType.Replicate && own.ReplicateWaiting is { } replicating && replicating.Remove(to.Key) && replicating.Count == 0)
            {
                FinishWrite(own, outbox);
            }
        }

        outbox.Run();
    }

    private Task<RecordWriteResult> SendAsync(NodeKey key, bool write, long expectedVersion, byte[] data, CancellationToken cancellationToken) =>
        _requests.SendAsync(
            id => _pastry.Route(key, Channel, new RecordMessage(RecordMessageType.Request, key, Self.Key, id)
            {
                IsWrite = write, ExpectedVersion = expectedVersion, OriginAddress = Self.Address, Data = data,
            }.Encode()),
            _options.OperationTimeout,
            () => new RecordTimeoutException(key, _options.OperationTimeout),
            cancellationToken);

    private void Pump(Ownership own, Outbox outbox)
    {
        while (own.ReplicateWaiting is null && own.Queue.Count > 0)
        {
            if (!own.Synced)
            {
                StartSync(own, outbox);
                return;
            }

            var request = own.Queue.Dequeue();
            var origin = new NodeHandle(request.RequestNode, request.OriginAddress);
            var current = _copies.GetValueOrDefault(own.Key);
            if (!request.IsWrite)
            {
                Reply(origin, request, true, current, outbox);
                continue;
            }

            if (current is not null && current.Writer == (request.RequestNode, request.RequestId))
            {
                // The same write again (its answer was lost, or the root changed since): it is done.
                Reply(origin, request, true, current, outbox);
                continue;
            }

            if ((current?.Version ?? 0) != request.ExpectedVersion)
            {
                Reply(origin, request, false, current, outbox);
                continue;
            }

            var written = new RecordValue(request.Data, (current?.Version ?? 0) + 1) { Writer = (request.RequestNode, request.RequestId) };
            _copies[own.Key] = written;
            var replicas = Replicas();
            own.Pending = (origin, request, written);
            if (replicas.Count == 0)
            {
                Reply(origin, request, true, written, outbox);
                own.Pending = null;
                continue;
            }

            own.ReplicateWaiting = [.. replicas.Select(r => r.Key)];
            WatchReplicas(own);
            foreach (var replica in replicas)
            {
                Send(replica, new RecordMessage(RecordMessageType.Replicate, own.Key, request.RequestNode, request.RequestId) { Value = written }, outbox);
            }
        }
    }

    private void StartSync(Ownership own, Outbox outbox)
    {
        if (own.SyncWaiting is not null)
        {
            return;
        }

        var replicas = Replicas();
        if (replicas.Count == 0)
        {
            own.Synced = true;
            Pump(own, outbox);
            return;
        }

        own.SyncWaiting = [.. replicas.Select(r => r.Key)];
        WatchReplicas(own);
        foreach (var replica in replicas)
        {
            Send(replica, new RecordMessage(RecordMessageType.SyncQuery, own.Key, Self.Key, 0), outbox);
        }
    }

    private void FinishSync(Ownership own, Outbox outbox)
    {
        own.SyncWaiting = null;
        own.Synced = true;
        Pump(own, outbox);
    }

    private void FinishWrite(Ownership own, Outbox outbox)
    {
        own.ReplicateWaiting = null;
        if (own.Pending is { } done)
        {
            Reply(done.Origin, done.Request, true, done.Written, outbox);
            own.Pending = null;
        }

        Pump(own, outbox);
    }

    private void Adopt(NodeKey key, RecordValue? value)
    {
        if (value is not null && (!_copies.TryGetValue(key, out var current) || current.Version < value.Version))
        {
            _copies[key] = value;
        }
    }

    private List<NodeHandle> Replicas()
    {
        var (ccw, cw) = _pastry.GetLeafSet();
        return [.. cw.Concat(ccw).DistinctBy(h => h.Key)];
    }

    private Ownership Own(NodeKey key)
    {
        if (!_owned.TryGetValue(key, out var own))
        {
            own = new Ownership(key);
            _owned[key] = own;
        }

        return own;
    }

    private void Reply(NodeHandle origin, RecordMessage request, bool success, RecordValue? value, Outbox outbox) =>
        Send(origin, request with { Type = RecordMessageType.Reply, Success = success, Value = value, Data = [] }, outbox);

    private void Send(NodeHandle to, RecordMessage message, Outbox outbox)
    {
        var bytes = message.Encode();
        outbox.Add(() => _pastry.SendDirect(to, Channel, bytes));
    }

    private void OnLeafSetChanged()
    {
        lock (_lock)
        {
            // The neighbourhood changed: before serving again, a root checks whether a neighbour holds newer copies.
            foreach (var own in _owned.Values)
            {
                own.Synced = false;
            }
        }
    }

    /// <summary>Starts the wait for <paramref name="own"/>'s replicas: at its deadline the root goes on with the
    /// answers it has.</summary>
    private void WatchReplicas(Ownership own)
    {
        own.DeadlineMs = _timers.NowMs + (long)_options.ReplicaTimeout.TotalMilliseconds;
        ScheduleReplicaDeadline(own.DeadlineMs);
    }

    private void ScheduleReplicaDeadline(long dueMs)
    {
        if (dueMs < _replicaDeadlineMs)
        {
            _replicaDeadlineMs = dueMs;
            _replicaDeadline.ScheduleAt(dueMs);
        }
    }

    private void OnReplicaDeadline()
    {
        var outbox = new Outbox();
        lock (_lock)
        {
            _replicaDeadlineMs = long.MaxValue;
            if (_stopped)
            {
                return;
            }

            var now = _timers.NowMs;
            foreach (var own in _owned.Values)
            {
                if (now < own.DeadlineMs)
                {
                    continue;
                }

                if (own.SyncWaiting is not null)
                {
                    FinishSync(own, outbox);
                }
                else if (own.ReplicateWaiting is not null)
                {
                    FinishWrite(own, outbox);
                }
            }

            foreach (var own in _owned.Values)
            {
                if (own.SyncWaiting is not null || own.ReplicateWaiting is not null)
                {
                    ScheduleReplicaDeadline(own.DeadlineMs);
                }
            }
        }

        outbox.Run();
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

    /// <summary>What the root keeps for a record it serves: whether it has collected its neighbours' copies, the
    /// requests waiting, and the take-over or write in progress.</summary>
    private sealed class Ownership(NodeKey key)
    {
        public NodeKey Key { get; } = key;

        public bool Synced { get; set; }

        public Queue<RecordMessage> Queue { get; } = new();

        public HashSet<NodeKey>? SyncWaiting { get; set; }

        public HashSet<NodeKey>? ReplicateWaiting { get; set; }

        public long DeadlineMs { get; set; }

        public (NodeHandle Origin, RecordMessage Request, RecordValue Written)? Pending { get; set; }
    }
}
