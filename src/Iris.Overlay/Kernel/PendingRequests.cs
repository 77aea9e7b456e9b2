using Iris.Overlay.Timing;

namespace Iris.Overlay.Kernel;

/// <summary>
/// Requests a node sent into the ring and awaits answers to. Each has an id, which its answer carries back; it is
/// sent again every retry interval until answered (the route may have lost it while the ring repairs), fails with
/// its own timeout error at its deadline, and can be cancelled. One <see cref="TimerQueue"/> entry, due at the
/// earliest retry or deadline, drives them all.
/// </summary>
/// <remarks>
/// A send that throws (the node stopped, say) fails its request with that error at once: it would fail the same way
/// at every retry, and nothing may escape into the timer. Sends and completions run outside the lock. Disposing
/// fails the requests still waiting with <see cref="ObjectDisposedException"/>; nothing is scheduled after that.
/// </remarks>
/// <typeparam name="T">What an answer carries.</typeparam>
internal sealed class PendingRequests<T> : IDisposable
{
    private readonly Lock _lock = new();
    private readonly Dictionary<ulong, Request> _requests = [];
    private readonly TimerQueue _timers;
    private readonly TimerQueue.Entry _tick;
    private readonly long _retryMs;
    private readonly string _owner;
    private ulong _sequence;
    private long _dueMs = long.MaxValue;
    private bool _disposed;

    /// <param name="timers">The node's timer queue.</param>
    /// <param name="retryInterval">How long a request waits for its answer before it is sent again.</param>
    /// <param name="owner">Who sends the requests, named in <see cref="ObjectDisposedException"/> after disposal.</param>
    public PendingRequests(TimerQueue timers, TimeSpan retryInterval, string owner)
    {
        ArgumentNullException.ThrowIfNull(timers);
        _timers = timers;
        _retryMs = Math.Max(1, (long)retryInterval.TotalMilliseconds);
        _owner = owner;
        _tick = timers.Create(OnTick);
    }

    /// <summary>
    /// Sends a request and waits for its answer: <paramref name="send"/> is called with the request's id now and
    /// again at every retry, until <see cref="TryComplete"/> is called with that id, <paramref name="timeout"/>
    /// passes (the task fails with <paramref name="timeoutError"/>'s exception), or the token is cancelled.
    /// </summary>
    public async Task<T> SendAsync(Action<ulong> send, TimeSpan timeout, Func<Exception> timeoutError, CancellationToken cancellationToken = default)
    {
        Request request;
        lock (_lock)
        {
            if (_disposed)
            {
                throw new ObjectDisposedException(_owner);
            }

            var now = _timers.NowMs;
            request = new Request(++_sequence, send, timeoutError, now + _retryMs, now + (long)timeout.TotalMilliseconds);
            _requests[request.Id] = request;
            ScheduleLocked(request.DueMs);
        }

        Send(request);
        using var registration = cancellationToken.Register(() =>
        {
            Remove(request.Id);
            request.Completion.TrySetCanceled(cancellationToken);
        });
        return await request.Completion.Task.ConfigureAwait(false);
    }

    /// <summary>Completes the request <paramref name="id"/> with its answer. False when it is no longer waiting
    /// (answered already, expired, cancelled, or not ours).</summary>
    public bool TryComplete(ulong id, T answer) =>
        Remove(id) is { } request && request.Completion.TrySetResult(answer);

    public void Dispose()
    {
        List<Request> waiting;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _tick.Cancel();
            waiting = [.. _requests.Values];
            _requests.Clear();
        }

        foreach (var request in waiting)
        {
            request.Completion.TrySetException(new ObjectDisposedException(_owner));
        }
    }

    private Request? Remove(ulong id)
    {
        lock (_lock)
        {
            return _requests.Remove(id, out var request) ? request : null;
        }
    }

    private void Send(Request request)
    {
        try
        {
            request.Send(request.Id);
        }
        catch (Exception e)
        {
            // Retrying cannot help a send the node refuses (it stopped, or the payload is too large): the caller hears
            // why now rather than a timeout later, and a retry never throws into the timer queue.
            Remove(request.Id);
            request.Completion.TrySetException(e);
        }
    }

    private void ScheduleLocked(long dueMs)
    {
        if (dueMs < _dueMs)
        {
            _dueMs = dueMs;
            _tick.ScheduleAt(dueMs);
        }
    }

    private void OnTick()
    {
        List<Request>? expired = null;
        List<Request>? retries = null;
        lock (_lock)
        {
            _dueMs = long.MaxValue;
            if (_disposed)
            {
                return;
            }

            var now = _timers.NowMs;
            var next = long.MaxValue;
            foreach (var request in _requests.Values)
            {
                if (now >= request.DeadlineMs)
                {
                    (expired ??= []).Add(request);
                    continue;
                }

                if (now >= request.RetryMs)
                {
                    request.RetryMs = now + _retryMs;
                    (retries ??= []).Add(request);
                }

                next = Math.Min(next, request.DueMs);
            }

            expired?.ForEach(request => _requests.Remove(request.Id));
            ScheduleLocked(next);
        }

        expired?.ForEach(request => request.Completion.TrySetException(request.TimeoutError()));
        retries?.ForEach(Send);
    }

    private sealed class Request(ulong id, Action<ulong> send, Func<Exception> timeoutError, long retryMs, long deadlineMs)
    {
        public ulong Id { get; } = id;

        public Action<ulong> Send { get; } = send;

        public Func<Exception> TimeoutError { get; } = timeoutError;

        public TaskCompletionSource<T> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public long RetryMs { get; set; } = retryMs;

        public long DeadlineMs { get; } = deadlineMs;

        /// <summary>When the queue must next look at this request: its retry or its deadline.</summary>
        public long DueMs => Math.Min(RetryMs, DeadlineMs);
    }
}
