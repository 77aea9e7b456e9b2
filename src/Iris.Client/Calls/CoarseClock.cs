namespace Iris.Calls;

/// <summary>
/// Tokens cancelled after a delay that need not be exact: one timer per process, ticking every
/// <see cref="Resolution"/>, cancels every token due at that tick, where a timer per token would cost each call a
/// timer queue entry. A token is cancelled between its delay and its delay plus two ticks. The timer starts with the
/// first token asked for; once disposed, tokens are never cancelled.
/// </summary>
internal sealed class CoarseClock(TimeProvider time) : IDisposable
{
    /// <summary>The time between ticks.</summary>
    public static readonly TimeSpan Resolution = TimeSpan.FromMilliseconds(250);

    private readonly Lock _lock = new();
    private readonly Dictionary<long, CancellationTokenSource> _due = [];
    private ITimer? _timer;
    private long _tick;
    private bool _disposed;

    /// <summary>A token cancelled once <paramref name="delay"/> has passed (to within two ticks). Tokens due at the
    /// same tick share their source.</summary>
    public CancellationToken After(TimeSpan delay)
    {
        // The current tick may be about to end: one tick more makes the delay a lower bound.
        var ticks = Math.Max(1, (long)Math.Ceiling(delay / Resolution)) + 1;
        lock (_lock)
        {
            if (_disposed)
            {
                return CancellationToken.None;
            }

            _timer ??= time.CreateTimer(static clock => ((CoarseClock)clock!).Tick(), this, Resolution, Resolution);
            var due = _tick + ticks;
            if (!_due.TryGetValue(due, out var source))
            {
                _due[due] = source = new CancellationTokenSource();
            }

            return source.Token;
        }
    }

    /// <summary>Stops the timer. The tokens given out are left as they are: the waits on them end with their calls,
    /// not all at once.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            _timer?.Dispose();
            _due.Clear();
        }
    }

    private void Tick()
    {
        CancellationTokenSource? due;
        lock (_lock)
        {
            _tick++;
            _due.Remove(_tick, out due);
        }

        if (due is not null)
        {
            Cancel(due);
        }
    }

    /// <summary>Cancels on the thread pool: the waits it ends go on from there, not on the timer's thread, one after
    /// another. A source without a timer holds nothing to dispose.</summary>
    private static void Cancel(CancellationTokenSource source) =>
        ThreadPool.UnsafeQueueUserWorkItem(static s => s.Cancel(), source, preferLocal: false);
}
