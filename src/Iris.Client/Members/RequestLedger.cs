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
/// so a lookup and an insert are one atomic step. Finished runs also join a queue in the order they finished; at most
/// every <see cref="SweepInterval"/> the runs at its head that finished a generation ago leave the table. A sweep
/// costs the entries it removes, not the table's size (at 10,000 requests a second the table holds some 200,000).
/// </summary>
internal sealed class RequestLedger(TimeProvider time)
{
    /// <summary>How long a finished run's reply is kept after it finished, at least (and at most
    /// <see cref="SweepInterval"/> longer, or until the next request arrives).</summary>
    public static readonly TimeSpan Generation = CallPolicy.RememberFor;

    /// <summary>How often the finished runs due to be forgotten are removed, at most.</summary>
    public static readonly TimeSpan SweepInterval = TimeSpan.FromSeconds(1);

    /// <summary>How long a copy that joins a run still going waits for its reply before it answers
    /// <see cref="MemberReplyStatus.Running"/>: well inside the caller's response timeout.</summary>
    public static readonly TimeSpan JoinWait = CallPolicy.ReaskAfter / 2;

    private readonly Lock _sweeping = new();
    private readonly ConcurrentDictionary<Guid, Entry> _entries = new();
    private readonly ConcurrentQueue<(Guid Id, Entry Entry)> _finished = new();
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
        var at = time.GetTimestamp();
        if (reply.NotStarted || reply.Status == MemberReplyStatus.Expired)
        {
            // It never ran: a repeat may start it.
            entry.Finish(reply, at);
            _entries.TryRemove(new KeyValuePair<Guid, Entry>(id, entry));
        }
        else
        {
            // Queued for the sweep before the copies waiting on it hear the reply: what they do next (a request that
            // sweeps, a generation later) finds it there. A sweep that meets it before it is finished stops at it.
            _finished.Enqueue((id, entry));
            entry.Finish(reply, at);
        }
    }

    /// <summary>At most every <see cref="SweepInterval"/>, forgets the runs that finished a generation ago or more,
    /// from the head of the queue of finished runs; one caller does it, the others go on.</summary>
    private void SweepIfDue()
    {
        if (time.GetElapsedTime(Interlocked.Read(ref _swept)) < SweepInterval || !_sweeping.TryEnter())
        {
            return;
        }

        try
        {
            var now = time.GetTimestamp();
            Interlocked.Exchange(ref _swept, now);

            // The queue is in the order runs finished (to within concurrent enqueues), so the first run not yet due
            // ends the sweep; one just behind it that is due goes at the next.
            while (_finished.TryPeek(out var head) && head.Entry.FinishedAt is { } finished && time.GetElapsedTime(finished, now) >= Generation)
            {
                _finished.TryDequeue(out _);
                _entries.TryRemove(new KeyValuePair<Guid, Entry>(head.Id, head.Entry));
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
