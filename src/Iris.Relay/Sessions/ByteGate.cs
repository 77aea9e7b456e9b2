namespace Iris.Relay.Sessions;

/// <summary>
/// Counts the bytes a connection holds in one of its queues against a limit: what is pushed at it either fits or is
/// refused (<see cref="TryTake"/>), what can wait waits for room (<see cref="TakeAsync"/>).
/// </summary>
internal sealed class ByteGate(long limit)
{
    private long _used;
    private int _waiting;
    private TaskCompletionSource _room = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public long Limit => limit;

    public long Used => Volatile.Read(ref _used);

    /// <summary>Takes <paramref name="bytes"/> if they fit under the limit.</summary>
    public bool TryTake(long bytes)
    {
        while (true)
        {
            var used = Volatile.Read(ref _used);
            if (used + bytes > limit)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _used, used + bytes, used) == used)
            {
                return true;
            }
        }
    }

    /// <summary>Waits until the queue is empty or <paramref name="bytes"/> fit under <paramref name="threshold"/>, then
    /// takes them; a single item larger than the threshold passes alone.</summary>
    public async ValueTask TakeAsync(long bytes, long threshold, CancellationToken cancellationToken)
    {
        while (true)
        {
            // Counted as waiting before the check: a Return after the check sees the waiter and opens the room it awaits.
            Interlocked.Increment(ref _waiting);
            var room = Volatile.Read(ref _room);
            var used = Volatile.Read(ref _used);
            if (used == 0 || used + bytes <= threshold)
            {
                if (Interlocked.CompareExchange(ref _used, used + bytes, used) != used)
                {
                    // Another taker came between: look again.
                    Interlocked.Decrement(ref _waiting);
                    continue;
                }

                Interlocked.Decrement(ref _waiting);
                return;
            }

            try
            {
                await room.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                Interlocked.Decrement(ref _waiting);
            }
        }
    }

    /// <summary>Takes <paramref name="bytes"/> whatever the count.</summary>
    public void Force(long bytes) => Interlocked.Add(ref _used, bytes);

    public void Return(long bytes)
    {
        Interlocked.Add(ref _used, -bytes);
        if (Volatile.Read(ref _waiting) > 0)
        {
            Interlocked.Exchange(ref _room, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        }
    }
}
