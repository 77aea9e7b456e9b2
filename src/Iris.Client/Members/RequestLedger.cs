using System.Collections.Concurrent;
using Iris.Calls;
using Iris.Protocol;

namespace Iris.Members;

/// <summary>
/// The requests a process's members have started, by id: a request that arrives again (its caller repeated it after
/// losing contact, or sent a copy after hearing nothing) joins the run in flight, or gets the reply of the finished
/// run, instead of running twice. A run is remembered while it runs, and its reply for at least one
/// <see cref="Generation"/> after it finished (at most one and a half). A copy that joins a run still going answers
/// <see cref="MemberReplyStatus.Running"/> after <see cref="JoinWait"/>, so its caller knows the run is held here.
/// A caller repeats a request to one member only within <see cref="CallPolicy.RepeatWindow"/> of the last copy it
/// sent that found the run going here (or of its first), and Orleans drops a call older than its response timeout:
/// so every copy arrives while the run goes or within a generation after it finished. One table holds every entry,
/// so a lookup and an insert are one atomic step; every half generation one pass removes the entries finished more
/// than a generation ago.
/// </summary>
internal sealed class RequestLedger(TimeProvider time)
{
    /// <summary>How long a finished run's reply is kept after it finished, at least (and at most one and a half times
    /// as long).</summary>
    public static readonly TimeSpan Generation = CallPolicy.RememberFor;

    /// <summary>How long a copy that joins a run still going waits for its reply before it answers
    /// <see cref="MemberReplyStatus.Running"/>: well inside the caller's response timeout.</summary>
    public static readonly TimeSpan JoinWait = CallPolicy.ReaskAfter / 2;

    private readonly Lock _sweeping = new();
    private readonly ConcurrentDictionary<Guid, Entry> _entries = new();
    private long _swept = time.GetTimestamp();

    /// <summary>Runs in flight and finished runs still remembered.</summary>
    public int Count => _entries.Count;

    /// <summary>
    /// The run of request <paramref name="id"/>: the one already started here, or a new one made by
    /// <paramref name="start"/>. A new run whose answer says it never started (<see cref="MemberReply.NotStarted"/>,
    /// or it expired waiting) is forgotten, so a repeat may start it.
    /// </summary>
    public Task<MemberReply> RunOnce(Guid id, Func<Task<MemberReply>> start)
    {
        SweepIfDue();
        var entry = new Entry();
        var known = _entries.GetOrAdd(id, entry);
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
            Complete(id, entry, run);
        }
        else
        {
            run.ContinueWith(
                static (done, state) =>
                {
                    var (ledger, id, entry) = ((RequestLedger, Guid, Entry))state!;
                    ledger.Complete(id, entry, done);
                },
                (this, id, entry),
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

    private void Complete(Guid id, Entry entry, Task<MemberReply> run)
    {
        var reply = run.IsCompletedSuccessfully
            ? run.Result
            : new MemberReply(MemberReplyStatus.Failed, null, run.Exception?.InnerException?.Message ?? "the run was cancelled");
        entry.Finish(reply, time.GetTimestamp());
        if (reply.NotStarted || reply.Status == MemberReplyStatus.Expired)
        {
            // It never ran: a repeat may start it.
            _entries.TryRemove(new KeyValuePair<Guid, Entry>(id, entry));
        }
    }

    /// <summary>Every half generation, forgets the runs that finished more than a generation ago; one caller does
    /// it, the others go on.</summary>
    private void SweepIfDue()
    {
        if (time.GetElapsedTime(Interlocked.Read(ref _swept)) < Generation / 2 || !_sweeping.TryEnter())
        {
            return;
        }

        try
        {
            if (time.GetElapsedTime(Interlocked.Read(ref _swept)) < Generation / 2)
            {
                return;
            }

            Interlocked.Exchange(ref _swept, time.GetTimestamp());
            foreach (var (id, entry) in _entries)
            {
                if (entry.FinishedAt is { } finished && time.GetElapsedTime(finished) >= Generation)
                {
                    _entries.TryRemove(new KeyValuePair<Guid, Entry>(id, entry));
                }
            }
        }
        finally
        {
            _sweeping.Exit();
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
