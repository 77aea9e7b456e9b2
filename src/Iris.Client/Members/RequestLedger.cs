using System.Collections.Concurrent;
using Iris.Calls;
using Iris.Protocol;

namespace Iris.Members;

/// <summary>
/// The requests a process's members have started, by id: a request that arrives again (its caller repeated it after
/// losing contact, or sent a copy after hearing nothing) joins the run in flight, or gets the reply of the finished
/// run, instead of running twice. A run is remembered while it runs, and its reply for between one and two
/// <see cref="Generation"/>s after it started: a caller asks again after at most <see cref="CallPolicy.ReaskAfter"/>
/// without an answer, and within a second of a failed call, so a copy of a finished run arrives well inside that time. Entries
/// live in two generations that rotate (runs still going are carried into the new one), so forgetting costs nothing
/// per request, and each request costs one entry, written in place when it finishes.
/// </summary>
internal sealed class RequestLedger(TimeProvider time)
{
    /// <summary>How long a finished run's reply is kept, at least (and at most twice as long).</summary>
    public static readonly TimeSpan Generation = TimeSpan.FromSeconds(20);

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
            return earlier.Join();
        }

        var current = Volatile.Read(ref _current);
        var entry = new Entry();
        var known = current.GetOrAdd(id, entry);
        if (known != entry)
        {
            return known.Join();
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

    private void Complete(ConcurrentDictionary<Guid, Entry> table, Guid id, Entry entry, Task<MemberReply> run)
    {
        var reply = run.IsCompletedSuccessfully
            ? run.Result
            : new MemberReply(MemberReplyStatus.Failed, null, run.Exception?.InnerException?.Message ?? "the run was cancelled");
        entry.Finish(reply);
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

            // A run longer than a generation is still remembered: carried into the new one.
            foreach (var (id, entry) in dropped)
            {
                if (!entry.IsFinished)
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
        private bool _finished;
        private TaskCompletionSource<MemberReply>? _joiners;

        public bool IsFinished
        {
            get
            {
                lock (this)
                {
                    return _finished;
                }
            }
        }

        /// <summary>The reply, now or when the run finishes.</summary>
        public Task<MemberReply> Join()
        {
            lock (this)
            {
                return _finished ? Task.FromResult(_reply) : (_joiners ??= new(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
            }
        }

        public void Finish(MemberReply reply)
        {
            TaskCompletionSource<MemberReply>? joiners;
            lock (this)
            {
                _reply = reply;
                _finished = true;
                joiners = _joiners;
            }

            joiners?.TrySetResult(reply);
        }
    }
}
