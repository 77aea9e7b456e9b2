using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Iris.Overlay.Timing;

/// <summary>
/// Many deadlines on one timer of a <see cref="TimeProvider"/>, in whole milliseconds since the queue was created.
/// A node uses one queue for its heartbeats and acknowledgement deadlines; a simulation shares one queue among
/// thousands of nodes, so the time provider only ever watches two timers (this one and the network's).
/// </summary>
/// <remarks>
/// The underlying timer is replaced rather than changed when the next deadline moves. Changing a one-shot timer from
/// inside its own callback is undone by some providers when the callback returns (<c>FakeTimeProvider</c> removes it);
/// a fresh timer has no such history. Callbacks run outside the queue's lock, one at a time, in deadline order. A
/// callback that throws is logged and counted; the others go on running.
/// </remarks>
internal sealed partial class TimerQueue : IDisposable
{
    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private readonly long _start;
    private readonly PriorityQueue<Entry, (long Due, long Sequence)> _queue = new();
    private ITimer? _timer;
    private long _armedMs = long.MaxValue;
    private long _sequence;
    private readonly ILogger _logger;
    private bool _running;
    private bool _disposed;
    private long _failures;

    public TimerQueue(TimeProvider time, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(time);
        _time = time;
        _logger = logger ?? NullLogger.Instance;
        _start = time.GetTimestamp();
    }

    /// <summary>Callbacks that threw.</summary>
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>The time provider behind the queue.</summary>
    public TimeProvider TimeProvider => _time;

    /// <summary>Whole milliseconds since the queue was created.</summary>
    public long NowMs => (long)_time.GetElapsedTime(_start).TotalMilliseconds;

    /// <summary>Creates a deadline that runs <paramref name="callback"/> when it is due. It starts unscheduled.</summary>
    public Entry Create(Action callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        return new Entry(this, callback);
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            _queue.Clear();
            _timer?.Dispose();
            _timer = null;
        }
    }

    private void Schedule(Entry entry, long dueMs)
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            entry.DueMs = dueMs;
            _queue.Enqueue(entry, (dueMs, _sequence++));
            if (!_running && dueMs < _armedMs)
            {
                Arm(dueMs);
            }
        }
    }

    private void Arm(long dueMs)
    {
        _armedMs = dueMs;
        _timer?.Dispose();
        var delay = TimeSpan.FromMilliseconds(Math.Max(1, dueMs - NowMs));
        _timer = _time.CreateTimer(static state => ((TimerQueue)state!).OnTimer(), this, delay, Timeout.InfiniteTimeSpan);
    }

    private void OnTimer()
    {
        while (true)
        {
            Entry? due = null;
            lock (_lock)
            {
                if (_disposed)
                {
                    return;
                }

                _running = true;
                var now = NowMs;
                while (_queue.TryPeek(out var entry, out var priority))
                {
                    if (priority.Due != entry.DueMs)
                    {
                        // Rescheduled or cancelled since it was queued.
                        _queue.Dequeue();
                        continue;
                    }

                    if (priority.Due <= now)
                    {
                        _queue.Dequeue();
                        entry.DueMs = long.MaxValue;
                        due = entry;
                    }

                    break;
                }

                if (due is null)
                {
                    _running = false;
                    _armedMs = long.MaxValue;
                    _timer?.Dispose();
                    _timer = null;
                    if (_queue.TryPeek(out _, out var next))
                    {
                        Arm(next.Due);
                    }

                    return;
                }
            }

            try
            {
                due.Callback();
            }
            catch (Exception e)
            {
                // One broken callback must not stop every other deadline of the node.
                Interlocked.Increment(ref _failures);
                LogCallbackFailed(_logger, e);
            }
        }
    }

    [LoggerMessage(EventId = 4100, Level = LogLevel.Error, Message = "A timer callback threw; the other timers go on")]
    private static partial void LogCallbackFailed(ILogger logger, Exception exception);

    /// <summary>One deadline of a <see cref="TimerQueue"/>; scheduling it again replaces the previous due time.</summary>
    internal sealed class Entry(TimerQueue queue, Action callback)
    {
        public long DueMs { get; set; } = long.MaxValue;

        public Action Callback { get; } = callback;

        /// <summary>Runs the callback at <paramref name="dueMs"/> (queue milliseconds) instead of any earlier plan.</summary>
        public void ScheduleAt(long dueMs) => queue.Schedule(this, dueMs);

        public void Cancel()
        {
            lock (queue._lock)
            {
                DueMs = long.MaxValue;
            }
        }
    }
}
