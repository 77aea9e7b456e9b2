namespace Iris.Calls;

/// <summary>
/// Tokens cancelled after a delay that need not be exact: one timer per process, ticking every
/// <see cref="Resolution"/>, cancels every token due at that tick, where a timer per token would cost each call a
/// timer queue entry. A token is cancelled between its delay and its delay plus two ticks, or, when asked for with
/// another token to follow, as soon as that one is. The timer starts with the first token asked for; once disposed,
/// tokens are never cancelled by the clock.
/// </summary>
internal sealed class CoarseClock(TimeProvider time) : IDisposable
{
    /// <summary>The time between ticks.</summary>
    public static readonly TimeSpan Resolution = TimeSpan.FromMilliseconds(250);

    private readonly Lock _lock = new();
    private readonly Dictionary<(long Tick, CancellationToken Also), CancellationTokenSource> _due = [];
    private ITimer? _timer;
    private long _tick;
    private bool _disposed;

    /// <summary>A token cancelled once <paramref name="delay"/> has passed (to within two ticks). Tokens due at the
    /// same tick share their source.</summary>
    public CancellationToken After(TimeSpan delay) => After(delay, CancellationToken.None);

    /// <summary>A token cancelled once <paramref name="delay"/> has passed (to within two ticks) or
    /// <paramref name="also"/> is cancelled, whichever comes first: one wait for both. Tokens due at the same tick with
    /// the same <paramref name="also"/> share their source (linked to <paramref name="also"/> once, and unlinked at its
    /// tick).</summary>
    public CancellationToken After(TimeSpan delay, CancellationToken also)
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
            var due = (_tick + ticks, also);
            if (!_due.TryGetValue(due, out var source))
            {
                _due[due] = source = also.CanBeCanceled ? CancellationTokenSource.CreateLinkedTokenSource(also) : new CancellationTokenSource();
            }

            return source.Token;
        }
    }

    /// <summary>Stops the timer. The tokens given out are left as they are (those that follow another token are
    /// unlinked from it): the waits on them end with their calls, not all at once.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            _timer?.Dispose();
            foreach (var source in _due.Values)
            {
                source.Dispose();
            }

            _due.Clear();
        }
    }

    private void Tick()
    {
        // A handful of entries at most: one per tick of the longest delay asked for, per token followed.
        List<KeyValuePair<(long Tick, CancellationToken Also), CancellationTokenSource>>? due = null;
        lock (_lock)
        {
            _tick++;
            foreach (var entry in _due)
            {
                if (entry.Key.Tick == _tick)
                {
                    (due ??= []).Add(entry);
                }
            }

            foreach (var entry in due ?? [])
            {
                _due.Remove(entry.Key);
            }
        }

        foreach (var entry in due ?? [])
        {
            Cancel(entry.Value);
        }
    }

    /// <summary>Cancels on the thread pool: the waits it ends go on from there, not on the timer's thread, one after
    /// another. Then disposes it, which unlinks a linked source from the token it follows (a token of a cancelled
    /// source, disposed or not, runs a callback registered later at once).</summary>
    private static void Cancel(CancellationTokenSource source) =>
        ThreadPool.UnsafeQueueUserWorkItem(
            static s =>
            {
                s.Cancel();
                s.Dispose();
            },
            source,
            preferLocal: false);
}
