using System.Text;
using Iris.Overlay.Pastry;
using Iris.Overlay.Timing;
using Iris.Overlay.Transport;

namespace Iris.Overlay.Records;

/// <summary>
/// Asks the root of a key who it is: the query is routed to the key's root, which answers straight back with the
/// tag its host gave it (for a silo, its Orleans address). This is how a grain keyed by a name is placed on the silo
/// whose overlay node is the name's root.
/// </summary>
internal sealed class RootLocator : IRouteHandler, IDisposable
{
    public const ushort Channel = 4;
    private const byte Query = 1;
    private const byte Answer = 2;

    private readonly Lock _lock = new();
    private readonly PastryNode _pastry;
    private readonly TimerQueue _timers;
    private readonly Dictionary<ulong, (TaskCompletionSource<string> Completion, NodeKey Key, long RetryMs, long DeadlineMs)> _pending = [];
    private readonly TimerQueue.Entry _tick;
    private ulong _sequence;
    private bool _tickScheduled;

    public RootLocator(PastryNode pastry, TimerQueue timers, string tag)
    {
        _pastry = pastry;
        _timers = timers;
        Tag = tag;
        _tick = timers.Create(OnTick);
        pastry.RegisterHandler(Channel, this);
    }

    /// <summary>What this node answers when it is the root of a queried key.</summary>
    public string Tag { get; set; }

    /// <summary>The tag of the root of <paramref name="key"/>; this node's own when it is the root.</summary>
    public Task<string> FindRootAsync(NodeKey key, TimeSpan timeout)
    {
        if (_pastry.IsRootFor(key))
        {
            return Task.FromResult(Tag);
        }

        ulong id;
        TaskCompletionSource<string> completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            id = ++_sequence;
            var now = _timers.NowMs;
            _pending[id] = (completion, key, now + 500, now + (long)timeout.TotalMilliseconds);
            if (!_tickScheduled)
            {
                _tickScheduled = true;
                _tick.ScheduleAt(now + 100);
            }
        }

        Send(key, id);
        return completion.Task;
    }

    public void Deliver(RouteDelivery delivery)
    {
        var payload = delivery.Payload.Span;
        if (payload.Length >= 9 && payload[0] == Query)
        {
            var answer = new byte[9 + Encoding.UTF8.GetByteCount(Tag)];
            answer[0] = Answer;
            payload.Slice(1, 8).CopyTo(answer.AsSpan(1));
            Encoding.UTF8.GetBytes(Tag, answer.AsSpan(9));
            _pastry.SendDirect(delivery.Origin, Channel, answer);
        }
    }

    public void ReceiveDirect(DirectDelivery delivery)
    {
        var payload = delivery.Payload.Span;
        if (payload.Length < 9 || payload[0] != Answer)
        {
            return;
        }

        var id = BitConverter.ToUInt64(payload.Slice(1, 8));
        TaskCompletionSource<string>? completion = null;
        lock (_lock)
        {
            if (_pending.Remove(id, out var pending))
            {
                completion = pending.Completion;
            }
        }

        completion?.TrySetResult(Encoding.UTF8.GetString(payload[9..]));
    }

    public void Dispose() => _tick.Cancel();

    private void Send(NodeKey key, ulong id)
    {
        var query = new byte[9];
        query[0] = Query;
        BitConverter.TryWriteBytes(query.AsSpan(1), id);
        _pastry.Route(key, Channel, query);
    }

    private void OnTick()
    {
        var expired = new List<(TaskCompletionSource<string>, NodeKey)>();
        var retries = new List<(NodeKey, ulong)>();
        lock (_lock)
        {
            _tickScheduled = false;
            var now = _timers.NowMs;
            foreach (var (id, pending) in _pending.ToList())
            {
                if (now >= pending.DeadlineMs)
                {
                    _pending.Remove(id);
                    expired.Add((pending.Completion, pending.Key));
                }
                else if (now >= pending.RetryMs)
                {
                    _pending[id] = pending with { RetryMs = now + 500 };
                    retries.Add((pending.Key, id));
                }
            }

            if (_pending.Count > 0)
            {
                _tickScheduled = true;
                _tick.ScheduleAt(now + 100);
            }
        }

        foreach (var (completion, key) in expired)
        {
            completion.TrySetException(new TimeoutException($"The root of {key} did not answer; the ring may be repairing."));
        }

        foreach (var (key, id) in retries)
        {
            Send(key, id);
        }
    }
}
