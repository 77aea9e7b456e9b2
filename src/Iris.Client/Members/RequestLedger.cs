using System.Collections.Concurrent;
using Iris.Calls;
using Iris.Protocol;

namespace Iris.Members;

/// <summary>
/// The requests a process's members have started, by id: a request that arrives again (its caller repeated it after
/// losing contact, or sent a copy after hearing nothing) joins the run in flight, or gets the reply of the finished
/// run, instead of running twice. A run is remembered while it runs, and its reply for at least one
/// <see cref="Generation"/> after it finished (at most two). A copy that joins a run still going answers
/// <see cref="MemberReplyStatus.Running"/> after <see cref="JoinWait"/>, so its caller knows the run is held here.
/// A caller repeats a request to one member only within <see cref="CallPolicy.RepeatWindow"/> of the last copy it
/// sent that found the run going here (or of its first), and Orleans drops a call older than its response timeout:
/// so every copy arrives while the run goes or within a generation after it finished. Entries live in two generations
/// that rotate (runs still going or just finished are carried into the new one), so forgetting costs nothing per
/// request, and each request costs one entry, written in place when it finishes.
/// </summary>
internal sealed class RequestLedger(TimeProvider time)
{
    /// <summary>How long a finished run's reply is kept after it finished, at least (and at most twice as long).</summary>
    public static readonly TimeSpan Generation = CallPolicy.RememberFor;

    /// <summary>How long a copy that joins a run still going waits for its reply before it answers
    /// <see cref="MemberReplyStatus.Running"/>: well inside the caller's response timeout.</summary>
    public static readonly TimeSpan JoinWait = CallPolicy.ReaskAfter / 2;

    private readonly Lock _rotation = new();
    private ConcurrentDictionary<Guid, Entry> _current = new();
    private ConcurrentDictionary<Guid, Entry> _previous = new();
    private long _rotated = time.GetTimestamp();

    /// <summary>Runs in flight and finished runs still remembered.</summary>
    public int Count => _current.Count + _previous.Count;

    /// <summary>
    /// The run of request <paramref name="id"/>: the one already started here, or a new one made by
    /// <paramref name="start"/>. A new run whose answer says it never started (<see cref="MemberReply.NotStarted"/>,
    /// or it expired waiting) is forgotten, so a repeat may start it.
    /// </summary>
    public Task<MemberReply> RunOnce(Guid id, Func<Task<MemberReply>> start)
    {
        RotateIfDue();
        var previous = Volatile.Read(ref _previous);
        if (previous.TryGetValue(id, out var earlier))
        {
            return Join(earlier);
        }

        var current = Volatile.Read(ref _current);
        var entry = new Entry();
        var known = current.GetOrAdd(id, entry);
        if (known != entry)
        {
            return Join(known);
        }

        // The first arrival awaits the run itself (no extra hop); repeats join the entry, completed with it.
        Task<MemberReply> run;
        try
        {
            run = start();
        }
        catch (Exception e)
        {
            run = Task.FromResult(new MemberReply(MemberReplyStatus.Failed, null, e.Message));
        }

        if (run.IsCompleted)
        {
            Complete(current, id, entry, run);
        }
        else
        {
            run.ContinueWith(
                static (done, state) =>
                {
                    var (ledger, current, id, entry) = ((RequestLedger, ConcurrentDictionary<Guid, Entry>, Guid, Entry))state!;
                    ledger.Complete(current, id, entry, done);
                },
                (this, current, id, entry),
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
        }

        return run;
    }

    /// <summary>The reply of a run for a copy of its request: at once when it finished, else when it finishes within
    /// <see cref="JoinWait"/>, else <see cref="MemberReplyStatus.Running"/>.</summary>
    private async Task<MemberReply> Join(Entry entry)
    {
        var reply = entry.Join();
        try
        {
            return await reply.WaitAsync(JoinWait, time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return MemberReply.Refused(MemberReplyStatus.Running);
        }
    }

    private void Complete(ConcurrentDictionary<Guid, Entry> table, Guid id, Entry entry, Task<MemberReply> run)
    {
        var reply = run.IsCompletedSuccessfully
            ? run.Result
            : new MemberReply(MemberReplyStatus.Failed, null, run.Exception?.InnerException?.Message ?? "the run was cancelled");
        entry.Finish(reply, time.GetTimestamp());
        if (reply.NotStarted || reply.Status == MemberReplyStatus.Expired)
        {
            // It never ran: a repeat may start it. (It may have been carried into a newer generation meanwhile.)
            table.TryRemove(new KeyValuePair<Guid, Entry>(id, entry));
            Volatile.Read(ref _current).TryRemove(new KeyValuePair<Guid, Entry>(id, entry));
        }
    }

    private void RotateIfDue()
    {
        if (time.GetElapsedTime(Interlocked.Read(ref _rotated)) < Generation)
        {
            return;
        }

        lock (_rotation)
        {
            if (time.GetElapsedTime(Interlocked.Read(ref _rotated)) < Generation)
            {
                return;
            }

            // Sized for a generation like the last one, so the new table does not grow (and stall) under load.
            var dropped = _previous;
            var next = new ConcurrentDictionary<Guid, Entry>(Environment.ProcessorCount, Math.Max(31, _current.Count));
            Volatile.Write(ref _previous, _current);
            Volatile.Write(ref _current, next);
            Interlocked.Exchange(ref _rotated, time.GetTimestamp());

            // A run still going, or finished less than a generation ago, is still remembered: carried into the new
            // one. So a reply is kept at least a generation after the run finished, however long it ran.
            foreach (var (id, entry) in dropped)
            {
                if (entry.FinishedAt is not { } finished || time.GetElapsedTime(finished) < Generation)
                {
                    next.TryAdd(id, entry);
                }
            }
        }
    }

    /// <summary>One request's run: going, or finished with its reply.</summary>
    private sealed class Entry
    {
        private MemberReply _reply;
        private long? _finishedAt;
        private TaskCompletionSource<MemberReply>? _joiners;

        /// <summary>When the run finished (a timestamp), or null while it runs.</summary>
        public long? FinishedAt
        {
            get
            {
                lock (this)
                {
                    return _finishedAt;
                }
            }
        }

        /// <summary>The reply, now or when the run finishes.</summary>
        public Task<MemberReply> Join()
        {
            lock (this)
            {
                return _finishedAt is not null ? Task.FromResult(_reply) : (_joiners ??= new(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
            }
        }

        public void Finish(MemberReply reply, long at)
        {
            TaskCompletionSource<MemberReply>? joiners;
            lock (this)
            {
                _reply = reply;
                _finishedAt = at;
                joiners = _joiners;
            }

            joiners?.TrySetResult(reply);
        }
    }
}
